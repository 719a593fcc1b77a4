"""Egress gateways: which hosts mesh traffic is steered through one (sidecar-style
controlled egress, which ambient workloads do not follow before Istio 1.24)."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.routes import applies_to_mesh, route_destinations
from auditor.facts.services import qualify_host, service_fqdn
from auditor.model.snapshot import K8sObject, Snapshot, as_list


def egress_gateway_hosts(snapshot: Snapshot) -> set[str]:
    """The FQDNs of egress gateway Services (by name, or by the istio=egressgateway selector)."""
    hosts = set()
    for svc in snapshot.of(k.SERVICE):
        selector = svc.spec.get("selector") if isinstance(svc.spec.get("selector"), dict) else {}
        if "egressgateway" in svc.name or selector.get("istio") == "egressgateway":
            hosts.add(service_fqdn(svc.name, svc.namespace or ""))
    return hosts


def routes_to_egress_gateway(vs: K8sObject, gateway_hosts: set[str]) -> bool:
    return any(qualify_host(h, vs.namespace or "") in gateway_hosts for h in route_destinations(vs))


def egress_routes_by_host(snapshot: Snapshot, gateway_hosts: set[str]) -> dict[str, list[str]]:
    """Hosts that mesh VirtualServices steer to an egress gateway, and those VirtualServices."""
    routes: dict[str, list[str]] = {}
    for vs in snapshot.of(k.VIRTUAL_SERVICE):
        if applies_to_mesh(vs) and routes_to_egress_gateway(vs, gateway_hosts):
            for host in as_list(vs.spec.get("hosts")):
                routes.setdefault(qualify_host(str(host), vs.namespace or ""), []).append(vs.ref())
    return routes
