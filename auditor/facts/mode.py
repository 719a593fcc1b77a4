"""Which data plane a pod gets: sidecar injection (evidence C.1) and ambient enrollment (C.2).

These are pure functions of labels and the installation so that each precedence case can be
tested on its own. `reason` strings name the label that decided, for `explain` and
for finding messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.core.istio import (DATAPLANE_MODE, INJECT, INJECTION_IGNORED_NAMESPACES, NS_INJECTION, PROXY_CONTAINER,
                                 REV, SIDECAR_STATUS)
from auditor.facts.labels import namespace_labels_as_served, selector_matches
from auditor.facts.mesh import InjectorSettings, Installation
from auditor.model.snapshot import as_list



@dataclass(frozen=True)
class Injection:
    inject: bool
    reason: str
    revision: str | None = None


def _revision_known(revision: str, injector: InjectorSettings) -> bool:
    return injector.revisions is None or revision in injector.revisions


def webhook_case(ns_labels: dict, pod_labels: dict, injector: InjectorSettings, namespace: str) -> Injection:
    """Which injection webhook (if any) the API server calls for this pod at CREATE."""
    pod_inject = pod_labels.get(INJECT)
    pod_rev = pod_labels.get(REV)
    if NS_INJECTION in ns_labels:
        value = ns_labels[NS_INJECTION]
        if value != "enabled":
            return Injection(False, f"namespace label {NS_INJECTION}={value} disables every injection webhook")
        if pod_inject == "false":
            return Injection(False, f"pod label {INJECT}=false opts out")
        return Injection(True, f"namespace label {NS_INJECTION}=enabled", "default")
    if REV in ns_labels:
        rev = ns_labels[REV]
        if pod_inject == "false":
            return Injection(False, f"pod label {INJECT}=false opts out")
        if not rev or not _revision_known(rev, injector):
            return Injection(False, f"namespace label {REV}={rev} names no installed revision")
        return Injection(True, f"namespace label {REV}={rev}", rev)
    if pod_rev is not None:
        if pod_inject == "false":
            return Injection(False, f"pod label {INJECT}=false opts out")
        if not pod_rev or not _revision_known(pod_rev, injector):
            return Injection(False, f"pod label {REV}={pod_rev} names no installed revision")
        return Injection(True, f"pod label {REV}={pod_rev}", pod_rev)
    if pod_inject == "true":
        return Injection(True, f"pod label {INJECT}=true", "default")
    if injector.namespaces_by_default and pod_inject is None and namespace not in INJECTION_IGNORED_NAMESPACES:
        return Injection(True, "injection is enabled for all namespaces by default", "default")
    return Injection(False, "no injection label on the namespace or the pod")


def predict_injection(
    namespace: str,
    ns_labels: dict,
    pod_labels: dict,
    pod_annotations: dict,
    host_network: bool,
    injector: InjectorSettings,
) -> Injection:
    """Whether a pod created now would get a sidecar: the webhook case, then injectRequired()."""
    case = webhook_case(ns_labels, pod_labels, injector, namespace)
    if not case.inject:
        return case
    if host_network:
        return Injection(False, "hostNetwork pods are never injected")
    if namespace in INJECTION_IGNORED_NAMESPACES:
        return Injection(False, f"namespace {namespace} is never injected")
    # The label wins over the deprecated annotation of the same name.
    if INJECT in pod_labels:
        value, source = pod_labels[INJECT], "label"
    else:
        value, source = pod_annotations.get(INJECT), "annotation"
    if value == "false":
        return Injection(False, f"pod {source} {INJECT}=false opts out")
    if value == "true":
        return case
    if any(selector_matches(s, pod_labels) for s in injector.never_inject):
        return Injection(False, "pod matches the injector's neverInjectSelector")
    if any(selector_matches(s, pod_labels) for s in injector.always_inject):
        return case
    if injector.policy != "enabled":
        return Injection(False, f"injector policy is {injector.policy} and the pod does not opt in")
    return case


@dataclass(frozen=True)
class AmbientIntent:
    intends: bool
    reason: str


def ambient_intent(ns_labels: dict, pod_labels: dict, installation: Installation, namespace: str | None = None,
                   ) -> AmbientIntent:
    """Whether labels ask istio-cni to enroll the pod (before sidecar/exclusion checks)."""
    if installation.enablement_selectors is not None:
        served = namespace_labels_as_served(namespace, ns_labels) if namespace else ns_labels
        for i, sel in enumerate(installation.enablement_selectors):
            if selector_matches(sel.get("podSelector"), pod_labels) and selector_matches(
                sel.get("namespaceSelector"), served
            ):
                return AmbientIntent(True, f"istio-cni enablement selector #{i + 1}")
        return AmbientIntent(False, "no istio-cni enablement selector matches")
    pod_mode = pod_labels.get(DATAPLANE_MODE)
    if pod_mode == "ambient":
        return AmbientIntent(True, f"pod label {DATAPLANE_MODE}=ambient")
    ns_mode = ns_labels.get(DATAPLANE_MODE)
    if ns_mode == "ambient":
        if pod_mode == "none":
            return AmbientIntent(False, f"pod label {DATAPLANE_MODE}=none opts out of the ambient namespace")
        return AmbientIntent(True, f"namespace label {DATAPLANE_MODE}=ambient")
    return AmbientIntent(False, f"no {DATAPLANE_MODE}=ambient label on the pod or its namespace")


def namespace_in_ambient(ns_labels: dict) -> bool:
    """A namespace whose new pods end up in ambient: labelled so, with no injection label that wins."""
    return (
        ns_labels.get(DATAPLANE_MODE) == "ambient"
        and ns_labels.get(NS_INJECTION) != "enabled"
        and not ns_labels.get(REV)
    )


def has_sidecar(pod_spec: dict, annotations: dict) -> tuple[bool, bool]:
    """(has an injected istio-proxy, it is a native sidecar) from a pod spec as it runs."""
    native = False
    for c in as_list(pod_spec.get("initContainers")):
        if isinstance(c, dict) and c.get("name") == PROXY_CONTAINER and c.get("restartPolicy") == "Always":
            native = True
    regular = any(isinstance(c, dict) and c.get("name") == PROXY_CONTAINER for c in as_list(pod_spec.get("containers")))
    return (SIDECAR_STATUS in annotations or regular or native), native


def ambient_blocker(namespace: str, sidecar: bool, host_network: bool, installation: Installation) -> str | None:
    """Why a pod that asks for ambient is not captured (C.2 rules 1-3), or None."""
    if namespace in installation.cni_excluded_namespaces:
        return "excluded-namespace"
    if sidecar:
        return "sidecar"
    if host_network:
        return "host-network"
    return None


def injection_opt_in(pod_labels: dict) -> str | None:
    """The pod label that asks for a sidecar, `istio.io/rev=R` or `sidecar.istio.io/inject=true`."""
    if REV in pod_labels:
        return f"{REV}={pod_labels[REV]}"
    if pod_labels.get(INJECT) == "true":
        return f"{INJECT}=true"
    return None


def opt_in_blocked_by(ns_labels: dict, pod_labels: dict) -> str | None:
    """For a pod that opts in to injection: the namespace label that keeps every webhook
    away (`istio-injection` with any value but `enabled`; every webhook case needs it
    absent, C.1), else None."""
    value = ns_labels.get(NS_INJECTION)
    if value is None or value == "enabled" or injection_opt_in(pod_labels) is None:
        return None
    return f"{NS_INJECTION}={value}"
