"""Who a route or traffic policy reaches in ambient mode: a Service's or ServiceEntry's
ambient clients, and whether a waypoint is there to apply the configuration for them.

ztunnel applies no VirtualService, HTTPRoute or DestinationRule: for ambient clients,
such configuration takes effect only at the destination's waypoint. For a Service, the
ambient workloads it serves are the sign it is reached in ambient mode; a ServiceEntry
(an external host) is called by ambient clients anywhere it is visible (`exportTo`),
and can be bound to a waypoint only from Istio 1.24 on.
"""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.model.snapshot import K8sObject, as_list


def ambient_clients(ctx: Context, entry: K8sObject) -> int:
    """Ambient workloads that can call a ServiceEntry's hosts: those of its namespace when
    it is exported only there (`exportTo: ["."]`), else all of the mesh's."""
    exported = [str(e) for e in as_list(entry.spec.get("exportTo"))]
    if exported and all(e in (".", entry.namespace) for e in exported):
        return ctx.mode_counts(ctx.index.in_namespace(entry.namespace or ""))["ambient"]
    return ctx.mesh["workloads"]["ambient"]


def unbound_for_ambient(ctx: Context, target: K8sObject) -> str | None:
    """A Service or ServiceEntry reached by ambient clients with no waypoint, described as
    a message names it; None when a waypoint serves it or no ambient client reaches it."""
    binding = ctx.binding(target)
    if binding.waypoint:
        return None
    if target.gk == k.SERVICE:
        if not ctx.mode_counts(ctx.services.selected_workloads(target))["ambient"]:
            return None
        return f"{target.ref()}, which serves ambient workloads and has no waypoint"
    if target.gk == k.SERVICE_ENTRY and ambient_clients(ctx, target):
        why = " (ServiceEntries bind to waypoints from Istio 1.24 on)" if binding.reason == "unsupported" else ""
        return f"{target.ref()}, whose hosts ambient workloads call with no waypoint bound{why}"
    return None
