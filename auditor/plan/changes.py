"""The change set that moves one namespace to ambient and keeps what the move would lose.

Built from what the move alone breaks (the findings it introduces) and the facts behind
them:

- the Namespace relabelled (`istio.io/dataplane-mode=ambient`, injection labels gone);
- where an L7 feature is in use, a waypoint `Gateway` (`istio.io/waypoint-for: service`)
  and `istio.io/use-waypoint` on the Services that need it, plus
  `istio.io/ingress-use-waypoint` on those an ingress gateway routes to (Istio 1.24+);
- selector-based policies a waypoint must now apply rewritten to `targetRefs` on those
  Services (or on the waypoint, for a namespace-wide policy). An AuthorizationPolicy keeps
  its L4 part at ztunnel: a `<name>-ztunnel` policy with its rules that need neither L7
  attributes nor the caller's identity, and (for ALLOW) the waypoint's own identity,
  which is what ztunnel sees once traffic passes the waypoint;
- pod templates that opt in to injection relabelled, NetworkPolicies opened to HBONE
  (15008) and to ambient's probe address;
- objects that become dead listed for deletion (never deleted): Sidecar resources,
  PeerAuthentications that try to disable mTLS, sidecar-only annotations.

What it cannot change (a policy selecting a workload no Service fronts, a mesh-wide
policy in the root namespace) it says so as a step to review.
"""

from __future__ import annotations

import copy

from auditor.core import kinds as k
from auditor.core.istio import INGRESS_USE_WAYPOINT, PROBE_SOURCE, USE_WAYPOINT, WAYPOINT_FOR
from auditor.facts.questions import (Context, namespace_waypoint, policy_reach, rules_closed_to, served,
                                     waypoint_only, waypoint_principal, ztunnel_keeps)
from auditor.plan.model import Change, ChangeSet
from auditor.plan.moves import POD_INJECTION_LABELS, moved_namespace, pods_of, relabelled
from auditor.model.report import Finding
from auditor.model.snapshot import K8sObject, as_list
from auditor.core.versions import V1_24

WAYPOINT_NAME = "waypoint"
WAYPOINT_CLASS = "istio-waypoint"
# Fields the API server owns: not part of a manifest to apply.
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Pod template annotations only a sidecar reads.
SIDECAR_ONLY_PREFIXES = ("sidecar.istio.io/", "proxy.istio.io/", "traffic.sidecar.istio.io/", "status.sidecar.istio.io/")
REWRITTEN_KINDS = (k.AUTHORIZATION_POLICY, k.REQUEST_AUTHENTICATION, k.TELEMETRY, k.WASM_PLUGIN)


def manifest(obj: K8sObject) -> dict:
    """The object as a manifest to apply: no status, no fields the API server owns."""
    raw = {key: copy.deepcopy(value) for key, value in obj.raw.items() if key != "status"}
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations")
    raw["metadata"] = meta
    return raw


def build(ctx: Context, moved: Context, namespace: str, introduced: list[Finding], rules: dict) -> ChangeSet:
    """The change set for `namespace`: `ctx` is today, `moved` the namespace moved with no
    other change, `introduced` what that move alone breaks, `rules` rule id -> Rule."""
    out = ChangeSet(namespace)
    reasons = [f for f in introduced if _in_namespace(f, namespace) or f.object.kind == "Namespace"]
    subjects = {(f.object.kind, f.object.namespace, f.object.name) for f in introduced}
    needs = [f for f in introduced if rules[f.rule].migration == "needs-waypoint"]
    services = _services_needing_waypoint(ctx, moved, namespace, needs)
    if services:
        _add_waypoint(ctx, moved, out, namespace, services)
    else:
        for name, kind in sorted({(f.object.name, f.object.kind) for f in needs if f.object.namespace == namespace}):
            out.changes.append(Change("review", kind, namespace, name, "needs a waypoint, but no Service fronts the "
                                      "workloads it configures, and a waypoint serves workloads through their Services"))
    out.changes.insert(0, _namespace_change(ctx, namespace))
    if out.waypoint:
        _rewrite_policies(ctx, moved, out, namespace, subjects)
    _templates(ctx, moved, out, namespace)
    _network_policies(moved, out, [f for f in reasons if f.rule in ("netpol-blocks-hbone", "netpol-blocks-probes")])
    _dead_objects(ctx, out, namespace, reasons)
    _mesh_wide(ctx, out, introduced)
    return out


def _in_namespace(f: Finding, namespace: str) -> bool:
    return f.object.namespace == namespace


def _namespace_change(ctx: Context, namespace: str) -> Change:
    obj = moved_namespace(ctx, namespace)
    dropped = sorted(set(ctx.ns_labels(namespace)) - set(obj.labels))
    why = "label istio.io/dataplane-mode=ambient" + (f"; remove {', '.join(dropped)}" if dropped else "")
    return Change("apply", "Namespace", None, namespace, why, manifest(obj))


# -- waypoint and its Services ---------------------------------------------------------------


def _services_needing_waypoint(ctx: Context, moved: Context, namespace: str, needs: list[Finding]) -> dict:
    """Service (or ServiceEntry) key -> object, for the Services of `namespace` whose
    traffic a waypoint must now handle, from the objects of the needs-waypoint findings."""
    found: dict[tuple, K8sObject] = {}
    for f in needs:
        obj = moved.snapshot.get(k.group_kind(f.object.api_version, f.object.kind), f.object.namespace, f.object.name)
        if obj is None:
            continue
        for target in served(moved, obj):
            if target.namespace == namespace and (target.gk == k.SERVICE or moved.version_at_least(V1_24)):
                found[target.key] = target
    return dict(sorted(found.items()))


def _add_waypoint(ctx: Context, moved: Context, out: ChangeSet, namespace: str, services: dict) -> None:
    name = namespace_waypoint(ctx, namespace) or WAYPOINT_NAME
    new = ctx.snapshot.get(k.GATEWAY, namespace, name) is None
    out.use_waypoint(name, new)
    if new:
        labels = {WAYPOINT_FOR: "service"}
        revision = ctx.ns_labels(namespace).get("istio.io/rev")
        if revision:
            labels["istio.io/rev"] = revision
        out.changes.append(Change("apply", "Gateway", namespace, name, "the waypoint that applies L7 features for the "
                                  "namespace's Services", {
                                      "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                      "metadata": {"name": name, "namespace": namespace, "labels": labels},
                                      "spec": {"gatewayClassName": WAYPOINT_CLASS,
                                               "listeners": [{"name": "mesh", "port": k.HBONE_PORT, "protocol": "HBONE"}]}}))
    for svc in services.values():
        labels = {**svc.labels, USE_WAYPOINT: name}
        why = f"send its traffic through waypoint {namespace}/{name}"
        if ctx.routes.ingress_routes.get(svc.key) and moved.version_at_least(V1_24):
            labels[INGRESS_USE_WAYPOINT] = "true"
            why += ", ingress traffic included"
        out.bound_services.append(svc.ref())
        out.changes.append(Change("apply", svc.kind, namespace, svc.name, why, manifest(relabelled(svc, labels))))


# -- policies --------------------------------------------------------------------------------


def _rewrite_policies(ctx: Context, moved: Context, out: ChangeSet, namespace: str, subjects: set) -> None:
    """Selector-based policies of the namespace that the waypoint must now apply."""
    bound = {ref for ref in out.bound_services}
    principal = waypoint_principal(ctx, namespace, out.waypoint)
    for policy in ctx.snapshot.of(*REWRITTEN_KINDS):
        if policy.namespace != namespace:
            continue
        moves = (policy.kind, policy.namespace, policy.name) in subjects or \
            policy.gk != k.AUTHORIZATION_POLICY or waypoint_only(policy.spec)
        if not moves:
            continue
        reach = policy_reach(moved, policy)  # the move leaves the policy itself as it is
        if reach.targeted:
            continue
        if not reach.selector:
            targets = [{"group": k.GATEWAY_API, "kind": "Gateway", "name": out.waypoint}]
        else:
            fronting = served(moved, policy)
            unserved = [i for i in reach.workloads if moved.workloads[i].role == "app" and
                        not any(s.ref() in bound for s in moved.services_of(i) if s.namespace == namespace)]
            if unserved or not fronting:
                out.changes.append(Change("review", policy.kind, namespace, policy.name,
                                          "selects workloads no waypoint-bound Service fronts (a waypoint serves a "
                                          "workload only through its Services); move it to a waypoint by hand"))
                continue
            targets = [{"group": "", "kind": "Service", "name": s.name} for s in sorted(fronting, key=lambda s: s.name)]
        _move_policy(out, policy, targets, principal)


def _move_policy(out: ChangeSet, policy: K8sObject, targets: list[dict], waypoint_principal: str) -> None:
    spec = {key: copy.deepcopy(v) for key, v in policy.spec.items() if key not in ("selector", "workloadSelector")}
    spec["targetRefs"] = targets
    body = manifest(policy)
    body["spec"] = spec
    where = ", ".join(f"{t['kind']} {t['name']}" for t in targets)
    out.changes.append(Change("apply", policy.kind, policy.namespace, policy.name,
                              f"applied by the waypoint through targetRefs ({where}) instead of a selector", body))
    if policy.gk in (k.AUTHORIZATION_POLICY, k.REQUEST_AUTHENTICATION):
        out.moved_policies.append(policy)
    if policy.gk != k.AUTHORIZATION_POLICY:
        return
    action = str(policy.spec.get("action") or "ALLOW")
    if action not in ("ALLOW", "DENY"):
        return
    kept = [r for r in as_list(policy.spec.get("rules")) if isinstance(r, dict) and ztunnel_keeps(r)]
    if action == "ALLOW":
        kept.append({"from": [{"source": {"principals": [waypoint_principal]}}]})
    if not kept:
        return
    companion = manifest(policy)
    companion["metadata"] = {key: v for key, v in companion["metadata"].items() if key in ("namespace", "labels")}
    companion["metadata"]["name"] = f"{policy.name}-ztunnel"
    companion["spec"] = {key: copy.deepcopy(v) for key, v in policy.spec.items() if key in ("selector", "action")}
    companion["spec"]["rules"] = kept
    why = ("the L4 part ztunnel keeps enforcing: traffic that passed the waypoint" if action == "ALLOW"
           else "the L4 rules ztunnel keeps enforcing")
    out.changes.append(Change("apply", policy.kind, policy.namespace, companion["metadata"]["name"], why, companion))


# -- workloads, network policies, dead objects -------------------------------------------------


def _templates(ctx: Context, moved: Context, out: ChangeSet, namespace: str) -> None:
    """Pod templates that would still get a sidecar (a pod label opts in): relabelled."""
    for w in (moved.workloads[i] for i in moved.index.in_namespace(namespace)):
        if not w.is_template or w.obj.kind in ("ReplicaSet", "Job"):
            continue
        if not any(label in w.labels for label in POD_INJECTION_LABELS) or not w.injection.inject:
            continue
        labels = {key: v for key, v in w.labels.items() if key not in POD_INJECTION_LABELS}
        body = manifest(w.obj)
        template = body["spec"]["jobTemplate"]["spec"]["template"] if w.obj.kind == "CronJob" else body["spec"]["template"]
        template.setdefault("metadata", {})["labels"] = labels
        out.template_labels[(w.obj.kind, w.obj.name)] = labels
        removed = ", ".join(sorted(set(w.labels) - set(labels)))
        out.changes.append(Change("apply", w.obj.kind, namespace, w.obj.name,
                                  f"remove pod label {removed}, which would inject a sidecar again", body))


def _network_policies(moved: Context, out: ChangeSet, findings: list[Finding]) -> None:
    for name in sorted({f.object.name for f in findings}):
        np = moved.snapshot.get(k.NETWORK_POLICY, out.namespace, name)
        if np is None:
            continue
        body = manifest(np)
        opened = []
        for rule in rules_closed_to(body["spec"], k.HBONE_PORT):
            rule["ports"].append({"port": k.HBONE_PORT, "protocol": "TCP"})
            opened.append("HBONE (TCP 15008)")
        if any(f.rule == "netpol-blocks-probes" for f in findings if f.object.name == name):
            body["spec"].setdefault("ingress", []).append({"from": [{"ipBlock": {"cidr": f"{PROBE_SOURCE}/32"}}]})
            opened.append(f"kubelet probes from {PROBE_SOURCE}")
        out.changes.append(Change("apply", "NetworkPolicy", out.namespace, name,
                                  f"let in {' and '.join(sorted(set(opened)))}", body))


def _dead_objects(ctx: Context, out: ChangeSet, namespace: str, reasons: list[Finding]) -> None:
    for f in reasons:
        if f.rule == "sidecar-resource-ambient":
            out.changes.append(Change("delete", "Sidecar", namespace, f.object.name,
                                      "ambient workloads have no sidecar to configure"))
        elif f.rule == "peerauth-disable-ambient":
            out.changes.append(Change("delete", "PeerAuthentication", namespace, f.object.name,
                                      "ambient mode cannot turn mTLS off; the policy is ignored"))
    for w in (ctx.workloads[i] for i in ctx.index.in_namespace(namespace)):
        if not w.is_template or w.obj.kind in ("ReplicaSet", "Job"):
            continue
        dead = sorted(key for key in w.annotations if key.startswith(SIDECAR_ONLY_PREFIXES) and key != "sidecar.istio.io/inject")
        if dead:
            out.changes.append(Change("delete", w.obj.kind, namespace, w.obj.name,
                                      "pod template annotations only a sidecar reads", fields=dead))
    for pod in pods_of(ctx, namespace):
        w = ctx.workload(pod)
        if w is not None and w.owner is None and w.sidecar:
            out.changes.append(Change("review", "Pod", namespace, pod.name,
                                      "a pod no controller owns keeps its sidecar until it is deleted and created again"))


def _mesh_wide(ctx: Context, out: ChangeSet, introduced: list[Finding]) -> None:
    """Root-namespace policies the move breaks: not rewritten, since they cover every namespace."""
    root = ctx.installation.root_namespace
    for name, kind in sorted({(f.object.name, f.object.kind) for f in introduced if f.object.namespace == root
                              and f.object.kind in ("AuthorizationPolicy", "RequestAuthentication", "Telemetry",
                                                    "WasmPlugin", "EnvoyFilter")}):
        out.changes.append(Change("review", kind, root, name,
                                  "a mesh-wide policy the move breaks: rewriting it would change every namespace"))

