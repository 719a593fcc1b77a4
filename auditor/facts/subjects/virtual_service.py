"""Facts of a VirtualService: the services its hosts name, their waypoints, and conflicts."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.reach import unbound_for_ambient
from auditor.facts.routes import applies_to_mesh, host_targets
from auditor.model.snapshot import K8sObject, as_list

KINDS = (k.VIRTUAL_SERVICE,)


def build(ctx: Context, obj: K8sObject) -> dict:
    hosts = _hosts(ctx, obj)
    mesh = applies_to_mesh(obj)
    mesh_parents = ctx.routes.mesh_route_parents
    conflicts = sorted({f"{h['target']} (also routed by {', '.join(sorted(set(mesh_parents[h['key']])))})"
                        for h in hosts if h["key"] in mesh_parents})
    for h in hosts:
        del h["key"]
    with_waypoint = [h["target"] for h in hosts if h["waypoint"]]
    return {
        "applies_to_mesh": mesh,
        "hosts": hosts,
        "ambient_hosts_without_waypoint": _unbound(ctx, obj),
        "hosts_with_waypoint": with_waypoint,
        "hosts_without_waypoint": [h["target"] for h in hosts if not h["waypoint"]],
        "routes_to_egress_gateway": ctx.routes_to_egress_gateway(obj),
        "httproute_conflicts": conflicts if mesh else [],
    }


def _unbound(ctx: Context, obj: K8sObject) -> list[str]:
    """The Services and ServiceEntries its hosts name that ambient clients reach with no waypoint."""
    targets = host_targets(ctx.services, obj.spec.get("hosts"), obj.namespace or "")
    return [d for d in (unbound_for_ambient(ctx, t) for t in targets) if d is not None]


def _hosts(ctx: Context, obj: K8sObject) -> list[dict]:
    hosts = []
    for host in as_list(obj.spec.get("hosts")):
        for target in ctx.services.resolve_host(str(host), obj.namespace or ""):
            binding = ctx.binding(target)
            counts = ctx.mode_counts(ctx.services.selected_workloads(target)) if target.gk == k.SERVICE else None
            hosts.append({
                "key": target.key,
                "host": str(host),
                "target": target.ref(),
                "waypoint": binding.waypoint and f"{binding.waypoint[0]}/{binding.waypoint[1]}",
                "waypoint_reason": binding.reason,
                "ambient_workloads": counts["ambient"] if counts else 0,
            })
    return hosts
