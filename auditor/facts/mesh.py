"""The Istio installation as the input shows it (`Installation`): root namespace, mesh
config, version, the injector's and istio-cni's settings. Not to be confused with
api.Settings, what the user asked for.

Each value records where it came from; when the object that holds it was not
collected, Istio's install defaults apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import yaml

from auditor.core import kinds as k
from auditor.model.components import is_injector_webhook, is_istiod
from auditor.core.errors import UsageError
from auditor.facts.labels import parse_bool
from auditor.model.snapshot import K8sObject, Snapshot, as_dict, as_list
from auditor.core.versions import Version, parse_version

DEFAULT_ROOT_NAMESPACE = "istio-system"
# Namespaces the injector never touches (pkg/kube/inject injectRequired).
DEFAULT_CNI_EXCLUDED = frozenset({"kube-system"})


@dataclass
class InjectorSettings:
    policy: str = "enabled"
    never_inject: list = field(default_factory=list)
    always_inject: list = field(default_factory=list)
    # Revisions that have an injection webhook; None when no webhook was collected
    # (manifests only), in which case any revision a label names is assumed installed.
    revisions: frozenset | None = None
    namespaces_by_default: bool = False


@dataclass
class Installation:
    """What Istio runs (ctx.installation)."""

    root_namespace: str = DEFAULT_ROOT_NAMESPACE
    mesh_config: dict = field(default_factory=dict)
    mesh_config_object: K8sObject | None = None
    istio_version: Version | None = None
    version_source: str | None = None
    cni_excluded_namespaces: frozenset = DEFAULT_CNI_EXCLUDED
    # istio-cni's AMBIENT_DNS_CAPTURE (values.cni.ambient.dnsCapture): True or False as the
    # collected istio-cni-config says, None where it was not collected (the chart default
    # then: off before 1.25, on from 1.25).
    dns_capture: bool | None = None
    enablement_selectors: list | None = None
    injector: InjectorSettings = field(default_factory=InjectorSettings)
    warnings: list[UsageError] = field(default_factory=list)

    @property
    def outbound_traffic_policy(self) -> str:
        otp = self.mesh_config.get("outboundTrafficPolicy")
        mode = otp.get("mode") if isinstance(otp, dict) else None
        return str(mode) if mode else "ALLOW_ANY"


def _config_maps(snapshot: Snapshot, name: str) -> list[K8sObject]:
    """ConfigMaps called `name` or `name-<revision>`, the plain name in istio-system first."""
    found = [o for o in snapshot.of(k.CONFIG_MAP) if o.name == name or o.name.startswith(name + "-")]
    return sorted(found, key=lambda o: (o.name != name, o.namespace != DEFAULT_ROOT_NAMESPACE, o.namespace or "", o.name))


def _data(obj: K8sObject) -> dict:
    data = obj.raw.get("data")
    return data if isinstance(data, dict) else {}


def _parse_embedded(obj: K8sObject, key: str, installation: Installation):
    text = _data(obj).get(key)
    if not isinstance(text, str):
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        installation.warnings.append(UsageError(f"{obj.ref()}: data.{key} is not valid YAML ({err}); using defaults", obj.file, obj.line))
        return None


def istiod_image_version(snapshot: Snapshot) -> tuple[Version, str] | None:
    """Version from the istiod image tag: the default revision's Deployment first, then any istiod."""
    candidates = []
    for obj in snapshot.of(k.DEPLOYMENT, k.POD):
        # raw labels: this runs over every pod, most of them not istiod
        if not is_istiod(obj.name, obj.metadata.get("labels")):
            continue
        spec = obj.spec
        pod_spec = as_dict(as_dict(spec.get("template")).get("spec")) if obj.kind == "Deployment" else spec
        for c in as_list(pod_spec.get("containers")):
            if not isinstance(c, dict):
                continue
            image = str(c.get("image") or "")
            if c.get("name") != "discovery" and "/pilot" not in image:
                continue
            tag = image.rsplit("/", 1)[-1].partition("@")[0]
            version = parse_version(tag.partition(":")[2]) if ":" in tag else None
            if version:
                candidates.append((obj.kind != "Deployment", obj.name != "istiod", version, f"{obj.ref()} image {image}"))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1], -c[2].major, -c[2].minor, -c[2].patch))
    return candidates[0][2], candidates[0][3]


# The version_source of a version the user asked for: it holds whatever istiod the input runs.
VERSION_ASKED = "--istio-version"


def read_installation(snapshot: Snapshot, istio_version: Version | None = None) -> Installation:
    installation = Installation()
    for cm in _config_maps(snapshot, "istio")[:1]:
        mesh = _parse_embedded(cm, "mesh", installation)
        if isinstance(mesh, dict):
            installation.mesh_config = mesh
            installation.mesh_config_object = cm
            root = mesh.get("rootNamespace")
            installation.root_namespace = str(root) if root else (cm.namespace or DEFAULT_ROOT_NAMESPACE)

    if istio_version is not None:
        installation.istio_version, installation.version_source = istio_version, VERSION_ASKED
    else:
        detected = istiod_image_version(snapshot)
        if detected:
            installation.istio_version, installation.version_source = detected

    for cm in _config_maps(snapshot, "istio-cni-config")[:1]:
        data = _data(cm)
        excluded = data.get("EXCLUDED_NAMESPACES")
        if isinstance(excluded, str):
            installation.cni_excluded_namespaces = frozenset(n.strip() for n in excluded.split(",") if n.strip())
        # istio-cni reads its environment's booleans with Go's ParseBool.
        capture = data.get("AMBIENT_DNS_CAPTURE")
        installation.dns_capture = parse_bool(capture) if isinstance(capture, str) else None
        selectors = _parse_embedded(cm, "AMBIENT_ENABLEMENT_SELECTOR", installation)
        if isinstance(selectors, list) and selectors:
            installation.enablement_selectors = [s for s in selectors if isinstance(s, dict)]

    injector = installation.injector
    for cm in _config_maps(snapshot, "istio-sidecar-injector")[:1]:
        config = _parse_embedded(cm, "config", installation)
        if isinstance(config, dict):
            injector.policy = str(config.get("policy") or "enabled")
            injector.never_inject = [s for s in as_list(config.get("neverInjectSelector")) if isinstance(s, dict)]
            injector.always_inject = [s for s in as_list(config.get("alwaysInjectSelector")) if isinstance(s, dict)]
        values_text = _data(cm).get("values")
        if isinstance(values_text, str):
            try:
                values = orjson.loads(values_text)
                injector.namespaces_by_default = bool(
                    as_dict(as_dict(values).get("sidecarInjectorWebhook")).get("enableNamespacesByDefault")
                )
            except (orjson.JSONDecodeError, AttributeError):
                pass

    revisions = set()
    for mwc in snapshot.of(k.MUTATING_WEBHOOK):
        if not is_injector_webhook(mwc.raw):
            continue
        names = [str(h.get("name", "")) for h in as_list(mwc.raw.get("webhooks")) if isinstance(h, dict)]
        labels = mwc.labels
        revisions.add(labels.get("istio.io/rev") or "default")
        if labels.get("istio.io/tag"):
            revisions.add(labels["istio.io/tag"])
        if any(n.startswith("auto.") for n in names):
            injector.namespaces_by_default = True
    if revisions:
        injector.revisions = frozenset(revisions)
    return installation
