"""What moving a namespace to ambient does to the objects: the namespace relabelled, and
each running pod as it comes back from a restart.

The move itself changes only labels: `istio.io/dataplane-mode=ambient` on the namespace,
and the injection labels that would give new pods a sidecar removed (`istio-injection`,
`istio.io/rev`). Running pods keep their sidecar until they restart; the plan audits
them as restarted: injected again where the injector still would (a pod label that opts
in), otherwise without istio-proxy and its init containers, and enrolled by istio-cni
(`ambient.istio.io/redirection: enabled`) where the cluster runs ztunnel.
"""

from __future__ import annotations

from auditor.core import istio, kinds as k
from auditor.facts.questions import Context, restarted_mode
from auditor.plan.memo import memo
from auditor.model.snapshot import K8sObject, as_dict, as_list

AMBIENT = {istio.DATAPLANE_MODE: "ambient"}
# Labels that make the injector give new pods a sidecar: removed from a moved namespace.
NAMESPACE_INJECTION_LABELS = (istio.NS_INJECTION, istio.REV)
# Pod labels that opt a pod in to injection: removed from pod templates of a moved namespace.
POD_INJECTION_LABELS = (istio.INJECT, istio.REV)
# What the injector adds to a pod besides istio-proxy: gone when the pod restarts uninjected.
INJECTED_INIT_CONTAINERS = frozenset({"istio-init", "istio-validation", istio.PROXY_CONTAINER})
INJECTED_ANNOTATIONS = (istio.SIDECAR_STATUS, "kubectl.kubernetes.io/default-container",
                        "kubectl.kubernetes.io/default-logs-container")


def namespace_object(ctx: Context, namespace: str) -> K8sObject:
    """The Namespace as the snapshot has it, or as a manifest for a namespace only named."""
    found = ctx.snapshot.get(k.NAMESPACE, None, namespace)
    if found is not None:
        return found
    return K8sObject({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def moved_namespace(ctx: Context, namespace: str, extra_labels: dict | None = None) -> K8sObject:
    """The Namespace labelled for ambient, its injection labels removed."""
    current = namespace_object(ctx, namespace)
    labels = {key: value for key, value in current.labels.items() if key not in NAMESPACE_INJECTION_LABELS}
    labels.update(AMBIENT)
    labels.update(extra_labels or {})
    return relabelled(current, labels)


def relabelled(obj: K8sObject, labels: dict, annotations: dict | None = None, alike: bool = False) -> K8sObject:
    """A copy of an object with new metadata labels (and annotations), same place in the
    input; `alike`: see K8sObject.rewritten."""
    meta = dict(obj.metadata)
    meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return obj.rewritten({**obj.raw, "metadata": meta}, alike)


def restarted_pods(ctx: Context, namespace: str, ns_labels: dict, enrolled: bool,
                   template_labels: dict | None = None) -> list[K8sObject]:
    """Running pods of the namespace as they come back from a restart under `ns_labels`
    (pods whose template changed take its new labels: `template_labels`, owner -> labels)."""
    key = (namespace, tuple(sorted(ns_labels.items())), enrolled)
    cache = memo(ctx, "restarted", dict)
    if not template_labels and key in cache:
        return cache[key]
    # Replicas restart alike (what decides is in their signature: namespace, labels,
    # annotations, owner), so each keeps its signature: facts need not sign them again.
    out = []
    for pod in pods_of(ctx, namespace):
        labels = pod.labels
        owner = ctx.workload(pod)
        if template_labels and owner is not None and owner.owner is not None:
            new = template_labels.get((owner.owner.kind, owner.owner.name))
            if new is not None:
                labels = {**{key: v for key, v in labels.items() if key not in POD_INJECTION_LABELS}, **new}
        mode = restarted_mode(ctx, namespace, ns_labels, pod, labels)
        if mode == "sidecar":
            if labels is not pod.labels:
                out.append(relabelled(pod, labels, alike=True))
            continue
        out.append(_without_sidecar(pod, labels, enrolled and mode == "ambient"))
    if not template_labels:
        cache[key] = out
    return out


def pods_of(ctx: Context, namespace: str) -> list[K8sObject]:
    """The running (observed) pods of a namespace."""
    by_ns = memo(ctx, "pods", lambda: _pods_by_namespace(ctx))
    return by_ns.get(namespace, [])


def _pods_by_namespace(ctx: Context) -> dict[str, list[K8sObject]]:
    out: dict[str, list[K8sObject]] = {}
    for pod in ctx.snapshot.of(k.POD):
        if pod.observed:
            out.setdefault(pod.namespace or "", []).append(pod)
    return out


def _without_sidecar(pod: K8sObject, labels: dict, enrolled: bool) -> K8sObject:
    spec = dict(as_dict(pod.raw.get("spec")))
    spec["containers"] = [c for c in as_list(spec.get("containers"))
                          if not (isinstance(c, dict) and c.get("name") == istio.PROXY_CONTAINER)]
    if "initContainers" in spec:
        spec["initContainers"] = [c for c in as_list(spec.get("initContainers"))
                                  if not (isinstance(c, dict) and c.get("name") in INJECTED_INIT_CONTAINERS)]
    annotations = {key: v for key, v in pod.annotations.items() if key not in INJECTED_ANNOTATIONS}
    if enrolled:
        annotations[istio.REDIRECTION] = "enabled"
    else:
        annotations.pop(istio.REDIRECTION, None)
    meta = {**pod.metadata, "labels": labels, "annotations": annotations}
    return pod.rewritten({**pod.raw, "metadata": meta, "spec": spec}, alike=True)


def enrolls_pods(ctx: Context) -> bool:
    """Whether istio-cni would enroll restarted pods: for a cluster (or its snapshot) that
    collected DaemonSets, only where ztunnel runs; for manifests, assumed."""
    collected = ctx.options.collected
    if collected is None or "daemonsets.apps" not in collected:
        return True
    return any(d.name == "ztunnel" or d.labels.get("app") == "ztunnel" for d in ctx.snapshot.of(k.DAEMON_SET))
