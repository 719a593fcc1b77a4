"""Routes: Gateway API routes and VirtualServices, what they attach to and where they send traffic.

A route attaches either to a gateway (north-south: its backends are ingress backends) or,
through a `parentRef` of kind Service/ServiceEntry (GAMMA), to the mesh, where ambient
clients apply it only through the parent's waypoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.core import kinds as k
from auditor.facts.services import ServiceIndex
from auditor.model.snapshot import K8sObject, Snapshot, as_dict, as_list

WAYPOINT_CLASSES = frozenset({"istio-waypoint", "istio-agentgateway-waypoint"})


@dataclass(frozen=True)
class ParentRef:
    gk: str  # k.SERVICE, k.SERVICE_ENTRY or k.GATEWAY (or another kind, kept as written)
    namespace: str
    name: str

    def key(self) -> tuple:
        return (self.gk, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{k.short_kind(self.gk)} {self.namespace}/{self.name}"


def parent_refs(route: K8sObject) -> list[ParentRef]:
    """parentRefs with Gateway API defaults: group gateway.networking.k8s.io, kind Gateway,
    the route's namespace."""
    out = []
    for ref in as_list(route.spec.get("parentRefs")):
        if not isinstance(ref, dict) or not ref.get("name"):
            continue
        kind = str(ref.get("kind") or "Gateway")
        group = None if ref.get("group") is None else str(ref["group"])
        out.append(ParentRef(k.ref_gk(group, kind), str(ref.get("namespace") or route.namespace or ""), str(ref["name"])))
    return out


def backend_refs(route: K8sObject) -> list[ParentRef]:
    """Service (and ServiceEntry) backends of every rule of a route."""
    out = []
    for rule in as_list(route.spec.get("rules")):
        for ref in as_list(as_dict(rule).get("backendRefs")):
            if not isinstance(ref, dict) or not ref.get("name"):
                continue
            kind = str(ref.get("kind") or "Service")
            group = str(ref.get("group") or "")
            if kind == "Hostname":
                continue
            out.append(ParentRef(k.ref_gk(group, kind), str(ref.get("namespace") or route.namespace or ""), str(ref["name"])))
    return out


def is_waypoint_gateway(gateway: K8sObject | None) -> bool:
    return gateway is not None and str(gateway.spec.get("gatewayClassName", "")) in WAYPOINT_CLASSES


def applies_to_mesh(vs: K8sObject) -> bool:
    gateways = as_list(vs.spec.get("gateways"))
    return not gateways or "mesh" in gateways


def applies_to_gateways(vs: K8sObject) -> bool:
    return any(g != "mesh" for g in as_list(vs.spec.get("gateways")))


def route_destinations(vs: K8sObject) -> list[str]:
    hosts = []
    for section in ("http", "tcp", "tls"):
        for route in as_list(vs.spec.get(section)):
            for dest in as_list(as_dict(route).get("route")):
                if isinstance(dest, dict) and isinstance(dest.get("destination"), dict):
                    hosts.append(str(dest["destination"].get("host", "")))
    return hosts


class RouteIndex:
    """Who routes to what: ingress backends and mesh (GAMMA) route parents."""

    def __init__(self, snapshot: Snapshot, services: ServiceIndex):
        self.ingress_routes: dict[tuple, list[str]] = {}  # Service key -> routes reaching it from a gateway
        self.mesh_route_parents: dict[tuple, list[str]] = {}  # Service/SE key -> HTTP/GRPC routes attached to it
        for vs in snapshot.of(k.VIRTUAL_SERVICE):
            if not applies_to_gateways(vs):
                continue
            for host in route_destinations(vs):
                for target in services.resolve_host(host, vs.namespace or ""):
                    self.ingress_routes.setdefault(target.key, []).append(vs.ref())
        for route in snapshot.of(*k.ROUTE_GKS):
            parents = parent_refs(route)
            gateway_parents = [p for p in parents
                               if p.gk == k.GATEWAY and not is_waypoint_gateway(snapshot.get(k.GATEWAY, p.namespace, p.name))]
            if gateway_parents:
                for backend in backend_refs(route):
                    self.ingress_routes.setdefault(backend.key(), []).append(route.ref())
            if route.gk in k.L7_ROUTE_GKS:
                for p in parents:
                    if p.gk in (k.SERVICE, k.SERVICE_ENTRY):
                        self.mesh_route_parents.setdefault(p.key(), []).append(route.ref())


def host_targets(services: ServiceIndex, hosts, namespace: str) -> list[K8sObject]:
    """Services and ServiceEntries named by a list of route or rule hosts, without repeats."""
    seen: dict[tuple, K8sObject] = {}
    for host in as_list(hosts):
        for target in services.resolve_host(str(host), namespace):
            seen.setdefault(target.key, target)
    return list(seen.values())

