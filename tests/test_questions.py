"""Unit tests of auditor.facts.questions, the facts the migration plan asks for."""

from __future__ import annotations

import pytest

from auditor.core import kinds as k
from auditor.facts import questions as q
from auditor.facts.authz import waypoint_only, ztunnel_keeps
from auditor.facts.netpol import rules_closed_to
from auditor.model.snapshot import K8sObject
from conftest import context_of

SHOP = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}


def deployment(name, labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"template": {"metadata": {"labels": labels or {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": "example/x:1"}]}}}}


def service(name, selector=None, ns="shop"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector or {"app": name}, "ports": [{"port": 80}]}}


def policy(name, spec, kind="AuthorizationPolicy", group="security.istio.io"):
    return {"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def pod(name, labels, annotations=None, host_network=False):
    return K8sObject({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": "shop", "labels": labels, "annotations": annotations or {}},
                      "spec": {"hostNetwork": host_network, "containers": [{"name": "app"}]}})


@pytest.mark.parametrize("spec, only", [
    ({"rules": [{"to": [{"operation": {"ports": ["80"]}}]}]}, False),
    ({"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}, True),
    ({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}]}, True),
    ({"rules": [{"when": [{"key": "source.namespace", "values": ["a"]}]}]}, True),
    ({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]}, True),
    ({"action": "AUDIT", "rules": [{}]}, True),
    ({"action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}, False),
])
def test_waypoint_only(spec, only):
    """L7 attributes, CUSTOM/AUDIT and caller identities need the waypoint; ports and IPs do not."""
    assert waypoint_only(spec) is only


@pytest.mark.parametrize("rule, kept", [
    ({"to": [{"operation": {"ports": ["80"]}}]}, True),
    ({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}, True),
    ({"to": [{"operation": {"paths": ["/a"]}}]}, False),
    ({"from": [{"source": {"notNamespaces": ["a"]}}]}, False),
    ({"when": [{"key": "source.principal", "values": ["x"]}]}, False),
    ({"when": [{"key": "destination.port", "values": ["80"]}]}, True),
])
def test_ztunnel_keeps(rule, kept):
    assert ztunnel_keeps(rule) is kept


def test_rules_closed_to_returns_the_rules_that_list_ports_without_it():
    spec = {"ingress": [{"ports": [{"port": 80}]}, {"from": [{"podSelector": {}}]},
                        {"ports": [{"port": 15008, "protocol": "TCP"}]}, "junk"]}
    closed = rules_closed_to(spec, k.HBONE_PORT)
    assert closed == [{"ports": [{"port": 80}]}]
    assert closed[0] is spec["ingress"][0]  # edited in place by the change set


def test_policy_reach_and_served():
    ctx = context_of(SHOP, deployment("web"), deployment("api"), service("web"), service("api"), service("other", {"app": "x"}),
                     policy("by-selector", {"selector": {"matchLabels": {"app": "web"}}}),
                     policy("namespace-wide", {}),
                     policy("empty-selector", {"selector": {}}),
                     policy("targeted", {"targetRefs": [{"kind": "Service", "group": "", "name": "api"},
                                                         {"kind": "Service", "group": "", "name": "missing"}]}))
    get = lambda name: ctx.snapshot.get(k.AUTHORIZATION_POLICY, "shop", name)
    web = [w.id for w in ctx.workloads if w.obj.name == "web"]
    reach = q.policy_reach(ctx, get("by-selector"))
    assert (reach.targeted, reach.selector, reach.workloads) == (False, True, web)
    assert (q.policy_reach(ctx, get("namespace-wide")).selector, q.policy_reach(ctx, get("empty-selector")).selector) == (False, True)
    assert len(q.policy_reach(ctx, get("namespace-wide")).workloads) == 2
    targeted = q.policy_reach(ctx, get("targeted"))
    assert (targeted.targeted, targeted.workloads) == (True, [])
    assert [s.name for s in q.served(ctx, get("by-selector"))] == ["web"]
    assert sorted(s.name for s in q.served(ctx, get("namespace-wide"))) == ["api", "web"]
    assert [s.name for s in q.served(ctx, get("targeted"))] == ["api"]  # a missing target serves nothing


def test_traffic_targets_of_routes():
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "vs", "namespace": "front"},
          "spec": {"hosts": ["web.shop.svc.cluster.local"],
                   "http": [{"route": [{"destination": {"host": "api.shop.svc.cluster.local"}}]}]}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "front"},
             "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web", "namespace": "shop"}],
                      "rules": [{"backendRefs": [{"name": "local"}, {"kind": "Hostname", "name": "x"}]}]}}
    ctx = context_of(SHOP, service("web"), service("api"), vs, route)
    assert sorted(q.traffic_targets(ctx, ctx.snapshot.get(k.VIRTUAL_SERVICE, "front", "vs"))) == [
        ("Service", "shop", "api"), ("Service", "shop", "web")]
    assert q.traffic_targets(ctx, ctx.snapshot.get(k.HTTP_ROUTE, "front", "r")) == [
        ("Service", "shop", "web"), ("Service", "front", "local")]  # named, found or not; no Hostname
    assert q.traffic_targets(ctx, ctx.snapshot.get(k.SERVICE, "shop", "web")) == []


def test_named_callers():
    spec = {"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b", "*"],
                                            "namespaces": ["c"], "serviceAccounts": ["d/e", "f"]}}]}]}
    assert q.named_callers(spec) == [("principal", "cluster.local/ns/a/sa/b", "a"), ("principal", "*", None),
                                     ("namespace", "c", "c"), ("serviceAccount", "d/e", "d"), ("serviceAccount", "f", None)]


def test_namespace_waypoint_and_its_principal():
    waypoint = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "shop"},
                "spec": {"gatewayClassName": "istio-waypoint", "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}
    mesh = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": "trustDomain: corp.example\n"}}
    labelled = {**SHOP, "metadata": {"name": "shop", "labels": {"istio.io/use-waypoint": "named"}}}
    assert q.namespace_waypoint(context_of(SHOP, waypoint), "shop") == "wp"
    assert q.namespace_waypoint(context_of(labelled, waypoint), "shop") == "named"  # the label decides
    assert q.namespace_waypoint(context_of(SHOP), "shop") is None
    assert q.waypoint_principal(context_of(SHOP, mesh), "shop", "wp") == "corp.example/ns/shop/sa/wp"
    assert q.waypoint_principal(context_of(SHOP), "shop", "wp") == "cluster.local/ns/shop/sa/wp"


@pytest.mark.parametrize("ns_labels, labels, host_network, mode", [
    ({"istio-injection": "enabled"}, {}, False, "sidecar"),
    ({"istio.io/dataplane-mode": "ambient"}, {}, False, "ambient"),
    ({"istio.io/dataplane-mode": "ambient"}, {"sidecar.istio.io/inject": "true"}, False, "sidecar"),
    ({"istio.io/dataplane-mode": "ambient"}, {"istio.io/dataplane-mode": "none"}, False, "none"),
    ({}, {}, False, "none"),
    ({"istio-injection": "enabled"}, {}, True, "none"),  # host network: never injected
])
def test_restarted_mode(ns_labels, labels, host_network, mode):
    ctx = context_of(SHOP)
    assert q.restarted_mode(ctx, "shop", ns_labels, pod("p", labels, host_network=host_network), labels) == mode


def test_what_if_is_the_changed_cluster():
    ctx = context_of(SHOP, deployment("web"))
    q.share_with_what_ifs(ctx)
    moved = q.what_if(ctx, [K8sObject({"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": "shop", "labels": {"istio.io/dataplane-mode": "ambient"}}})])
    assert [w.mode for w in ctx.workloads] == ["sidecar"]
    assert [w.mode for w in moved.workloads] == ["ambient"]
    gone = q.what_if(ctx, remove={(k.DEPLOYMENT, "shop", "web")})
    assert list(gone.workloads) == []
