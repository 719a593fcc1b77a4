"""Facts of a Gateway API route: its parents, and which of them have a waypoint."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.routes import is_waypoint_gateway, parent_refs
from auditor.model.snapshot import K8sObject

KINDS = k.ROUTE_GKS


def build(ctx: Context, obj: K8sObject) -> dict:
    parents = [_parent(ctx, p) for p in parent_refs(obj)]
    mesh_parents = [e for e in parents if e["kind"] in ("Service", "ServiceEntry") and e["exists"]]
    at_waypoint = [e["parent"] for e in parents if e["waypoint"]]
    return {
        "parents": parents,
        "unbound_ambient_parents": [
            f"{e['parent']}: {e['waypoint_reason']}" for e in mesh_parents
            if not e["waypoint"] and (e["ambient_workloads"] > 0 or (e["kind"] == "ServiceEntry" and ctx.mesh["has_ambient"]))
        ],
        "waypoint_parents": at_waypoint,
    }


def _parent(ctx: Context, p) -> dict:
    entry = {"parent": str(p), "kind": k.short_kind(p.gk), "exists": False, "waypoint": None,
             "ambient_workloads": 0, "waypoint_reason": None}
    target = ctx.snapshot.get(p.gk, p.namespace, p.name)
    if target is None:
        return entry
    entry["exists"] = True
    if p.gk in (k.SERVICE, k.SERVICE_ENTRY):
        binding = ctx.binding(target)
        entry["waypoint"] = binding.waypoint and f"{binding.waypoint[0]}/{binding.waypoint[1]}"
        entry["waypoint_reason"] = binding.detail
        if p.gk == k.SERVICE:
            entry["ambient_workloads"] = ctx.mode_counts(ctx.services.selected_workloads(target))["ambient"]
    elif is_waypoint_gateway(target):
        entry["waypoint"] = f"{p.namespace}/{p.name}"
    return entry
