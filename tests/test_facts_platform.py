"""Unit tests of the facts behind the traffic, platform and sidecar-cost rules."""

from __future__ import annotations

import pytest

from auditor.facts.context import AuditOptions
from auditor.facts.subjects import facts_for as object_facts
from auditor.facts.ingress import opts_in
from auditor.facts.labels import parse_bool
from auditor.facts.netpol import PROBE_SOURCE, rule_allows_port, rule_allows_source
from auditor.core.versions import Version
from conftest import context_of, snapshot_of

AMBIENT_NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/dataplane-mode": "ambient"}}}
SIDECAR_NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}


def deployment(name, labels=None, ns="shop", annotations=None, containers=None, kind="Deployment", api="apps/v1"):
    template = {"metadata": {"labels": labels or {"app": name}, "annotations": annotations or {}},
                "spec": {"containers": containers or [{"name": name, "image": f"example/{name}:1"}]}}
    spec = {"jobTemplate": {"spec": {"template": template}}} if kind == "CronJob" else {"template": template}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def service(name, selector=None, ns="shop", labels=None, ports=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"selector": selector or {"app": name}, "ports": ports or [{"name": "http", "port": 80}]}}


def netpol(name, ingress, selector=None, types=None):
    spec = {"podSelector": {"matchLabels": selector} if selector else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if types is not None:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def facts_for(facts, kind, name, ns="shop"):
    obj = next(o for o in facts.snapshot if o.kind == kind and o.name == name and o.namespace in (ns, None))
    return object_facts(facts, obj)


# -- NetworkPolicy ------------------------------------------------------------------------

@pytest.mark.parametrize("rule, open_", [
    ({}, True),  # no ports: every port
    ({"ports": [{"port": 8080}]}, False),
    ({"ports": [{"port": 15008}]}, True),
    ({"ports": [{"port": 15000, "endPort": 15010}]}, True),
    ({"ports": [{"port": 15008, "protocol": "UDP"}]}, False),
    ({"ports": [{"protocol": "TCP"}]}, True),  # protocol only: all its ports
    ({"ports": [{"port": "hbone"}]}, False),  # named ports never equal a number
])
def test_rule_allows_port(rule, open_):
    assert rule_allows_port(rule, 15008) is open_


@pytest.mark.parametrize("rule, allowed", [
    ({}, True),
    ({"from": [{"podSelector": {}}]}, False),
    ({"from": [{"ipBlock": {"cidr": "169.254.0.0/16"}}]}, True),
    ({"from": [{"ipBlock": {"cidr": "169.254.0.0/16", "except": ["169.254.7.0/24"]}}]}, False),
    ({"from": [{"ipBlock": {"cidr": "not-a-cidr"}}]}, False),
])
def test_rule_allows_source(rule, allowed):
    assert rule_allows_source(rule, PROBE_SOURCE) is allowed


def test_network_policies_are_additive_for_hbone():
    app_only = netpol("app-only", [{"ports": [{"port": 8080}]}], {"app": "cart"})
    docs = [AMBIENT_NS, deployment("cart"), app_only]
    assert facts_for(context_of(*docs), "NetworkPolicy", "app-only")["hbone_blocked"] == ["Deployment shop/cart"]
    opener = netpol("open-hbone", [{"ports": [{"port": 15008}]}])
    assert facts_for(context_of(*docs, opener), "NetworkPolicy", "app-only")["hbone_blocked"] == []


def test_deny_all_and_egress_policies_do_not_count_as_blocking_hbone():
    docs = [AMBIENT_NS, deployment("cart"), netpol("deny", None, types=["Ingress"]),
            netpol("egress", None, {"app": "cart"}, types=["Egress"])]
    facts = context_of(*docs)
    assert facts_for(facts, "NetworkPolicy", "deny")["hbone_blocked"] == []
    assert facts_for(facts, "NetworkPolicy", "egress")["ingress"] is False


def test_probe_source_allowed_by_any_selecting_policy():
    from_web = netpol("from-web", [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}], {"app": "cart"})
    docs = [AMBIENT_NS, deployment("cart"), from_web]
    assert facts_for(context_of(*docs), "NetworkPolicy", "from-web")["probes_blocked"] == ["Deployment shop/cart"]
    probes = netpol("probes", [{"from": [{"ipBlock": {"cidr": "169.254.7.127/32"}}]}])
    assert facts_for(context_of(*docs, probes), "NetworkPolicy", "from-web")["probes_blocked"] == []


def test_sidecar_workloads_are_not_judged_by_the_ambient_netpol_facts():
    docs = [SIDECAR_NS, deployment("cart"), netpol("app-only", [{"ports": [{"port": 8080}]}], {"app": "cart"})]
    f = facts_for(context_of(*docs), "NetworkPolicy", "app-only")
    assert f["hbone_blocked"] == [] and f["selected"]["sidecar"] == 1


# -- routes and ingress -------------------------------------------------------------------

def test_route_parents_default_to_gateways_in_the_route_namespace():
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "shop"},
             "spec": {"parentRefs": [{"name": "public"}, {"group": "", "kind": "Service", "name": "cart"}],
                      "rules": [{"backendRefs": [{"name": "cart", "port": 80}]}]}}
    facts = context_of(AMBIENT_NS, deployment("cart"), service("cart"), route)
    f = facts_for(facts, "HTTPRoute", "r")
    assert [p["parent"] for p in f["parents"]] == ["Gateway shop/public", "Service shop/cart"]
    assert f["unbound_ambient_parents"] == ["Service shop/cart: neither the object nor namespace shop sets istio.io/use-waypoint"]
    # A parent gateway that is not a waypoint makes the backends ingress backends.
    assert facts_for(facts, "Service", "cart")["ingress_routes"] == ["HTTPRoute shop/r"]


def test_routes_attached_to_a_waypoint_gateway_are_not_ingress():
    waypoint = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "shop"},
                "spec": {"gatewayClassName": "istio-waypoint"}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "shop"},
             "spec": {"parentRefs": [{"name": "wp"}], "rules": [{"backendRefs": [{"name": "cart"}]}]}}
    facts = context_of(AMBIENT_NS, waypoint, service("cart"), route)
    assert facts_for(facts, "Service", "cart")["ingress_routes"] == []
    assert facts_for(facts, "HTTPRoute", "r")["waypoint_parents"] == ["Gateway shop/wp"]


@pytest.mark.parametrize("value, parsed", [("true", True), ("1", True), ("T", True), ("false", False), ("0", False),
                                            ("yes", None), (None, None)])
def test_parse_bool_is_gos(value, parsed):
    assert parse_bool(value) is parsed


@pytest.mark.parametrize("version, ns_label, expected", [
    (Version(1, 24), True, False),  # the namespace label is read from 1.25 on
    (Version(1, 25), True, True),
    (None, True, True),
    (Version(1, 25), False, False),
])
def test_ingress_use_waypoint_namespace_fallback(version, ns_label, expected):
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "shop", "labels": {"istio.io/ingress-use-waypoint": "true"} if ns_label else {}}}
    facts = context_of(ns, service("cart"), istio_version=version)
    assert facts_for(facts, "Service", "cart")["ingress_use_waypoint"] is expected


@pytest.mark.parametrize("value, version, opted_in", [
    ("true", Version(1, 24), True), ("True", Version(1, 24), False), ("1", Version(1, 24), False),
    ("True", Version(1, 25), True), ("TRUE", Version(1, 29), True), ("1", Version(1, 29), False),
    ("1", Version(1, 30), True), ("t", Version(1, 30), True), ("yes", Version(1, 30), False),
    ("on", None, False), ("True", None, True),
])
def test_ingress_use_waypoint_value_is_read_as_the_version_reads_it(value, version, opted_in):
    facts = context_of(service("cart", labels={"istio.io/ingress-use-waypoint": value}), istio_version=version)
    assert facts_for(facts, "Service", "cart")["ingress_use_waypoint"] is opted_in
    assert opts_in(value, version) is opted_in


@pytest.mark.parametrize("service_value", ["false", "ture"])
def test_a_service_label_that_reads_as_false_wins_over_its_namespace(service_value):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/ingress-use-waypoint": "true"}}}
    f = facts_for(context_of(ns, service("cart", labels={"istio.io/ingress-use-waypoint": service_value}),
                             istio_version=Version(1, 30)), "Service", "cart")
    assert f["ingress_use_waypoint"] is False
    assert f["ingress_use_waypoint_why"] == (f'the Service\'s istio.io/ingress-use-waypoint is "{service_value}", which reads '
                                             'as false (Istio reads it with Go\'s ParseBool)')


@pytest.mark.parametrize("version, why", [
    (Version(1, 23), "ingress gateways never use waypoints before Istio 1.24 (this is 1.23.0)"),
    (Version(1, 24), "only namespace shop sets istio.io/ingress-use-waypoint, which Istio reads from namespaces "
                     "from 1.25 on (this is 1.24.0)"),
    (Version(1, 25), 'namespace shop sets istio.io/ingress-use-waypoint to "True"'),
])
def test_why_ingress_does_or_does_not_use_the_waypoint(version, why):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/ingress-use-waypoint": "True"}}}
    f = facts_for(context_of(ns, service("cart"), istio_version=version), "Service", "cart")
    assert f["ingress_use_waypoint_why"] == why


@pytest.mark.parametrize("value, dry", [("true", True), ("True", True), ("1", True), ("yes", False), ("false", False)])
def test_dry_run_annotation_is_read_with_parse_bool(value, dry):
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "p", "namespace": "shop", "annotations": {"istio.io/dry-run": value}}, "spec": {}}
    assert facts_for(context_of(policy), "AuthorizationPolicy", "p")["dry_run"] is dry


def test_service_label_overrides_namespace_for_ingress_use_waypoint():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/ingress-use-waypoint": "true"}}}
    facts = context_of(ns, service("cart", labels={"istio.io/ingress-use-waypoint": "false"}))
    assert facts_for(facts, "Service", "cart")["ingress_use_waypoint"] is False


def test_waypoint_policies_include_service_gateway_and_root_class_targets():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/use-waypoint": "wp"}}}
    wp = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "shop"},
          "spec": {"gatewayClassName": "istio-waypoint"}}

    def ap(name, ns_, ref):
        return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": name, "namespace": ns_},
                "spec": {"targetRefs": [ref]}}

    docs = [ns, wp, service("cart"),
            ap("svc", "shop", {"kind": "Service", "group": "", "name": "cart"}),
            ap("gw", "shop", {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "wp"}),
            ap("cls", "istio-system", {"kind": "GatewayClass", "group": "gateway.networking.k8s.io", "name": "istio-waypoint"}),
            ap("cls-elsewhere", "shop", {"kind": "GatewayClass", "group": "gateway.networking.k8s.io", "name": "istio-waypoint"}),
            ap("other", "shop", {"kind": "Service", "group": "", "name": "orders"})]
    policies = facts_for(context_of(*docs), "Service", "cart")["waypoint_policies"]
    assert policies == ["AuthorizationPolicy istio-system/cls", "AuthorizationPolicy shop/gw", "AuthorizationPolicy shop/svc"]


# -- gateways -----------------------------------------------------------------------------

@pytest.mark.parametrize("status, readiness", [
    (None, "unknown"),
    ({}, "not-ready"),
    ({"addresses": [{"value": "10.0.0.1"}], "conditions": [{"type": "Programmed", "status": "False"}]}, "not-ready"),
    ({"addresses": [{"value": "10.0.0.1"}], "conditions": [{"type": "Programmed", "status": "True"}]}, "ready"),
    ({"addresses": [{"value": "10.0.0.1"}]}, "ready"),
])
def test_gateway_readiness(status, readiness):
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "shop"},
          "spec": {"gatewayClassName": "istio-waypoint"}}
    if status is not None:
        gw["status"] = status
    assert facts_for(context_of(gw), "Gateway", "wp")["readiness"] == readiness


def test_gateway_users_come_from_labels_that_name_it():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/use-waypoint": "wp"}}}
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "shop"},
          "spec": {"gatewayClassName": "istio-waypoint"}}
    opted = service("orders", labels={"istio.io/use-waypoint": "wp"})
    f = facts_for(context_of(ns, gw, service("cart"), opted), "Gateway", "wp")
    assert f["users"] == ["Namespace shop", "Service shop/cart", "Service shop/orders"] and f["user_count"] == 3


# -- sidecar costs ------------------------------------------------------------------------

@pytest.mark.parametrize("istio, kube, annotation, native", [
    (Version(1, 26), None, None, False),
    (Version(1, 27), None, None, True),
    (Version(1, 27), Version(1, 28), None, False),  # native sidecars need Kubernetes 1.29
    (Version(1, 27), Version(1, 30), "false", False),
    (Version(1, 24), None, "true", True),
    (None, None, None, False),
])
def test_native_sidecar_prediction(istio, kube, annotation, native):
    job = deployment("migrate", kind="Job", api="batch/v1", annotations={"sidecar.istio.io/nativeSidecar": annotation} if annotation else None)
    facts = context_of(SIDECAR_NS, job, istio_version=istio, options=AuditOptions(kubernetes_version=kube))
    f = facts_for(facts, "Job", "migrate")
    assert f["runs_to_completion"] and f["mode"] == "sidecar"
    assert f["sidecar_is_native"] is native


def test_running_pod_reports_its_actual_sidecar_kind():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "shop", "uid": "1", "annotations": {"sidecar.istio.io/status": "{}"},
                        "ownerReferences": [{"kind": "Job", "name": "j", "controller": True}]},
           "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}, "status": {"phase": "Running"}}
    f = facts_for(context_of(SIDECAR_NS, pod, istio_version=Version(1, 28)), "Pod", "p")
    assert f["runs_to_completion"] and f["sidecar_is_native"] is False


@pytest.mark.parametrize("port, image, flagged", [
    ({"name": "db", "port": 3307}, "mysql:8", True),  # image hint
    ({"name": "mysql", "port": 3307}, "mysql:8", False),  # protocol declared by name
    ({"name": "db", "port": 3307, "appProtocol": "tcp"}, "mysql:8", False),
    ({"name": "db", "port": 3306}, "mysql:8", False),  # Istio treats 3306 as TCP
    ({"name": "smtp-out", "port": 2525}, "relay:1", True),  # name hint, "smtp-" is no protocol prefix
    ({"name": "web", "port": 8080}, "nginx:1", False),
])
def test_server_first_ports(port, image, flagged):
    dep = deployment("db", containers=[{"name": "db", "image": image}])
    f = facts_for(context_of(SIDECAR_NS, dep, service("db", ports=[port])), "Service", "db")
    assert bool(f["server_first_ports"]) is flagged


def test_server_first_ports_only_for_sidecar_workloads():
    dep = deployment("db", containers=[{"name": "db", "image": "mysql:8"}])
    f = facts_for(context_of(AMBIENT_NS, dep, service("db", ports=[{"name": "db", "port": 3307}])), "Service", "db")
    assert f["server_first_ports"] == []


# -- cluster ------------------------------------------------------------------------------

def test_cluster_facts_read_components_and_crds():
    from auditor.engine import cluster_object

    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ztunnel", "namespace": "istio-system"}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gateways.gateway.networking.k8s.io"}}
    facts = context_of(AMBIENT_NS, deployment("cart"), ds, crd, options=AuditOptions(collected=frozenset({"daemonsets.apps"})))
    f = object_facts(facts, cluster_object("prod"))
    assert f["ztunnel"] and not f["istio_cni"] and f["gateway_api_crds"] and f["ambient_in_use"]
    assert f["daemonsets_collected"] and not f["crds_collected"]
    assert facts.mesh["live"] is True
    assert context_of(AMBIENT_NS).mesh["live"] is False


def test_cluster_object_is_cluster_scoped():
    from auditor.engine import cluster_object

    obj = cluster_object("prod")
    assert obj.namespace is None and obj.gk == "mesh-audit.io/Cluster" and snapshot_of().location(obj) is None


def test_mode_drift_for_running_pods_only():
    running = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "old", "namespace": "shop", "uid": "1"},
               "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Running"}}
    captured = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "new", "namespace": "shop", "uid": "2", "annotations": {"ambient.istio.io/redirection": "enabled"}},
                "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Running"}}
    facts = context_of(AMBIENT_NS, running, captured, deployment("cart"))
    assert facts_for(facts, "Pod", "old")["mode_drift"] == "runs in none mode, but a pod created now would run in ambient mode"
    assert facts_for(facts, "Pod", "new")["mode_drift"] is None
    assert facts_for(facts, "Deployment", "cart")["mode_drift"] is None  # a template has nothing running to compare


# -- egress control ambient workloads bypass before 1.24, and Alpha features -------------------

def test_egress_control_that_reaches_ambient_workloads():
    mesh_cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
               "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}}
    other_cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "namespace": "shop"}}
    sidecar = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default", "namespace": "shop"},
               "spec": {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}}
    egress_gw = service("istio-egressgateway", selector={"istio": "egressgateway"}, ns="istio-system")
    entry = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "ext", "namespace": "shop"},
             "spec": {"hosts": ["api.example.com"]}}
    via = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "via", "namespace": "shop"},
           "spec": {"hosts": ["api.example.com"], "http": [{"route": [{"destination": {
               "host": "istio-egressgateway.istio-system.svc.cluster.local"}}]}]}}
    ctx = context_of(AMBIENT_NS, deployment("cart"), mesh_cm, other_cm, sidecar, egress_gw, entry, via)
    assert facts_for(ctx, "ConfigMap", "istio", "istio-system")["egress_control"] == "outboundTrafficPolicy is REGISTRY_ONLY"
    assert facts_for(ctx, "ConfigMap", "app-config")["egress_control"] is None
    assert facts_for(ctx, "Sidecar", "default")["egress_control"] == "outboundTrafficPolicy is REGISTRY_ONLY"
    assert facts_for(ctx, "ServiceEntry", "ext")["egress_control"] == (
        "egress to these hosts is forced through an egress gateway by VirtualService shop/via")
    # A REGISTRY_ONLY Sidecar in a sidecar namespace reaches no ambient workload.
    assert facts_for(context_of(SIDECAR_NS, deployment("cart"), sidecar), "Sidecar", "default")["egress_control"] is None


def test_alpha_features_at_waypoints():
    waypoint = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "shop"},
                "spec": {"gatewayClassName": "istio-waypoint"}}
    ns = {**AMBIENT_NS, "metadata": {**AMBIENT_NS["metadata"], "labels": {"istio.io/dataplane-mode": "ambient",
                                                                          "istio.io/use-waypoint": "wp"}}}
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "vs", "namespace": "shop"},
          "spec": {"hosts": ["cart"], "http": [{"route": [{"destination": {"host": "cart"}}]}]}}
    tcp = {"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute", "metadata": {"name": "t", "namespace": "shop"},
           "spec": {"parentRefs": [{"name": "wp"}]}}
    http = {**tcp, "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "h", "namespace": "shop"}}
    wasm = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": "w", "namespace": "shop"},
            "spec": {"targetRefs": [{"kind": "Service", "group": "", "name": "cart"}]}}
    ctx = context_of(ns, waypoint, deployment("cart"), service("cart"), vs, tcp, http, wasm)
    # VirtualService and TCPRoute at a waypoint have rules of their own (virtualservice-alpha,
    # route-kind-alpha): the generic list leaves them out, so one fact makes one finding.
    assert "alpha_features" not in facts_for(ctx, "VirtualService", "vs")
    assert facts_for(ctx, "VirtualService", "vs")["hosts_with_waypoint"] == ["Service shop/cart"]
    assert facts_for(ctx, "TCPRoute", "t")["waypoint_parents"] == ["Gateway shop/wp"]
    assert facts_for(ctx, "WasmPlugin", "w")["alpha_features"] == ["WasmPlugin at a waypoint (Service shop/cart)"]


def test_istio_1_22_alpha_features_where_the_cluster_shows_them():
    from auditor.core.versions import parse_version

    cni = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-cni-config", "namespace": "kube-system"},
           "data": {"AMBIENT_DNS_CAPTURE": "true", "AMBIENT_IPV6": "false"}}
    dual = service("cart")
    dual["spec"]["ipFamilies"] = ["IPv6"]
    legacy = {**SIDECAR_NS, "metadata": {"name": "legacy", "labels": {"istio-injection": "enabled"}}}
    docs = [AMBIENT_NS, legacy, deployment("cart"), deployment("billing", ns="legacy"), dual, cni]
    old = context_of(*docs, istio_version=parse_version("1.22.2"))
    assert facts_for(old, "ConfigMap", "istio-cni-config", "kube-system")["alpha_features"] == [
        "DNS proxying by ztunnel (AMBIENT_DNS_CAPTURE=true)"]
    assert facts_for(old, "Service", "cart")["alpha_features"] == ["IPv6 and dual-stack in ambient mode (ipFamilies: IPv6)"]
    from auditor.engine import cluster_object

    assert object_facts(old, cluster_object("c"))["alpha_features"] == [
        "interoperability between sidecar and ambient workloads (1 sidecar workload and 1 ambient workload in the mesh)"]
    new = context_of(*docs, istio_version=parse_version("1.24.0"))
    assert facts_for(new, "ConfigMap", "istio-cni-config", "kube-system")["alpha_features"] == []
    assert object_facts(new, cluster_object("c"))["alpha_features"] == []


@pytest.mark.parametrize("feature, version, expected", [
    ("virtualservice-at-waypoint", None, "alpha"),  # Alpha in every release: true for any version
    ("sidecar-interoperability", Version(1, 23), "alpha"),
    ("sidecar-interoperability", Version(1, 24), None),  # not listed from 1.24
    ("sidecar-interoperability", None, None),  # depends on the version: nothing to say without one
    ("dns-proxying", Version(1, 22, 3), "alpha"),
    ("dns-proxying", Version(1, 25), "beta"),
    ("destinationrule-at-waypoint", Version(1, 22), "alpha"),
    ("destinationrule-at-waypoint", Version(1, 24), "stable"),
    ("multi-network", Version(1, 26), "not implemented"),
    ("multi-network", Version(1, 27, 2), "alpha"),
    ("multi-network", Version(1, 29), "beta"),
])
def test_the_maturity_table_follows_section_d(feature, version, expected):
    from auditor.facts.maturity import status

    assert status(feature, version) == expected
