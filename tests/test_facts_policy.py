"""Evidence C.4: what a policy covers and which proxy enforces it; plus L7 attribute analysis."""

from __future__ import annotations

import pytest

from auditor.facts.authz import authorization_facts, rule_attributes, ztunnel_deny_reading
from auditor.facts.subjects import facts_for as object_facts
from auditor.core.versions import Version
from conftest import context_of


def ns(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deploy(name, namespace, **labels):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"labels": {"app": name, **labels}}, "spec": {"containers": [{"name": "c"}]}}},
    }


def policy(kind, name, namespace, spec, api="security.istio.io/v1"):
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


AMBIENT = {"istio.io/dataplane-mode": "ambient"}
SIDECAR = {"istio-injection": "enabled"}
CLUSTER = [
    ns("istio-system"), ns("amb", **AMBIENT), ns("sc", **SIDECAR),
    deploy("api", "amb"), deploy("api", "sc"), deploy("web", "amb"),
    deploy("ingress", "sc", istio="ingressgateway"),
]


def facts_for(*extra):
    facts = context_of(*CLUSTER, *extra)
    last = extra[-1]
    obj = facts.snapshot.get(f"{last['apiVersion'].split('/')[0]}/{last['kind']}", last["metadata"]["namespace"], last["metadata"]["name"])
    return object_facts(facts, obj)


def test_selector_policy_enforced_by_ztunnel_for_ambient():
    f = facts_for(policy("AuthorizationPolicy", "p", "amb", {"selector": {"matchLabels": {"app": "api"}}}))
    assert (f["scope"], f["enforced_by"], f["selected"]["ambient"]) == ("selector", ["ztunnel"], 1)


def test_namespace_wide_policy_covers_the_namespace():
    f = facts_for(policy("AuthorizationPolicy", "p", "amb", {}))
    assert (f["scope"], f["selected"]["ambient"]) == ("namespace", 2)


def test_root_namespace_policy_is_mesh_wide():
    f = facts_for(policy("AuthorizationPolicy", "p", "istio-system", {}))
    assert f["scope"] == "mesh"
    assert f["enforced_by"] == ["gateway", "sidecar", "ztunnel"]


def test_root_namespace_selector_matches_every_namespace():
    f = facts_for(policy("AuthorizationPolicy", "p", "istio-system", {"selector": {"matchLabels": {"app": "api"}}}))
    assert f["selected"] == {"ambient": 1, "sidecar": 1, "none": 0}


def test_selector_only_matches_its_own_namespace_elsewhere():
    f = facts_for(policy("AuthorizationPolicy", "p", "sc", {"selector": {"matchLabels": {"app": "api"}}}))
    assert f["enforced_by"] == ["sidecar"]


def test_gateway_pods_enforce_selector_policies():
    f = facts_for(policy("AuthorizationPolicy", "p", "sc", {"selector": {"matchLabels": {"istio": "ingressgateway"}}}))
    assert f["enforced_by"] == ["gateway"]


def test_non_authz_kinds_are_ignored_by_ztunnel():
    for kind, api in (("RequestAuthentication", "security.istio.io/v1"), ("Telemetry", "telemetry.istio.io/v1"),
                      ("WasmPlugin", "extensions.istio.io/v1alpha1")):
        f = facts_for(policy(kind, "p", "amb", {"selector": {"matchLabels": {"app": "api"}}}, api=api))
        assert f["enforced_by"] == [], kind
    f = facts_for(policy("PeerAuthentication", "p", "amb", {"selector": {"matchLabels": {"app": "api"}}}))
    assert f["enforced_by"] == ["ztunnel"]


def test_sidecar_resource_uses_workload_selector():
    f = facts_for(policy("Sidecar", "s", "amb", {"workloadSelector": {"labels": {"app": "web"}}}, api="networking.istio.io/v1"))
    assert (f["scope"], f["selected"]["ambient"], f["enforced_by"]) == ("selector", 1, [])


def test_target_refs_bind_to_waypoints_only():
    wp = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "amb"},
          "spec": {"gatewayClassName": "istio-waypoint"}}
    bound = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "amb", "labels": {"istio.io/use-waypoint": "wp"}}}
    unbound = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "amb"}}
    refs = [{"kind": "Service", "group": "", "name": "api"}, {"kind": "Service", "group": "", "name": "web"},
            {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "wp"},
            {"kind": "Service", "group": "", "name": "ghost"},
            {"kind": "Deployment", "group": "apps", "name": "api"},
            {"kind": "Service", "group": "", "name": "api", "namespace": "sc"}]
    f = facts_for(wp, bound, unbound, policy("AuthorizationPolicy", "p", "amb", {"targetRefs": refs}))
    statuses = [r["status"] for r in f["target_refs"]]
    assert statuses == ["waypoint", "unbound", "waypoint", "missing", "invalid", "invalid"]
    assert f["enforced_by"] == ["waypoint"]
    assert f["selected"]["ambient"] == 0  # targetRefs policies select no workloads directly
    assert len(f["unbound_targets"]) == 2


def test_gateway_class_target_only_from_root_namespace():
    ref = {"targetRefs": [{"kind": "GatewayClass", "group": "gateway.networking.k8s.io", "name": "istio-waypoint"}]}
    assert facts_for(policy("AuthorizationPolicy", "p", "istio-system", ref))["target_refs"][0]["status"] == "waypoint"
    assert facts_for(policy("AuthorizationPolicy", "p", "amb", ref))["target_refs"][0]["status"] == "invalid"


def test_l7_attributes():
    l7, l4 = rule_attributes({
        "from": [{"source": {"requestPrincipals": ["*"], "namespaces": ["a"]}}],
        "to": [{"operation": {"methods": ["GET"], "ports": ["80"]}}],
        "when": [{"key": "request.auth.claims[iss]"}, {"key": "source.ip"}],
    })
    assert l7 == ["from.source.requestPrincipals", "to.operation.methods", "when.request.auth.claims[iss]"]
    assert l4 == ["from.source.namespaces", "to.operation.ports", "when.source.ip"]


def test_authorization_facts_counts_rule_shapes():
    f = authorization_facts({"action": "DENY", "rules": [
        {"to": [{"operation": {"paths": ["/x"]}}]},
        {"from": [{"source": {"principals": ["p"]}}], "to": [{"operation": {"methods": ["GET"]}}]},
        {"to": [{"operation": {"methods": ["GET"], "ports": ["80"]}}]},
        {"to": [{"operation": {"ports": ["80"]}}]},
    ]})
    assert (f["action"], f["deny_rules_ignored"], f["deny_rules_widened"], f["matches_source_identity"]) == ("DENY", 2, 1, True)
    assert authorization_facts({})["action"] == "ALLOW"


@pytest.mark.parametrize("rule, reading", [
    ({"to": [{"operation": {"ports": ["80"]}}]}, None),  # no L7 attribute: enforced as written
    ({"to": [{"operation": {"methods": ["DELETE"]}}]}, "ignored"),
    # The `to` part is left empty, so the whole rule never matches, whatever `from` says.
    ({"from": [{"source": {"namespaces": ["web"]}}], "to": [{"operation": {"paths": ["/admin"]}}]}, "ignored"),
    ({"to": [{"operation": {"methods": ["DELETE"], "ports": ["8080"]}}]}, "widened"),
    # One alternative of the `to` part keeps a port: the part still matches on it.
    ({"to": [{"operation": {"methods": ["DELETE"]}}, {"operation": {"ports": ["9090"]}}]}, "widened"),
    ({"from": [{"source": {"requestPrincipals": ["*"], "namespaces": ["web"]}}]}, "widened"),
    ({"from": [{"source": {"namespaces": ["web"]}}], "when": [{"key": "request.headers[x]", "values": ["1"]}]}, "ignored"),
    ({"to": [{"operation": {"hosts": ["a"]}}], "when": [{"key": "destination.port", "values": ["80"]}]}, "ignored"),
    ({"to": [{"operation": {"hosts": ["a"], "ports": ["80"]}}], "when": [{"key": "source.ip", "values": ["10.0.0.0/8"]}]},
     "widened"),
])
def test_how_ztunnel_reads_a_deny_rule_with_l7_attributes(rule, reading):
    assert ztunnel_deny_reading(rule) == reading


# -- whose identity a ztunnel-enforced policy sees once a waypoint is in the path ------------

def _behind_waypoint(*extra, version=None, service_labels=None):
    """amb/api behind waypoint amb/wp; clients: amb/web (ambient), sc/api (sidecar), the
    ingress gateway in sc (a gateway)."""
    from auditor.facts.identity import hidden_identities
    from auditor.core.versions import parse_version

    waypoint = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "wp", "namespace": "amb"},
                "spec": {"gatewayClassName": "istio-waypoint"}}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "api", "namespace": "amb", "labels": {"istio.io/use-waypoint": "wp", **(service_labels or {})}},
           "spec": {"selector": {"app": "api"}}}
    ctx = context_of(*CLUSTER, waypoint, svc, *extra, istio_version=parse_version(version) if version else None)
    last = extra[-1]
    return hidden_identities(ctx, ctx.snapshot.get("security.istio.io/AuthorizationPolicy", last["metadata"]["namespace"],
                                                  last["metadata"]["name"]))


def _allow(*sources):
    return policy("AuthorizationPolicy", "p", "amb", {"selector": {"matchLabels": {"app": "api"}},
                                                      "rules": [{"from": [{"source": s} for s in sources]}]})


def test_ambient_clients_pass_the_waypoint_sidecar_clients_do_not():
    assert _behind_waypoint(_allow({"principals": ["cluster.local/ns/amb/sa/default"]})) == [
        "principal cluster.local/ns/amb/sa/default (ambient client Deployment amb/api, ambient client Deployment amb/web)"]
    assert _behind_waypoint(_allow({"principals": ["cluster.local/ns/sc/sa/default"]})) == []  # sidecars skip waypoints


def test_a_rule_that_admits_the_waypoint_admits_what_passes_it():
    assert _behind_waypoint(_allow({"namespaces": ["amb"]})) == []  # the waypoint runs in amb
    assert _behind_waypoint(_allow({"principals": ["cluster.local/ns/amb/sa/wp"]})) == []
    assert _behind_waypoint(_allow({"principals": ["*"]})) == []


def test_ingress_gateways_pass_the_waypoint_only_with_the_opt_in_on_1_24():
    ingress = _allow({"namespaces": ["sc"]})
    hidden = ["namespace sc (ingress gateway Deployment sc/ingress)"]  # sc/api is a sidecar: it does not count
    assert _behind_waypoint(ingress, version="1.24.1") == []
    assert _behind_waypoint(ingress, version="1.24.1", service_labels={"istio.io/ingress-use-waypoint": "true"}) == hidden
    assert _behind_waypoint(ingress, version="1.23.4", service_labels={"istio.io/ingress-use-waypoint": "true"}) == []


def test_an_identity_with_no_workload_here_counts_by_its_namespace():
    assert _behind_waypoint(ns("batch", **AMBIENT), _allow({"principals": ["cluster.local/ns/batch/sa/jobs"]})) == [
        "principal cluster.local/ns/batch/sa/jobs (workloads of ambient namespace batch)"]
    assert _behind_waypoint(_allow({"principals": ["cluster.local/ns/elsewhere/sa/x"]})) == []  # unknown: not guessed


def test_when_conditions_on_source_identity_count_too():
    spec = {"selector": {"matchLabels": {"app": "api"}},
            "rules": [{"when": [{"key": "source.namespace", "values": ["amb"]}, {"key": "source.principal",
                                                                               "values": ["cluster.local/ns/amb/sa/default"]}]}]}
    assert _behind_waypoint(policy("AuthorizationPolicy", "p", "amb", spec)) == [
        "principal cluster.local/ns/amb/sa/default (ambient client Deployment amb/api, ambient client Deployment amb/web)"]


def test_a_targetrefs_policy_on_a_sidecar_only_service_is_one_finding():
    """Its Service is unbound because its workloads run sidecars: policy-target-sidecar says
    so, as an error (nothing applies the policy), and policy-target-unbound stays quiet."""
    import yaml

    from auditor.facts.subjects import facts_for
    from auditor.rulebook import load_rules
    from conftest import FIXTURES, audit, snapshot_of

    path = FIXTURES / "rules" / "policy-target-unbound" / "pass.sidecar-only-service.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    snapshot = snapshot_of(*docs)
    policy = snapshot.get("security.istio.io/AuthorizationPolicy", "legacy", "cart-get-only")
    facts = facts_for(context_of(*docs), policy)
    assert facts["unbound_targets"] == [] and facts["sidecar_targets_unbound"] == ["Service legacy/cart"]
    report = audit(snapshot, load_rules())
    assert [(f.rule, f.severity) for f in report.findings if f.object.name == "cart-get-only"] == [
        ("policy-target-sidecar", "error")]


def test_a_targetref_to_a_headless_service_behind_a_service_waypoint_is_unbound():
    import yaml

    from auditor.facts.attachment import headless, resolve_target
    from conftest import FIXTURES

    path = FIXTURES / "rules" / "policy-target-unbound" / "fail.headless-service.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    ctx = context_of(*docs)
    policy = ctx.snapshot.get("security.istio.io/AuthorizationPolicy", "shop", "db-readers")
    assert headless(ctx.snapshot.get("Service", "shop", "db"))
    target = resolve_target(ctx, policy, {"kind": "Service", "group": "", "name": "db"})
    assert target["status"] == "unbound" and "headless" in target["detail"] and "shop/waypoint" in target["detail"]
    for doc in docs:  # with a VIP, the service waypoint serves it
        if doc["kind"] == "Service":
            doc["spec"].pop("clusterIP")
    vip = context_of(*docs)
    assert resolve_target(vip, policy, {"kind": "Service", "group": "", "name": "db"})["status"] == "waypoint"


def test_istio_generated_identities_are_modelled_from_gateway_objects():
    """A Gateway of class istio runs as <name>-istio, a waypoint as its own name; a policy
    naming the ingress gateway's identity is judged by what that gateway is, not by
    "workloads of the namespace"."""
    import yaml

    from auditor.facts.identity import describe_generated, generated_callers, hidden_identities
    from conftest import FIXTURES

    rules = FIXTURES / "rules"
    for name, expected in (("authz-identity-behind-waypoint/pass.generated-ingress-gateway.yaml", []),
                           ("ztunnel-policy-refuses-waypoint/fail.generated-ingress-gateway-opted-in.yaml",
                            ["principal cluster.local/ns/default/sa/bookinfo-gateway-istio (ingress gateway "
                             "default/bookinfo-gateway (service account bookinfo-gateway-istio, generated by Istio))"])):
        docs = [d for d in yaml.safe_load_all((rules / name).read_text()) if d]
        ctx = context_of(*docs, istio_version=Version(1, 24))
        assert sorted(generated_callers(ctx)["default"]) == [("ingress gateway", "bookinfo-gateway", "bookinfo-gateway-istio"),
                                                             ("waypoint", "waypoint", "waypoint")]
        policy = ctx.snapshot.get("security.istio.io/AuthorizationPolicy", "default", "productpage-viewer")
        assert hidden_identities(ctx, policy) == expected, name
    assert describe_generated("waypoint", "shop", "wp", "wp") == "waypoint shop/wp (service account wp, generated by Istio)"


def test_a_waypoint_enforced_deny_that_excludes_the_waypoint_names_the_exclusion():
    import yaml

    from conftest import FIXTURES

    folder = FIXTURES / "rules" / "waypoint-deny-by-waypoint-identity"
    for name, expected in (("fail.target-refs.yaml", ["notPrincipals cluster.local/ns/shop/sa/waypoint (waypoint "
                                                      "shop/waypoint, service account waypoint)"]),
                           ("pass.selector.yaml", []), ("pass.other-identity.yaml", [])):
        docs = [d for d in yaml.safe_load_all((folder / name).read_text()) if d]
        ctx = context_of(*docs)
        policy = ctx.snapshot.get("security.istio.io/AuthorizationPolicy", "shop", "deny-waypoint-bypass")
        assert object_facts(ctx, policy)["waypoint_excluded_by_itself"] == expected, name


# -- whom a ztunnel-enforced ALLOW admits once a waypoint is in the path --------------------

def _guide(principals, *extra, version=Version(1, 24), opted_in=False, action=None):
    """Istio's getting-started namespace: productpage behind the namespace waypoint, curl an
    ambient client, bookinfo-gateway an ingress gateway Istio generates."""
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "default", "labels": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}}}
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "bookinfo-gateway", "namespace": "default"},
               "spec": {"gatewayClassName": "istio"}}
    waypoint = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "waypoint", "namespace": "default"},
                "spec": {"gatewayClassName": "istio-waypoint"}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "productpage", "namespace": "default",
                                                               "labels": {"istio.io/ingress-use-waypoint": "true"} if opted_in else {}},
           "spec": {"selector": {"app": "productpage"}}}

    def deploy(name, namespace="default", account=None):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"serviceAccountName": account or name, "containers": [{"name": name, "image": "x"}]}}}}

    rules = [{"from": [{"source": {"principals": principals}}]}] if all(isinstance(p, str) for p in principals) else principals
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "viewer", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "productpage"}}, "rules": rules, **({"action": action} if action else {})}}
    ctx = context_of(ns, gateway, waypoint, svc, deploy("productpage"), deploy("curl"), policy, *extra, istio_version=version)
    return object_facts(ctx, ctx.snapshot.get("security.istio.io/AuthorizationPolicy", "default", "viewer"))


CURL, GATEWAY, WAYPOINT = ("cluster.local/ns/default/sa/curl", "cluster.local/ns/default/sa/bookinfo-gateway-istio",
                           "cluster.local/ns/default/sa/waypoint")
REFUSED = ["waypoint default/waypoint (service account waypoint)"]


@pytest.mark.parametrize("rules, kwargs, refused, admits", [
    ([CURL], {}, REFUSED, False),  # an ambient client only: refused through the waypoint
    ([CURL, WAYPOINT], {}, [], True),
    ([GATEWAY], {}, [], False),  # the ingress gateway bypasses the waypoint: a choice
    ([GATEWAY], {"opted_in": True}, REFUSED, False),  # now it passes the waypoint too
    ([GATEWAY], {"opted_in": True, "version": Version(1, 23)}, [], False),  # not read before 1.24
    ([{"from": [{"source": {"namespaces": ["default"]}}]}], {}, [], True),  # the waypoint's namespace
    ([{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}], {}, [], True),  # the waypoint's IP may be in it
    ([{"to": [{"operation": {"ports": ["9080"]}}]}], {}, [], True),  # names no caller: admits the waypoint
    ([{"from": [{"source": {"principals": [CURL]}}], "to": [{"operation": {"methods": ["GET"]}}]}], {}, [], False),  # L7: dropped
    ([{"from": [{"source": {"principals": ["cluster.local/ns/elsewhere/sa/x"]}}]}], {}, [], False),  # unknown caller
    ([{"when": [{"key": "source.principal", "values": [CURL]}]}], {}, REFUSED, False),
    ([{"from": [{"source": {"notPrincipals": [CURL]}}]}], {}, [], True),
])
def test_which_waypoints_a_ztunnel_allow_refuses(rules, kwargs, refused, admits):
    f = _guide(rules, **kwargs)
    assert f["waypoints_refused"] == refused
    assert f["admits_waypoint"] is admits


def test_a_deny_or_a_policy_without_a_waypoint_is_not_judged_for_admission():
    assert _guide([CURL], action="DENY")["waypoints_refused"] == []
    assert _guide([CURL], action="DENY")["admits_waypoint"] is None
