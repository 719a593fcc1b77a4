"""Facts of a DestinationRule: whether it sets traffic policy, and for which ambient
services without a waypoint (where nothing applies it)."""

from __future__ import annotations

from auditor import kinds as k
from auditor.facts.context import Context
from auditor.facts.routes import host_targets
from auditor.snapshot import K8sObject, as_dict, as_list

KINDS = (k.DESTINATION_RULE,)


def build(ctx: Context, obj: K8sObject) -> dict:
    spec = obj.spec
    policy = bool(spec.get("trafficPolicy")) or any(as_dict(s).get("trafficPolicy") for s in as_list(spec.get("subsets")))
    unbound = []
    for target in host_targets(ctx.services, [spec.get("host")], obj.namespace or ""):
        if target.gk != k.SERVICE or ctx.binding(target).waypoint:
            continue
        if ctx.mode_counts(ctx.services.selected_workloads(target))["ambient"]:
            unbound.append(target.ref())
    return {"has_traffic_policy": policy, "ambient_hosts_without_waypoint": unbound}
