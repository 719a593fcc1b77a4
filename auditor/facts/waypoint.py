"""Which waypoint serves a namespace, service, service entry or workload, and why not (evidence C.3).

The binding is read from the object's own `istio.io/use-waypoint` label first, then its
namespace's. Whatever the labels ask for, no fallback happens: a label naming a waypoint
that is missing, not ready, closed to this namespace or of the wrong traffic type leaves
the object with no waypoint at all, and ztunnel then sends traffic straight through.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.core.istio import USE_WAYPOINT, USE_WAYPOINT_NS, WAYPOINT_FOR
from auditor.core import kinds as k
from auditor.facts.labels import namespace_labels_as_served, selector_matches
from auditor.model.snapshot import K8sObject, Snapshot, as_dict, as_list
from auditor.core.versions import Version

# Services of waypoints and east-west gateways never get a waypoint themselves.
NEVER_BOUND_MANAGERS = frozenset({"istio.io-mesh-controller", "istio.io-eastwest-controller"})
V1_23 = Version(1, 23)

# What an object needs the waypoint to accept.
SERVICE_TRAFFIC = "service"
WORKLOAD_TRAFFIC = "workload"
NAMESPACE = "namespace"  # a namespace's own label; its members apply the traffic check


@dataclass(frozen=True)
class Binding:
    """The outcome of waypoint resolution for one object.

    `waypoint` is set only when traffic will really go through it. `requested` is what the
    labels asked for; `reason` says why that did not happen (None when bound).
    """

    waypoint: tuple[str, str] | None
    requested: tuple[str, str] | None
    source: str | None
    reason: str | None
    detail: str
    waypoint_for: str | None = None
    silent: bool = False

    def to_facts(self) -> dict:
        return {
            "name": _ref(self.waypoint),
            "requested": _ref(self.requested),
            "source": self.source,
            "reason": self.reason,
            "detail": self.detail,
            "waypoint_for": self.waypoint_for,
            "silent": self.silent,
        }


def _ref(key: tuple[str, str] | None) -> str | None:
    return f"{key[0]}/{key[1]}" if key else None


class WaypointResolver:
    def __init__(self, snapshot: Snapshot, namespace_labels: dict[str, dict], version: Version | None):
        self.gateways = {(g.namespace, g.name): g for g in snapshot.of(k.GATEWAY)}
        self.classes = {c.name: c for c in snapshot.of(k.GATEWAY_CLASS)}
        self.namespace_labels = namespace_labels
        self.version = version

    @property
    def cross_namespace(self) -> bool:
        """use-waypoint-namespace and allowedRoutes exist from 1.23 on."""
        return self.version is None or self.version >= V1_23

    def traffic_type(self, gateway: K8sObject) -> str:
        """Effective `istio.io/waypoint-for`: Gateway label, else GatewayClass label (1.23+), else service."""
        value = gateway.labels.get(WAYPOINT_FOR)
        if value is None and self.cross_namespace:
            cls = self.classes.get(str(gateway.spec.get("gatewayClassName", "")))
            if cls is not None:
                value = cls.labels.get(WAYPOINT_FOR)
        return value if value is not None else SERVICE_TRAFFIC

    def resolve(self, traffic: str, namespace: str, labels: dict, *, exempt: bool = False) -> Binding:
        """Binding for an object in `namespace` with `labels`, needing `traffic` from the waypoint."""
        if exempt:
            return Binding(None, None, None, "waypoint-service", "waypoints and east-west gateways never use a waypoint")
        ns_labels = self.namespace_labels.get(namespace, {})
        if traffic == NAMESPACE:
            ns_labels = labels  # a namespace's own labels are the object labels
        if USE_WAYPOINT in labels:
            source, owner_labels = "object", labels
        elif USE_WAYPOINT in ns_labels:
            source, owner_labels = "namespace", ns_labels
        else:
            return Binding(None, None, None, "no-label", f"neither the object nor namespace {namespace} sets {USE_WAYPOINT}")
        name = owner_labels[USE_WAYPOINT]
        where = "its own label" if source == "object" else f"the label on namespace {namespace}"
        if name == "none":
            return Binding(None, None, source, "opted-out", f"{USE_WAYPOINT}=none in {where} opts out of any waypoint")
        wp_ns = namespace
        if self.cross_namespace and owner_labels.get(USE_WAYPOINT_NS):
            wp_ns = owner_labels[USE_WAYPOINT_NS]
        requested = (wp_ns, name)
        gateway = self.gateways.get(requested)
        if gateway is None:
            return Binding(None, requested, source, "missing", f"{where} names waypoint {wp_ns}/{name}, and no such Gateway exists")
        waypoint_for = self.traffic_type(gateway)
        if gateway.observed and not _has_addresses(gateway):
            return Binding(None, requested, source, "not-ready", f"waypoint {wp_ns}/{name} has no status.addresses (not programmed)", waypoint_for)
        if wp_ns != namespace and self.cross_namespace and not self._admits(gateway, namespace):
            return Binding(
                None, requested, source, "cross-namespace-denied",
                f"waypoint {wp_ns}/{name} does not admit namespace {namespace} (allowedRoutes on its HBONE listener)",
                waypoint_for,
            )
        if traffic != NAMESPACE and not _serves(waypoint_for, traffic):
            silent = traffic == WORKLOAD_TRAFFIC and source == "namespace"
            return Binding(
                None, requested, source, "traffic-type-mismatch",
                f"waypoint {wp_ns}/{name} is for {waypoint_for} traffic, not {traffic} traffic", waypoint_for, silent,
            )
        return Binding(requested, requested, source, None, f"bound through {where}", waypoint_for)

    def _admits(self, gateway: K8sObject, namespace: str) -> bool:
        listeners = [lst for lst in as_list(gateway.spec.get("listeners")) if isinstance(lst, dict)]
        hbone = next((lst for lst in listeners if lst.get("port") == k.HBONE_PORT and lst.get("protocol") == "HBONE"), None)
        namespaces = as_dict(as_dict(as_dict(hbone).get("allowedRoutes")).get("namespaces"))
        origin = namespaces.get("from", "Same")
        if origin == "All":
            return True
        if origin == "Selector":
            return selector_matches(as_dict(namespaces.get("selector")),
                                    namespace_labels_as_served(namespace, self.namespace_labels.get(namespace, {})))
        return gateway.namespace == namespace


def _has_addresses(gateway: K8sObject) -> bool:
    status = gateway.raw.get("status")
    return isinstance(status, dict) and bool(status.get("addresses"))


def _serves(waypoint_for: str, traffic: str) -> bool:
    return waypoint_for == "all" or waypoint_for == traffic


def exempt_service(obj: K8sObject) -> bool:
    return obj.labels.get("gateway.istio.io/managed") in NEVER_BOUND_MANAGERS


def legacy_reference(labels: dict, annotations: dict) -> dict:
    """A waypoint asked for the way Istio no longer reads it: `istio.io/use-waypoint` as an
    annotation (before 1.22), or a label value in 1.22's forms (`ns/name`, `~`, `#none`).
    Facts `legacy_waypoint_form` ("annotation", "value" or None) and `legacy_waypoint_value`."""
    if USE_WAYPOINT in annotations:
        return {"legacy_waypoint_form": "annotation", "legacy_waypoint_value": annotations[USE_WAYPOINT]}
    value = labels.get(USE_WAYPOINT)
    if value is not None and ("/" in value or value in ("~", "#none")):
        return {"legacy_waypoint_form": "value", "legacy_waypoint_value": value}
    return {"legacy_waypoint_form": None, "legacy_waypoint_value": None}
