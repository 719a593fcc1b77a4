"""Facts of a ServiceEntry: its waypoint, and the egress controls that apply to its hosts."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.waypoint import legacy_reference
from auditor.model.snapshot import K8sObject, as_list

KINDS = (k.SERVICE_ENTRY,)


def build(ctx: Context, obj: K8sObject) -> dict:
    by_host = ctx.egress_routes_by_host()
    routed = sorted({ref for h in as_list(obj.spec.get("hosts")) for ref in by_host.get(str(h).lower(), ())})
    hosts = [str(h) for h in as_list(obj.spec.get("hosts"))]
    return {
        "waypoint": ctx.binding(obj).to_facts(),
        **legacy_reference(obj.labels, obj.annotations),
        "egress_gateway_routes": routed,
        # Egress control ambient workloads do not follow before Istio 1.24.
        "egress_control": f"egress to these hosts is forced through an egress gateway by {', '.join(routed)}" if routed else None,
        "wildcard_hosts": [h for h in hosts if h.startswith("*")],
        "resolution": str(obj.spec.get("resolution") or "NONE"),
        "hosts": hosts,
    }
