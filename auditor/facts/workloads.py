"""Workloads: observed pods and the pod templates of controllers, with their data plane mode.

A pod's findings roll up to its top owner (Pod → ReplicaSet → Deployment, Pod → Job →
CronJob), so a Deployment with fifty replicas is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass


import auditor.facts.mode as m
from auditor.core import istio, kinds as k
from auditor.facts.mesh import Installation
from auditor.model.snapshot import K8sObject, Snapshot, as_dict, replica_signature, str_map

_KIND_TO_GK = {k.short_kind(gk): gk for gk in k.WORKLOAD_GKS}

WAYPOINT_MANAGED = ("gateway.istio.io/managed", "istio.io-mesh-controller")
GATEWAY_LABELS = ("gateway.networking.k8s.io/gateway-name", "istio.io/gateway-name")
CONTROL_PLANE_APPS = frozenset({"istiod", "ztunnel", "istio-cni-node"})


@dataclass(frozen=True)
class Owner:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def gk(self) -> str:
        return _KIND_TO_GK.get(self.kind, self.kind)


def _controller_ref(obj: K8sObject) -> dict | None:
    refs = obj.metadata.get("ownerReferences")
    if not isinstance(refs, list):
        return None
    first = None
    for r in refs:
        if isinstance(r, dict):
            if r.get("controller"):
                return r
            if first is None:
                first = r
    return first


def top_owner(obj: K8sObject, snapshot: Snapshot) -> Owner | None:
    """The object a pod's findings are reported on, or None for a bare pod."""
    ref = _controller_ref(obj)
    if ref is None:
        return None
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    owner = Owner(str(ref.get("apiVersion", "")), kind, obj.namespace, name)
    if kind == "ReplicaSet":
        rs = snapshot.get(k.REPLICA_SET, obj.namespace, name)
        if rs is not None:
            parent = _controller_ref(rs)
            if parent is not None and parent.get("kind") == "Deployment":
                return Owner(str(parent.get("apiVersion", "apps/v1")), "Deployment", obj.namespace, str(parent.get("name")))
            return owner
        # ReplicaSet not collected: its name is the Deployment's plus "-<pod-template-hash>".
        template_hash = obj.labels.get("pod-template-hash")
        if template_hash and name.endswith("-" + template_hash):
            return Owner("apps/v1", "Deployment", obj.namespace, name[: -len(template_hash) - 1])
    if kind == "Job":
        job = snapshot.get(k.JOB, obj.namespace, name)
        parent = _controller_ref(job) if job is not None else None
        if parent is not None and parent.get("kind") == "CronJob":
            return Owner(str(parent.get("apiVersion", "batch/v1")), "CronJob", obj.namespace, str(parent.get("name")))
    return owner


def pod_template(obj: K8sObject) -> dict:
    spec = obj.spec
    if obj.kind == "CronJob":
        spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
    return as_dict(spec.get("template"))


class Workload:
    """A pod, or a controller's pod template, with its mode resolved."""

    __slots__ = (
        "id", "obj", "namespace", "labels", "annotations", "pod_spec", "owner", "is_template",
        "role", "host_network", "injection", "intent", "sidecar", "native_sidecar", "redirection",
        "predicted_mode", "observed_mode", "blocked_by", "signature", "count",
    )

    def __init__(self, wid: int, obj: K8sObject, owner: Owner | None, signature: bytes | None = None):
        self.id = wid
        self.obj = obj
        self.namespace = obj.namespace or ""
        self.owner = owner
        self.is_template = obj.kind != "Pod"
        self.signature = signature
        self.count = 1  # running pods this workload stands for (replicas with its signature)
        if self.is_template:
            template = pod_template(obj)
            meta = as_dict(template.get("metadata"))
            self.labels = str_map(meta.get("labels"))
            self.annotations = str_map(meta.get("annotations"))
            spec = template.get("spec")
        else:
            self.labels = obj.labels
            self.annotations = obj.annotations
            spec = obj.raw.get("spec")
        self.pod_spec = spec if isinstance(spec, dict) else {}
        self.host_network = self.pod_spec.get("hostNetwork") is True
        self.role = _role(self.labels, self.annotations)

    @property
    def observed(self) -> bool:
        return not self.is_template and self.obj.observed

    @property
    def mode(self) -> str:
        """The mode in force: what runs for observed pods, what would run otherwise."""
        return self.observed_mode if self.observed_mode is not None else self.predicted_mode

    def renumber(self, wid: int) -> None:
        """Take the id the same workload has in another context (a what-if copy keeps the
        ids its base gave, so indices by id stay true)."""
        self.id = wid

    def resolve_mode(self, ns_labels: dict, installation: Installation) -> None:
        self.injection = m.predict_injection(
            self.namespace, ns_labels, self.labels, self.annotations, self.host_network, installation.injector
        )
        self.intent = m.ambient_intent(ns_labels, self.labels, installation, self.namespace)
        # A template already carrying istio-proxy was injected by hand (istioctl kube-inject).
        self.sidecar, self.native_sidecar = m.has_sidecar(self.pod_spec, self.annotations)
        # "" on a running pod istio-cni has not annotated; None where there is no pod to look at.
        self.redirection = self.annotations.get(istio.REDIRECTION, "") if self.observed else None

        will_have_sidecar = self.injection.inject or (self.is_template and self.sidecar)
        self.blocked_by = None
        if self.intent.intends:
            self.blocked_by = m.ambient_blocker(
                self.namespace, self.sidecar or will_have_sidecar, self.host_network, installation
            )
        if will_have_sidecar:
            self.predicted_mode = "sidecar"
        elif self.intent.intends and m.ambient_blocker(self.namespace, False, self.host_network, installation) is None:
            self.predicted_mode = "ambient"
        else:
            self.predicted_mode = "none"

        if not self.observed:
            self.observed_mode = None
        elif self.sidecar:
            self.observed_mode = "sidecar"
        elif self.redirection in ("enabled", "pending"):
            self.observed_mode = "ambient"
        else:
            self.observed_mode = "none"


def _role(labels: dict, annotations: dict) -> str:
    if labels.get(WAYPOINT_MANAGED[0]) == WAYPOINT_MANAGED[1]:
        return "waypoint"
    if any(key in labels for key in GATEWAY_LABELS) or labels.get("istio") in ("ingressgateway", "egressgateway", "eastwestgateway"):
        return "gateway"
    if "gateway" in annotations.get("inject.istio.io/templates", ""):
        return "gateway"
    if labels.get("app") in CONTROL_PLANE_APPS:
        return "control-plane"
    return "app"


def is_finished(obj: K8sObject) -> bool:
    status = obj.raw.get("status")
    return isinstance(status, dict) and status.get("phase") in ("Succeeded", "Failed")


def _owner(obj: K8sObject, snapshot: Snapshot, owners: dict) -> Owner | None:
    """A running pod's top owner, looked up once per controller and template (`owners`)."""
    ref = _controller_ref(obj)
    labels = obj.metadata.get("labels")
    template_hash = labels.get("pod-template-hash") if isinstance(labels, dict) else None
    owner_key = (obj.namespace, ref.get("kind"), ref.get("name"), template_hash) if ref else None
    if owner_key is not None and owner_key in owners:
        return owners[owner_key]
    owner = top_owner(obj, snapshot)
    if owner_key is not None:
        owners[owner_key] = owner
    return owner


def collect_workloads(snapshot: Snapshot) -> tuple[list[Workload], dict[tuple, Workload]]:
    """Every live workload, and the replicas each one stands for.

    ReplicaSets and Jobs run by a Deployment or CronJob are left to their owner (an old
    ReplicaSet keeps a stale template), and finished pods run nothing. Running pods of one
    owner with equal signatures are one workload with a `count`: a 50-replica Deployment
    costs the facts, the label index and the rules one pod, not fifty."""
    workloads: list[Workload] = []
    replicas: dict[tuple, Workload] = {}
    owners: dict[tuple, Owner | None] = {}  # replicas share their controller's owner
    twins: dict[tuple[bytes, bool], Workload] = {}
    for obj in snapshot.of(*k.WORKLOAD_GKS):
        if obj.kind in ("ReplicaSet", "Job"):
            ref = _controller_ref(obj)
            if ref is not None and ref.get("kind") in ("Deployment", "CronJob"):
                continue
        if obj.kind == "Pod":
            # A replica read before, by its loader's signature (which covers owners, labels
            # and phase, so owner and finishing are the twin's), costs a count and no more.
            # Keyed with whether the pod runs: a uid alone (identity) can tell a running pod
            # from a declared one whose signature is the same.
            signature, owner = obj.signature, None
            if (signature, obj.observed) not in twins:
                if is_finished(obj):
                    continue
                owner = _owner(obj, snapshot, owners)
                signature = (signature or replica_signature(obj.raw)) if owner is not None else None
            twin = twins.get((signature, obj.observed)) if signature is not None else None
            if twin is not None:
                twin.count += 1
                replicas[obj.key] = twin
                continue
            w = Workload(len(workloads), obj, owner, signature)
            if signature is not None:
                twins[(signature, obj.observed)] = w
            workloads.append(w)
            continue
        workloads.append(Workload(len(workloads), obj, None))
    return workloads, replicas
