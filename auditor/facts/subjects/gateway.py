"""Facts of a Gateway API Gateway: whether it is a waypoint, for what traffic, who uses
it, and whether it is ready."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import EXAMPLES, Context
from auditor.facts.routes import is_waypoint_gateway
from auditor.model.snapshot import K8sObject, as_dict, as_list

KINDS = (k.GATEWAY,)


def build(ctx: Context, obj: K8sObject) -> dict:
    listeners = [lst for lst in as_list(obj.spec.get("listeners")) if isinstance(lst, dict)]
    users = ctx.waypoint_users(obj)
    readiness, why = _readiness(obj)
    return {
        "is_waypoint": is_waypoint_gateway(obj),
        "waypoint_for": ctx.waypoints.traffic_type(obj),
        "hbone_listener": any(lst.get("port") == k.HBONE_PORT and lst.get("protocol") == "HBONE" for lst in listeners),
        "users": users[:EXAMPLES],
        "user_count": len(users),
        "readiness": readiness,
        "not_ready_reason": why,
    }


def _readiness(obj: K8sObject) -> tuple[str, str]:
    """ready, not-ready (and why) or unknown: a manifest says nothing about readiness."""
    if not obj.observed:
        return "unknown", ""
    status = as_dict(obj.raw.get("status"))
    programmed = [c for c in as_list(status.get("conditions")) if isinstance(c, dict) and c.get("type") == "Programmed"]
    if not status.get("addresses"):
        return "not-ready", "it has no status.addresses"
    if programmed and programmed[0].get("status") != "True":
        return "not-ready", f"its Programmed condition is {programmed[0].get('status')} ({programmed[0].get('reason', 'no reason')})"
    return "ready", ""
