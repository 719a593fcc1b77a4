"""What the migration plan asks of the facts: the one module of auditor.facts that
auditor.plan imports (tests/test_architecture.py holds it to that).

Each name here answers a question plan has about today's cluster or a what-if copy of
it. The reasoning stays in the facts module that owns it (authz knows what ztunnel can
enforce, netpol what a NetworkPolicy admits, mode which data plane a pod gets); this
module only composes. A question plan needs and this module lacks is added here, not
imported from elsewhere in facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from auditor.core import kinds as k
from auditor.core.istio import USE_WAYPOINT
from auditor.facts.attachment import attachment_of, selector_of, target_refs_of, warm_targets
from auditor.facts.authz import waypoint_only, ztunnel_keeps
from auditor.facts.context import MODES, Context, subject_ref
from auditor.facts.derive import derive
from auditor.facts.identity import identity_namespace, named_identities, trust_domain_of, warm_callers
from auditor.facts.mode import ambient_intent, namespace_in_ambient, predict_injection
from auditor.facts.netpol import rules_closed_to
from auditor.facts.routes import backend_refs, host_targets, is_waypoint_gateway, parent_refs, route_destinations
from auditor.model.snapshot import K8sObject, as_dict, as_list

__all__ = [
    # the facts object and its words
    "Context", "MODES", "subject_ref",
    # what-if copies
    "share_with_what_ifs", "what_if",
    # traffic: which Services an object concerns, the namespace's waypoint
    "served", "traffic_targets", "namespace_waypoint", "waypoint_principal",
    # policies: whom they cover, whom they name, what ztunnel keeps of them
    "policy_reach", "named_callers", "waypoint_only", "ztunnel_keeps",
    # namespaces, pods, NetworkPolicies
    "in_ambient", "restarted_mode", "rules_closed_to",
]

in_ambient = namespace_in_ambient


# -- what-if copies ----------------------------------------------------------------------------


def share_with_what_ifs(ctx: Context) -> None:
    """Build now every index what-if copies of `ctx` would otherwise each build for themselves."""
    ctx.warm()
    warm_targets(ctx)
    warm_callers(ctx)


def what_if(ctx: Context, put: Iterable[K8sObject] = (), remove: Iterable[tuple] = ()) -> Context:
    """The facts of `ctx`'s cluster with `put` objects replaced or added and `remove` keys gone."""
    return derive(ctx, put, remove)


# -- traffic -----------------------------------------------------------------------------------


def served(ctx: Context, obj: K8sObject) -> list[K8sObject]:
    """The Services (and ServiceEntries) whose traffic carries what an object configures."""
    if obj.gk in (k.SERVICE, k.SERVICE_ENTRY):
        return [obj]
    if obj.gk == k.VIRTUAL_SERVICE:
        return host_targets(ctx.services, obj.spec.get("hosts"), obj.namespace or "")
    if obj.gk == k.DESTINATION_RULE:
        return host_targets(ctx.services, [obj.spec.get("host")], obj.namespace or "")
    if obj.gk in k.ROUTE_GKS:
        return [t for p in parent_refs(obj) if (t := ctx.snapshot.get(p.gk, p.namespace, p.name)) is not None
                and t.gk in (k.SERVICE, k.SERVICE_ENTRY)]
    if obj.gk in k.POLICY_GKS:
        if target_refs_of(obj.spec):
            return [t for ref in target_refs_of(obj.spec) if str(ref.get("kind")) in ("Service", "ServiceEntry")
                    and (t := ctx.snapshot.get(k.ref_gk(str(ref.get("group") or ""), str(ref.get("kind"))),
                                               obj.namespace, str(ref.get("name")))) is not None]
        found: dict[tuple, K8sObject] = {}
        for i in attachment_of(ctx, obj).workloads:
            for svc in ctx.services_of(i):
                if svc.namespace == obj.namespace:
                    found[svc.key] = svc
        return list(found.values())
    return []


def traffic_targets(ctx: Context, obj: K8sObject) -> list[tuple]:
    """Keys (gk, namespace, name) of what a VirtualService, DestinationRule or Gateway API
    route sends traffic to or configures: the Services and ServiceEntries its hosts and
    destinations resolve to, or the parents and backends it names (found or not)."""
    ns = obj.namespace or ""
    if obj.gk == k.VIRTUAL_SERVICE:
        hosts = [*as_list(obj.spec.get("hosts")), *route_destinations(obj)]
        return [t.key for t in host_targets(ctx.services, hosts, ns)]
    if obj.gk == k.DESTINATION_RULE:
        return [t.key for t in host_targets(ctx.services, [obj.spec.get("host")], ns)]
    if obj.gk in k.ROUTE_GKS:
        return [(p.gk, p.namespace, p.name) for p in (*parent_refs(obj), *backend_refs(obj))]
    return []


def namespace_waypoint(ctx: Context, namespace: str) -> str | None:
    """The waypoint the namespace's label asks for, or one the namespace already has."""
    requested = ctx.ns_labels(namespace).get(USE_WAYPOINT)
    if requested and requested != "none":
        return requested
    for gw in ctx.snapshot.of(k.GATEWAY):
        if gw.namespace == namespace and is_waypoint_gateway(gw):
            return gw.name
    return None


def waypoint_principal(ctx: Context, namespace: str, waypoint: str) -> str:
    """The identity a waypoint's traffic carries (Istio runs it as a service account of its name)."""
    return f"{trust_domain_of(ctx)}/ns/{namespace}/sa/{waypoint}"


# -- policies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyReach:
    """How a policy reaches workloads: by targetRefs (`targeted`), or by a selector
    (`selector`: one is written, even empty) or its namespace; `workloads`: the ids it
    covers when not targeted."""

    targeted: bool
    selector: bool
    workloads: list[int]


def policy_reach(ctx: Context, policy: K8sObject) -> PolicyReach:
    selector = selector_of(policy.gk, policy.spec) is not None
    if target_refs_of(policy.spec):
        return PolicyReach(True, selector, [])
    return PolicyReach(False, selector, attachment_of(ctx, policy).workloads)


def named_callers(spec: dict) -> list[tuple[str, str, str | None]]:
    """(principal | namespace | serviceAccount, value, the one namespace it names or None)
    for each caller identity a policy's rules name."""
    return [(kind, value, identity_namespace(kind, value)) for kind, value in named_identities(spec)]


# -- pods ----------------------------------------------------------------------------------------


def restarted_mode(ctx: Context, namespace: str, ns_labels: dict, pod: K8sObject, labels: dict) -> str:
    """The data plane a running pod comes back with after a restart under `ns_labels` and
    its own new `labels`: "sidecar" (injected again), "ambient" (its labels ask istio-cni
    to enroll it) or "none"."""
    injection = predict_injection(namespace, ns_labels, labels, pod.annotations,
                                  as_dict(pod.spec).get("hostNetwork") is True, ctx.installation.injector)
    if injection.inject:
        return "sidecar"
    return "ambient" if ambient_intent(ns_labels, labels, ctx.installation, namespace).intends else "none"
