"""Evidence C.3: waypoint binding, its sources, and every way it fails."""

from __future__ import annotations

from auditor.facts.waypoint import NAMESPACE, SERVICE_TRAFFIC, WORKLOAD_TRAFFIC, WaypointResolver
from auditor.core.versions import Version
from auditor.facts.subjects import facts_for
from conftest import context_of, snapshot_of


def gateway(name, namespace, waypoint_for=None, cls="istio-waypoint", allowed=None, status=None):
    listener = {"name": "mesh", "port": 15008, "protocol": "HBONE"}
    if allowed:
        listener["allowedRoutes"] = {"namespaces": allowed}
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, "labels": {"istio.io/waypoint-for": waypoint_for} if waypoint_for else {}},
        "spec": {"gatewayClassName": cls, "listeners": [listener]},
    }
    if status is not None:
        doc["status"] = status
        doc["metadata"]["uid"] = "gw-uid"
    return doc


def resolver(*docs, namespaces=None, version=None):
    return WaypointResolver(snapshot_of(*docs), namespaces or {}, version)


WP = {"istio.io/use-waypoint": "wp"}


def test_object_label_binds():
    b = resolver(gateway("wp", "apps")).resolve(SERVICE_TRAFFIC, "apps", WP)
    assert (b.waypoint, b.source, b.reason) == (("apps", "wp"), "object", None)


def test_namespace_label_is_inherited():
    b = resolver(gateway("wp", "apps"), namespaces={"apps": WP}).resolve(SERVICE_TRAFFIC, "apps", {})
    assert (b.waypoint, b.source) == (("apps", "wp"), "namespace")


def test_no_label():
    assert resolver().resolve(SERVICE_TRAFFIC, "apps", {}).reason == "no-label"


def test_none_opts_out_and_hides_namespace_waypoint():
    r = resolver(gateway("wp", "apps"), namespaces={"apps": WP})
    b = r.resolve(SERVICE_TRAFFIC, "apps", {"istio.io/use-waypoint": "none"})
    assert (b.waypoint, b.reason, b.source) == (None, "opted-out", "object")


def test_missing_object_waypoint_does_not_fall_back_to_namespace():
    r = resolver(gateway("ns-wp", "apps"), namespaces={"apps": {"istio.io/use-waypoint": "ns-wp"}})
    b = r.resolve(SERVICE_TRAFFIC, "apps", {"istio.io/use-waypoint": "gone"})
    assert (b.waypoint, b.requested, b.reason) == (None, ("apps", "gone"), "missing")


def test_observed_waypoint_without_addresses_is_not_ready():
    r = resolver(gateway("wp", "apps", status={"addresses": []}))
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).reason == "not-ready"
    r = resolver(gateway("wp", "apps", status={"addresses": [{"value": "10.0.0.1"}]}))
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).reason is None


def test_cross_namespace_needs_allowed_routes():
    labels = {"istio.io/use-waypoint": "shared", "istio.io/use-waypoint-namespace": "infra"}
    denied = resolver(gateway("shared", "infra")).resolve(SERVICE_TRAFFIC, "apps", labels)
    assert (denied.reason, denied.requested) == ("cross-namespace-denied", ("infra", "shared"))
    allowed = resolver(gateway("shared", "infra", allowed={"from": "All"})).resolve(SERVICE_TRAFFIC, "apps", labels)
    assert allowed.waypoint == ("infra", "shared")
    selector = {"from": "Selector", "selector": {"matchLabels": {"team": "pay"}}}
    r = resolver(gateway("shared", "infra", allowed=selector), namespaces={"apps": {"team": "pay"}, "other": {}})
    assert r.resolve(SERVICE_TRAFFIC, "apps", labels).waypoint == ("infra", "shared")
    assert r.resolve(SERVICE_TRAFFIC, "other", labels).reason == "cross-namespace-denied"


def test_istio_1_22_ignores_waypoint_namespace_label():
    labels = {"istio.io/use-waypoint": "shared", "istio.io/use-waypoint-namespace": "infra"}
    b = resolver(gateway("shared", "infra", allowed={"from": "All"}), version=Version(1, 22)).resolve(SERVICE_TRAFFIC, "apps", labels)
    assert (b.reason, b.requested) == ("missing", ("apps", "shared"))


def test_traffic_type_precedence_gateway_then_class_then_service():
    cls = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
           "metadata": {"name": "istio-waypoint", "labels": {"istio.io/waypoint-for": "workload"}}}
    r = resolver(gateway("wp", "apps"), cls)
    assert r.resolve(WORKLOAD_TRAFFIC, "apps", WP).waypoint == ("apps", "wp")
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).reason == "traffic-type-mismatch"
    r = resolver(gateway("wp", "apps", waypoint_for="service"), cls)
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).waypoint == ("apps", "wp")
    r = resolver(gateway("wp", "apps"))
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).waypoint_for == "service"
    # Before 1.23 the GatewayClass label is not read.
    r = resolver(gateway("wp", "apps"), cls, version=Version(1, 22))
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).waypoint == ("apps", "wp")


def test_inherited_workload_mismatch_is_silent_direct_is_not():
    r = resolver(gateway("wp", "apps", waypoint_for="service"), namespaces={"apps": WP})
    inherited = r.resolve(WORKLOAD_TRAFFIC, "apps", {})
    direct = r.resolve(WORKLOAD_TRAFFIC, "apps", WP)
    assert (inherited.reason, inherited.silent) == ("traffic-type-mismatch", True)
    assert (direct.reason, direct.silent) == ("traffic-type-mismatch", False)


def test_all_and_none_waypoint_for():
    r = resolver(gateway("wp", "apps", waypoint_for="all"))
    assert r.resolve(WORKLOAD_TRAFFIC, "apps", WP).waypoint and r.resolve(SERVICE_TRAFFIC, "apps", WP).waypoint
    r = resolver(gateway("wp", "apps", waypoint_for="none"))
    assert r.resolve(SERVICE_TRAFFIC, "apps", WP).reason == "traffic-type-mismatch"


def test_namespace_binding_reads_its_own_labels_without_traffic_check():
    r = resolver(gateway("wp", "apps", waypoint_for="workload"))
    assert r.resolve(NAMESPACE, "apps", WP).waypoint == ("apps", "wp")


def test_waypoint_services_are_never_bound():
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "wp", "namespace": "apps", "labels": {"gateway.istio.io/managed": "istio.io-mesh-controller"}}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": WP}}
    facts = context_of(ns, svc, gateway("wp", "apps"))
    assert facts_for(facts, facts.snapshot.get("Service", "apps", "wp"))["waypoint"]["reason"] == "waypoint-service"


def test_legacy_waypoint_references():
    from auditor.facts.waypoint import legacy_reference

    def form(labels=None, annotations=None):
        found = legacy_reference(labels or {}, annotations or {})
        return found["legacy_waypoint_form"], found["legacy_waypoint_value"]

    assert form(annotations={"istio.io/use-waypoint": "wp"}) == ("annotation", "wp")
    assert form(labels={"istio.io/use-waypoint": "other/wp"}) == ("value", "other/wp")
    assert form(labels={"istio.io/use-waypoint": "~"}) == ("value", "~")
    assert form(labels={"istio.io/use-waypoint": "#none"}) == ("value", "#none")
    assert form(labels={"istio.io/use-waypoint": "none"}) == (None, None)  # the one opt-out that works
    assert form(labels={"istio.io/use-waypoint": "wp"}) == (None, None)


def test_allowed_routes_can_select_a_namespace_by_the_name_label_the_api_server_sets():
    from auditor.facts.labels import NAMESPACE_NAME, namespace_labels_as_served

    assert namespace_labels_as_served("shop", {"a": "b"}) == {"a": "b", NAMESPACE_NAME: "shop"}
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "wp", "namespace": "infra"},
               "spec": {"gatewayClassName": "istio-waypoint", "listeners": [
                   {"name": "mesh", "port": 15008, "protocol": "HBONE", "allowedRoutes": {"namespaces": {
                       "from": "Selector", "selector": {"matchLabels": {NAMESPACE_NAME: "shop"}}}}}]}}
    labels = {"istio.io/use-waypoint": "wp", "istio.io/use-waypoint-namespace": "infra"}
    docs = [gateway] + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
                        for n in ("shop", "billing")]
    ctx = context_of(*docs, istio_version=Version(1, 24))
    assert ctx.waypoints.resolve(NAMESPACE, "shop", labels).waypoint == ("infra", "wp")
    denied = ctx.waypoints.resolve(NAMESPACE, "billing", labels)
    assert denied.waypoint is None and "does not admit namespace billing" in denied.detail
