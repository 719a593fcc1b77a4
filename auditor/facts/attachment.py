"""Policy attachment (evidence C.4): which workloads a policy covers and which proxy enforces it.

Without `targetRefs`, a policy binds by selector, to its namespace, or (in the root
namespace) to the whole mesh; sidecars, gateways and, for AuthorizationPolicy and
PeerAuthentication, ztunnel enforce it. Waypoints never take such policies. With
`targetRefs`, only waypoints and gateways enforce it; sidecars and ztunnel ignore it.

`attachment_of(ctx, policy)` answers this once per policy; policy facts and `explain`
both read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.indexes import Index
from auditor.facts.waypoint import Binding
from auditor.facts.workloads import Workload
from auditor.model.snapshot import K8sObject

# Where the selector lives: spec.selector.matchLabels, or spec.workloadSelector.labels.
_WORKLOAD_SELECTOR_KINDS = (k.SIDECAR, k.ENVOY_FILTER)
# Policies ztunnel receives (as L4 policy) when they select an ambient workload.
_ZTUNNEL_KINDS = (k.AUTHORIZATION_POLICY, k.PEER_AUTHENTICATION)
# Root-namespace policies with a selector apply to matching workloads in every namespace.
_MESH_WIDE_SELECTOR_KINDS = (k.AUTHORIZATION_POLICY, k.PEER_AUTHENTICATION, k.REQUEST_AUTHENTICATION, k.ENVOY_FILTER,
                             k.WASM_PLUGIN, k.TELEMETRY)
# What a targetRef may name (group, kind).
TARGET_KINDS = {("", "Service"), (k.ISTIO_NETWORKING, "ServiceEntry"), (k.GATEWAY_API, "Gateway"),
                (k.GATEWAY_API, "GatewayClass")}
# Policies that make a waypoint do L7 work for the services behind it.
L7_POLICY_GKS = (k.AUTHORIZATION_POLICY, k.REQUEST_AUTHENTICATION, k.WASM_PLUGIN)


def selector_of(gk: str, spec: dict) -> dict | None:
    """The selector's matchLabels, {} for an empty selector, None when there is none."""
    if gk in _WORKLOAD_SELECTOR_KINDS:
        sel = spec.get("workloadSelector")
        if not isinstance(sel, dict):
            return None
        labels = sel.get("labels")
    else:
        sel = spec.get("selector")
        if not isinstance(sel, dict):
            return None
        labels = sel.get("matchLabels")
    return labels if isinstance(labels, dict) else {}


def target_refs_of(spec: dict) -> list[dict]:
    refs = spec.get("targetRefs")
    refs = [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []
    single = spec.get("targetRef")
    if isinstance(single, dict):
        refs.append(single)
    return refs


def scope_of(gk: str, spec: dict, namespace: str, root_namespace: str) -> str:
    if target_refs_of(spec):
        return "targetRefs"
    if selector_of(gk, spec):
        return "selector"
    return "mesh" if namespace == root_namespace else "namespace"


def enforcer(gk: str, role: str, mode: str) -> str:
    """Which proxy applies a selector/namespace policy of kind `gk` to one workload."""
    if role == "gateway":
        return "nobody" if gk == k.SIDECAR else "gateway"
    if role in ("waypoint", "control-plane"):
        return "nobody"  # waypoints never take selector policies
    if mode == "sidecar":
        return "sidecar"
    if mode == "ambient" and gk in _ZTUNNEL_KINDS:
        return "ztunnel"
    return "nobody"


def mesh_wide_selector(gk: str) -> bool:
    return gk in _MESH_WIDE_SELECTOR_KINDS


@dataclass(frozen=True)
class Attachment:
    """How one policy attaches. `workloads`: the ids a selector, namespace or mesh policy
    covers (none for targetRefs); `targets`: each targetRef resolved (see resolve_target)."""

    scope: str  # "targetRefs", "selector", "namespace" or "mesh"
    workloads: list[int]
    targets: list[dict]

    def enforcers(self, ctx: Context, gk: str) -> list[str]:
        if self.scope == "targetRefs":
            found = {"waypoint" if t["status"] == "waypoint" else "gateway" for t in self.targets
                     if t["status"] in ("waypoint", "gateway")}
        else:
            found = {enforcer(gk, ctx.workloads[i].role, ctx.workloads[i].mode) for i in self.workloads}
        found.discard("nobody")
        return sorted(found)


def attachment_of(ctx: Context, policy: K8sObject) -> Attachment:
    """How a policy attaches: the workloads it covers or its resolved targetRefs (cached)."""
    found = ctx.attachments.get(policy.key)
    if found is None:
        found = ctx.attachments[policy.key] = _attach(ctx, policy)
    return found


def _attach(ctx: Context, policy: K8sObject) -> Attachment:
    spec, ns = policy.spec, policy.namespace or ""
    root = ctx.installation.root_namespace
    scope = scope_of(policy.gk, spec, ns, root)
    if scope == "targetRefs":
        return Attachment(scope, [], [resolve_target(ctx, policy, ref) for ref in target_refs_of(spec)])
    if scope == "selector":
        wide = ns == root and mesh_wide_selector(policy.gk)
        ids = ctx.index.select(None if wide else ns, selector_of(policy.gk, spec))
    elif scope == "mesh":
        ids = ctx.index.all()
    else:
        ids = ctx.index.in_namespace(ns)
    return Attachment(scope, ids, [])


def headless(service: K8sObject) -> bool:
    """A Service with no VIP (`clusterIP: None`): DNS gives its clients the pods' own IPs."""
    return service.gk == k.SERVICE and service.spec.get("clusterIP") == "None"


def resolve_target(ctx: Context, policy: K8sObject, ref: dict) -> dict:
    """One targetRef: status `waypoint` (a waypoint applies the policy), `gateway` (a
    non-waypoint Gateway does), `unbound` (the Service has no waypoint), `missing` or
    `invalid`, with a detail sentence."""
    group, kind, name = str(ref.get("group", "")), str(ref.get("kind", "")), str(ref.get("name", ""))
    ns = policy.namespace or ""
    out = {"group": group, "kind": kind, "name": name, "status": "invalid", "waypoint": None, "detail": ""}
    if (group, kind) not in TARGET_KINDS:
        out["detail"] = f"{kind} is not a kind policies can target"
    elif ref.get("namespace") and ref.get("namespace") != ns:
        out["detail"] = "targets another namespace, which never matches"
    elif kind in ("Service", "ServiceEntry"):
        target = ctx.snapshot.get(k.ref_gk(group, kind), ns, name)
        if target is None:
            out.update(status="missing", detail=f"{kind} {ns}/{name} does not exist")
        else:
            binding = ctx.binding(target)
            if target.gk == k.SERVICE:
                counts = ctx.mode_counts(ctx.services.selected_workloads(target))
                out["sidecar_workloads"] = counts["sidecar"]
                out["only_sidecars"] = counts["sidecar"] > 0 and counts["sidecar"] == sum(counts.values())
            if binding.waypoint and headless(target) and (binding.waypoint_for or "service") == "service":
                # Clients of a headless Service address its pods' IPs, and a service waypoint
                # sees only traffic addressed to a Service's VIP (evidence WP-HEADLESS-SERVICE).
                out.update(status="unbound", detail=f"{kind} {ns}/{name} is headless: its clients address the pods' IPs, "
                           f"which never reach service waypoint {binding.waypoint[0]}/{binding.waypoint[1]}")
            elif binding.waypoint:
                out.update(status="waypoint", waypoint=f"{binding.waypoint[0]}/{binding.waypoint[1]}", detail=binding.detail)
            else:
                out.update(status="unbound", detail=f"{kind} {ns}/{name} has no waypoint ({binding.detail})")
    elif kind == "Gateway":
        gateway = ctx.snapshot.get(k.GATEWAY, ns, name)
        if gateway is None:
            out.update(status="missing", detail=f"Gateway {ns}/{name} does not exist")
        else:
            waypoint = str(gateway.spec.get("gatewayClassName", "")).endswith("waypoint")
            out.update(status="waypoint" if waypoint else "gateway", waypoint=f"{ns}/{name}" if waypoint else None)
    elif ns == ctx.installation.root_namespace:  # GatewayClass: every waypoint of the class, from the root namespace only
        out.update(status="waypoint", detail=f"all waypoints of class {name}")
    else:
        out["detail"] = f"a GatewayClass target only works from the root namespace {ctx.installation.root_namespace}"
    return out


POLICY_TARGETS = Index("policy_targets", frozenset(k.POLICY_GKS))


class TargetIndex:
    """L7 policies by what their targetRefs name: (gk, namespace, name) of a Service,
    ServiceEntry, Gateway, or (namespace None) a GatewayClass."""

    def __init__(self, ctx: Context):
        self._by_target: dict[tuple, list[K8sObject]] = {}
        for policy in ctx.snapshot.of(*L7_POLICY_GKS):
            for ref in target_refs_of(policy.spec):
                kind = str(ref.get("kind", ""))
                gk = k.ref_gk(str(ref.get("group") or "") or None, kind)
                ns = None if kind == "GatewayClass" else policy.namespace
                self._by_target.setdefault((gk, ns, str(ref.get("name", ""))), []).append(policy)

    def naming(self, gk: str, namespace: str | None, name: str) -> list[K8sObject]:
        return self._by_target.get((gk, namespace, name), [])


def warm_targets(ctx: Context) -> None:
    """Build the policy target index now (see Context.warm)."""
    ctx.once(POLICY_TARGETS, lambda: TargetIndex(ctx))


def waypoint_policies(ctx: Context, target: K8sObject, binding: Binding) -> list[str]:
    """L7 policies a waypoint applies to traffic for `target`: those naming the target,
    the waypoint's Gateway, or (from the root namespace) the waypoint's class."""
    if not binding.waypoint:
        return []
    index = ctx.once(POLICY_TARGETS, lambda: TargetIndex(ctx))
    found = list(index.naming(target.gk, target.namespace, target.name))
    wp_ns, wp_name = binding.waypoint
    found += index.naming(k.GATEWAY, wp_ns, wp_name)
    gateway = ctx.snapshot.get(k.GATEWAY, wp_ns, wp_name)
    if gateway is not None:
        cls = str(gateway.spec.get("gatewayClassName", ""))
        found += [p for p in index.naming(k.GATEWAY_CLASS, None, cls) if p.namespace == ctx.installation.root_namespace]
    return sorted({p.ref() for p in found})


def policies_reaching(ctx: Context, w: Workload) -> list[dict]:
    """Every policy that applies to a workload, how it attaches, and who enforces it."""
    out = []
    services = {s.key for s in ctx.services_of(w.id)}
    for policy in ctx.snapshot.of(*k.POLICY_GKS):
        attachment = attachment_of(ctx, policy)
        if attachment.scope == "targetRefs":
            entry = _through_service(ctx, policy, attachment, services)
        elif w.id in attachment.workloads:
            entry = {"attached_by": attachment.scope, "enforced_by": _enforcer_text(policy, w)}
        else:
            entry = None
        if entry is None:
            continue
        entry = {"policy": policy.ref(), **entry}
        if policy.gk == k.AUTHORIZATION_POLICY:
            entry["action"] = str(policy.spec.get("action") or "ALLOW")
        out.append(entry)
    return sorted(out, key=lambda e: e["policy"])


def _through_service(ctx: Context, policy: K8sObject, attachment: Attachment, services: set) -> dict | None:
    """A targetRefs policy reaches a workload through the first Service it names that selects it."""
    ns = policy.namespace or ""
    for target in attachment.targets:
        key = (k.SERVICE if target["kind"] == "Service" else None, ns, target["name"])
        if key in services:
            binding = ctx.binding(ctx.snapshot.get(*key))
            how = f"waypoint {binding.waypoint[0]}/{binding.waypoint[1]}" if binding.waypoint else "nobody (no waypoint)"
            return {"attached_by": f"targetRefs {target['kind']} {ns}/{target['name']}", "enforced_by": how}
    return None


def _enforcer_text(policy: K8sObject, w: Workload) -> str:
    who = enforcer(policy.gk, w.role, w.mode)
    if who != "nobody":
        return who
    why = "waypoints never take selector policies" if w.role == "waypoint" else f"{w.mode} workloads do not apply {policy.kind}"
    return f"nobody ({why})"
