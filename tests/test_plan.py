"""`mesh-audit plan`: what-if audits equal full audits, verdicts and their reasons, the
change set, waves that never open an authorization gap, verification, and the cost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from auditor import api
from auditor.core import kinds as k
from auditor.engine import evaluate
from auditor.facts.context import Context
from auditor.plan import changes as change_sets
from auditor.plan.cost import cpu_millis, memory_bytes
from auditor.plan.emit import emit
from auditor.plan.moves import enrolls_pods, moved_namespace, restarted_pods
from auditor.plan.planner import PlanOptions, after_state, diff, make_plan
from auditor.plan.verify import verify
from auditor.model.snapshot import K8sObject, Snapshot
from conftest import DEMO, ROOT

sys.path.insert(0, str(ROOT / "bench"))

from generate import generate  # noqa: E402



def generated(pods: int, modes=None) -> Snapshot:
    """A generated cluster as a snapshot holds it (running pods projected, as when read)."""
    from auditor.collect.cluster.lister import strip_bookkeeping
    from auditor.model.snapshot import Projector

    cluster = generate(pods, modes=modes)
    project = Projector()
    objects = []
    for raw in cluster["declared"] + cluster["observed"]:
        projected, signature = project(strip_bookkeeping(dict(raw)))
        objects.append(K8sObject(projected, signature=signature))
    snapshot = Snapshot(objects)
    snapshot.collection = {"source": "snapshot", "counts": {"pods": 1}}
    return snapshot


@pytest.fixture(scope="module")
def cluster_10k():
    return generated(10_000)


def planned(snapshot: Snapshot, **options):
    settings = api.resolve(api.Settings())
    ctx = api.context(snapshot, settings)
    plan, whatif = make_plan(snapshot, settings, PlanOptions(**options), ctx)
    return plan, whatif, ctx, settings


def graded(findings) -> set:
    return {(f.identity(), f.severity) for f in findings}


def assert_what_ifs_are_exact(snapshot: Snapshot) -> int:
    """Every what-if the plan audits (each namespace moved bare, then with its change set)
    gives the findings a full audit of that cluster gives."""
    plan, whatif, ctx, settings = planned(snapshot)
    enrolled = enrolls_pods(ctx)
    checked = 0
    for ns in plan.namespaces:
        bare = moved_namespace(ctx, ns.name)
        states = [([bare, *restarted_pods(ctx, ns.name, bare.labels, enrolled)], set()),
                  (after_state(ctx, ns.changes, enrolled), ns.changes.remove())]
        for put, remove in states:
            fast_ctx, fast, _ = whatif.audit(put, remove)
            full = evaluate(Context(ctx.snapshot.changed(put, remove), ctx.installation.istio_version, ctx.options),
                            settings.rules, jobs=1).findings
            assert graded(fast) == graded(full), ns.name
            new_fast, _ = diff(whatif.findings, fast)
            new_full, _ = diff(whatif.findings, full)
            assert sorted((f.identity(), f.message) for f in new_fast) == sorted((f.identity(), f.message) for f in new_full)
            checked += 1
    return checked


def test_what_ifs_equal_full_audits_on_the_demo():
    assert assert_what_ifs_are_exact(api.load([DEMO])) == 8


def test_what_ifs_equal_full_audits_on_a_generated_cluster_in_migration(cluster_10k):
    assert assert_what_ifs_are_exact(cluster_10k) == 2 * 16


def test_what_ifs_equal_full_audits_when_the_first_namespace_moves():
    """A mesh with no ambient workload yet: every move flips mesh-wide facts (ambient exists),
    which the what-ifs audit once and reuse."""
    snapshot = generated(1500, modes=["sidecar", "sidecar", "plain"])
    assert assert_what_ifs_are_exact(snapshot) >= 6


def test_demo_verdicts_reasons_and_waves():
    plan = api.plan(api.load([DEMO]))
    by_name = {n.name: n for n in plan.namespaces}
    assert {n: (p.verdict, p.wave) for n, p in by_name.items()} == {
        "billing": ("blocked", None), "checkout": ("ready", 1), "orders": ("ready", 1), "legacy": ("needs-waypoint", 2)}
    assert [r.rule for r in by_name["billing"].reasons] == ["envoyfilter-ambient"]
    assert by_name["billing"].reasons[0].workloads == ["Deployment billing/invoicer"]
    legacy = by_name["legacy"]
    assert [(r.rule, r.migration, r.object) for r in legacy.reasons] == [
        ("authz-l7-at-ztunnel", "needs-waypoint", "AuthorizationPolicy legacy/reports-get-only")]
    assert [(w.name, w.verdict, w.pods) for w in legacy.workloads] == [("Deployment legacy/reports", "needs-waypoint", 2)]
    assert [c.namespace for c in legacy.callers] == ["orders"]
    assert plan.waves[1].order == ["legacy after orders: AuthorizationPolicy legacy/reports-get-only allows namespace orders"]
    assert {s["namespace"]: s["why"] for s in plan.skipped}["payments"] == "already in ambient mode"
    # checkout was labelled for ambient but kept its injection label: the move resolves both findings
    assert {r["rule"] for r in by_name["checkout"].resolved} == {"mode-namespace-conflict", "mode-sidecar-in-ambient"}
    assert set(plan.rules) == {"authz-l7-at-ztunnel", "envoyfilter-ambient"}


def _demo_docs() -> list[dict]:
    return [d for p in sorted(Path(DEMO).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def _key(doc: dict) -> tuple:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace") if doc["kind"] != "Namespace" else None, meta["name"]


def _scan(tmp_path, docs: list[dict], name: str) -> set:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    report = api.scan([path])
    return {(f.rule, str(f.object), f.severity) for f in report.findings}


def test_reasons_are_what_scan_reports_after_the_move(tmp_path):
    """Move each demo namespace in its manifests, scan, and compare with the plan: the new
    findings are the reasons; with the change set applied too, only notices and the
    ordering finding are new."""
    plan = api.plan(api.load([DEMO]), emit=str(tmp_path / "changes"))
    docs = _demo_docs()
    today = _scan(tmp_path, docs, "today")
    for ns in plan.namespaces:
        moved = [d if _key(d) != ("Namespace", None, ns.name) else change_sets.manifest(moved_namespace(
            api.context(api.load([DEMO])), ns.name)) for d in docs]
        after_move = _scan(tmp_path, moved, ns.name)
        assert after_move - today == {(r.rule, r.object, r.severity) for r in ns.reasons if r.stage == "move"}, ns.name
        if ns.wave is None:
            continue
        applied = {_key(c.manifest): c.manifest for c in ns.changes.changes if c.action == "apply"}
        deleted = {(c.kind, c.namespace, c.name) for c in ns.changes.changes if c.action == "delete" and not c.fields}
        with_changes = [applied.pop(_key(d), d) for d in docs if _key(d) not in deleted] + list(applied.values())
        left = _scan(tmp_path, with_changes, ns.name + "-changed") - today
        assert {rule for rule, _, _ in left} <= {"waypoint-sidecar-clients-bypass", "upgrade-alpha-feature"}, left


def test_every_sidecar_namespace_of_a_generated_cluster_gets_a_verdict_and_verifies(cluster_10k, tmp_path):
    plan, whatif, ctx, settings = planned(cluster_10k)
    sidecar = {w.namespace for w in ctx.workloads if w.mode == "sidecar" and w.role == "app"}
    assert {n.name for n in plan.namespaces} == sidecar and len(sidecar) == 16
    assert all(n.verdict in ("ready", "needs-waypoint") for n in plan.namespaces)
    needing = [n for n in plan.namespaces if n.verdict == "needs-waypoint"]
    assert needing and all(n.changes.new_waypoint and n.changes.bound_services for n in needing)
    assert any(n.changes.moved_policies for n in needing)
    emit(plan, str(tmp_path))
    result = verify(plan, ctx, whatif.findings, str(tmp_path), settings)
    assert result["ok"], result
    assert [w["wave"] for w in result["waves"]] == [w.number for w in plan.waves]


# -- waves ------------------------------------------------------------------------------------

def _namespace(name: str, *, sidecar=True) -> list[dict]:
    labels = {"istio-injection": "enabled"} if sidecar else {}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": name},
         "spec": {"selector": {"matchLabels": {"app": "api"}},
                  "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "x"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": name},
         "spec": {"selector": {"app": "api"}, "ports": [{"name": "http", "port": 80}]}},
    ]


def _l7_policy(namespace: str, callers: list[str]) -> dict:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "api", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "api"}},
                     "rules": [{"from": [{"source": {"namespaces": callers}}], "to": [{"operation": {"methods": ["GET"]}}]}]}}


def _envoy_filter(namespace: str) -> dict:
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter", "metadata": {"name": "patch", "namespace": namespace},
            "spec": {"workloadSelector": {"labels": {"app": "api"}}, "configPatches": []}}


def snapshot_of(*docs) -> Snapshot:
    return Snapshot(K8sObject(d) for d in docs)


def test_waves_move_callers_first_where_the_naive_order_opens_a_gap(tmp_path):
    """alpha's GET-only policy admits zulu: moving alpha first (alphabetically, as a naive
    plan would) leaves zulu's sidecars bypassing alpha's waypoint. The plan moves zulu first,
    and its verification, wave by wave, finds no gap; the naive order does."""
    snapshot = snapshot_of(*_namespace("alpha"), _l7_policy("alpha", ["zulu"]), *_namespace("zulu"))
    plan, whatif, ctx, settings = planned(snapshot)
    assert [(w.number, w.namespaces) for w in plan.waves] == [(1, ["zulu"]), (2, ["alpha"])]
    assert plan.waves[1].order == ["alpha after zulu: AuthorizationPolicy alpha/api allows namespace zulu"]
    emit(plan, str(tmp_path / "planned"))
    assert verify(plan, ctx, whatif.findings, str(tmp_path / "planned"), settings)["ok"]
    naive = plan.waves[0].namespaces, plan.waves[1].namespaces
    plan.waves[0].namespaces, plan.waves[1].namespaces = naive[1], naive[0]
    plan.namespace("alpha").wave, plan.namespace("zulu").wave = 1, 2
    emit(plan, str(tmp_path / "naive"))
    result = verify(plan, ctx, whatif.findings, str(tmp_path / "naive"), settings)
    assert not result["ok"]
    assert result["waves"][0]["gaps"] == [
        "alpha: caller zulu still runs sidecars (AuthorizationPolicy alpha/api allows namespace zulu)"]


def test_namespaces_that_call_each_other_move_together():
    snapshot = snapshot_of(*_namespace("east"), _l7_policy("east", ["west"]), *_namespace("west"), _l7_policy("west", ["east"]))
    plan = api.plan(snapshot)
    assert [(w.number, w.namespaces) for w in plan.waves] == [(1, ["east", "west"])]
    assert plan.waves[0].order == ["east moves with west: they call each other", "west moves with east: they call each other"]


def test_a_caller_that_stays_on_sidecars_holds_the_namespaces_it_calls():
    """billing is blocked (EnvoyFilter) and calls ledger; ledger would be bypassed, and ledger
    calls audit in turn: both wait."""
    snapshot = snapshot_of(*_namespace("billing"), _envoy_filter("billing"), *_namespace("ledger"),
                           _l7_policy("ledger", ["billing"]), *_namespace("audit"), _l7_policy("audit", ["ledger"]))
    plan = api.plan(snapshot)
    by_name = {n.name: n for n in plan.namespaces}
    assert by_name["billing"].verdict == "blocked"
    assert by_name["ledger"].held_by == ["billing: AuthorizationPolicy ledger/api allows namespace billing"]
    assert by_name["audit"].held_by == ["ledger: AuthorizationPolicy audit/api allows namespace ledger"]
    assert plan.waves == [] and by_name["ledger"].wave is None


def test_a_policy_that_admits_any_caller_waits_for_every_sidecar_namespace():
    policy = _l7_policy("shop", ["x"])
    policy["spec"]["rules"][0].pop("from")
    snapshot = snapshot_of(*_namespace("shop"), policy, *_namespace("web"), *_namespace("batch"))
    plan = api.plan(snapshot)
    assert [(w.number, w.namespaces) for w in plan.waves] == [(1, ["batch", "web"]), (2, ["shop"])]


def test_plan_only_the_namespaces_asked_for_and_name_the_unknown():
    snapshot = api.load([DEMO])
    assert [n.name for n in api.plan(snapshot, namespaces=("orders",)).namespaces] == ["orders"]
    with pytest.raises(api.UsageError, match="-n nowhere: no such namespace"):
        api.plan(snapshot, namespaces=("nowhere",))
    # legacy asked alone: its caller orders is not planned, so stays on sidecars
    alone = api.plan(snapshot, namespaces=("legacy",)).namespace("legacy")
    assert alone.held_by == ["orders: AuthorizationPolicy legacy/reports-get-only allows namespace orders"]


def test_namespaces_outside_the_mesh_only_when_asked():
    snapshot = snapshot_of(*_namespace("plain", sidecar=False), *_namespace("meshed"))
    assert [n.name for n in api.plan(snapshot).namespaces] == ["meshed"]
    assert [n.name for n in api.plan(snapshot, include_unmeshed=True).namespaces] == ["meshed", "plain"]
    assert api.plan(snapshot, include_unmeshed=True).namespace("plain").today == "not in the mesh"


# -- cost -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, millis", [("100m", 100), ("0.5", 500), ("2", 2000), ("1.5", 1500), ("250m", 250),
                                          (None, None), ("lots", None), (True, None)])
def test_cpu_quantities(text, millis):
    assert cpu_millis(text) == millis


@pytest.mark.parametrize("text, size", [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("500M", 500 * 10**6), ("1e3", 1000),
                                        ("134217728", 134217728), ("64Ki", 65536), ("x", None)])
def test_memory_quantities(text, size):
    assert memory_bytes(text) == size


def test_cost_of_the_demo_from_defaults_and_a_given_node_count():
    plan = api.plan(api.load([DEMO]), nodes=4)
    c = plan.cost
    # checkout 1 + orders 3 + legacy 2 replicas, at Istio's default 100m / 128Mi; billing is blocked
    assert (c.sidecars.cpu_millis, c.sidecars.memory_bytes) == (600, 6 * 128 * 2**20)
    assert (c.waypoints.cpu_millis, c.nodes, c.ztunnel.cpu_millis, c.ztunnel.memory_bytes) == (100, 4, 800, 4 * 512 * 2**20)
    assert plan.namespace("billing").sidecars.cpu_millis == 100


def test_cost_reads_running_sidecars_annotations_injector_values_ztunnel_and_nodes():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop", "uid": "1",
                                                           "annotations": {"sidecar.istio.io/status": "{}"}},
           "spec": {"containers": [{"name": "app", "image": "x"}, {"name": "istio-proxy", "image": "proxy",
                                                                    "resources": {"requests": {"cpu": "30m", "memory": "40Mi"}}}]},
           "status": {"phase": "Running"}}
    template = _namespace("shop")[1]
    template["metadata"]["name"] = "declared"
    template["spec"]["replicas"] = 3
    template["spec"]["template"]["metadata"]["annotations"] = {"sidecar.istio.io/proxyCPU": "50m"}
    injector = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
                "data": {"values": '{"global": {"proxy": {"resources": {"requests": {"cpu": "20m", "memory": "64Mi"}}}}}'}}
    ztunnel = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ztunnel", "namespace": "istio-system"},
               "spec": {"template": {"spec": {"containers": [{"name": "istio-proxy",
                                                              "resources": {"requests": {"cpu": "300m", "memory": "1Gi"}}}]}}}}
    nodes = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n{i}"}} for i in range(3)]
    plan = api.plan(snapshot_of(_namespace("shop")[0], pod, template, injector, ztunnel, *nodes))
    shop = plan.namespace("shop")
    assert (shop.sidecars.cpu_millis, shop.sidecars.memory_bytes) == (30 + 3 * 50, 40 * 2**20 + 3 * 64 * 2**20)
    c = plan.cost
    assert c.ztunnel_installed and c.nodes == 3 and c.nodes_source == "the cluster's Node list"
    assert (c.ztunnel_per_node.cpu_millis, c.added.cpu_millis) == (300, 0)


# -- moves and change sets --------------------------------------------------------------------

def test_restarted_pods_lose_the_sidecar_unless_a_label_still_injects():
    def pod(name, labels):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "shop", "uid": name, "labels": labels,
                             "annotations": {"sidecar.istio.io/status": "{}", "keep": "me"}},
                "spec": {"initContainers": [{"name": "istio-init"}], "containers": [{"name": "app"}, {"name": "istio-proxy"}]},
                "status": {"phase": "Running"}}
    ztunnel = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ztunnel", "namespace": "istio-system"}}
    snapshot = snapshot_of(_namespace("shop")[0], pod("plain", {}), pod("opted", {"sidecar.istio.io/inject": "true"}), ztunnel)
    ctx = Context(snapshot)
    ns = moved_namespace(ctx, "shop")
    assert ns.labels == {"istio.io/dataplane-mode": "ambient"}
    plain, = restarted_pods(ctx, "shop", ns.labels, enrolled=True)  # the opted-in pod comes back injected: unchanged
    assert [c["name"] for c in plain.raw["spec"]["containers"]] == ["app"] and plain.raw["spec"]["initContainers"] == []
    assert plain.annotations == {"keep": "me", "ambient.istio.io/redirection": "enabled"}
    assert snapshot.get(k.POD, "shop", "plain").raw["spec"]["containers"][1]["name"] == "istio-proxy"  # not changed in place


def _change_set(*docs, namespace="shop"):
    snapshot = snapshot_of(*docs)
    plan = api.plan(snapshot, namespaces=(namespace,))
    return plan.namespace(namespace), {(c.action, c.kind, c.name): c for c in plan.namespace(namespace).changes.changes}


def test_an_l7_allow_policy_moves_to_the_waypoint_and_keeps_its_l4_part_at_ztunnel():
    policy = _l7_policy("shop", ["web"])
    policy["spec"]["rules"].append({"to": [{"operation": {"ports": ["9090"]}}]})
    ns, changes = _change_set(*_namespace("shop"), policy)
    assert ns.verdict == "needs-waypoint" and ns.changes.waypoint == "waypoint"
    gateway = changes[("apply", "Gateway", "waypoint")].manifest
    assert gateway["metadata"]["labels"] == {"istio.io/waypoint-for": "service"}
    assert gateway["spec"]["listeners"] == [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]
    assert changes[("apply", "Service", "api")].manifest["metadata"]["labels"] == {"istio.io/use-waypoint": "waypoint"}
    moved = changes[("apply", "AuthorizationPolicy", "api")].manifest["spec"]
    assert "selector" not in moved and moved["targetRefs"] == [{"group": "", "kind": "Service", "name": "api"}]
    assert moved["rules"] == policy["spec"]["rules"]
    companion = changes[("apply", "AuthorizationPolicy", "api-ztunnel")].manifest["spec"]
    assert companion == {"selector": {"matchLabels": {"app": "api"}}, "rules": [
        {"to": [{"operation": {"ports": ["9090"]}}]},
        {"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/waypoint"]}}]}]}


def test_deny_custom_namespace_wide_and_request_authentication_rewrites():
    deny = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "deny", "namespace": "shop"},
            "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]},
                                                 {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}}
    custom = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "ext", "namespace": "shop"},
              "spec": {"selector": {"matchLabels": {"app": "api"}}, "action": "CUSTOM", "provider": {"name": "oauth"},
                       "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}}
    jwt = {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication", "metadata": {"name": "jwt", "namespace": "shop"},
           "spec": {"selector": {"matchLabels": {"app": "api"}}, "jwtRules": [{"issuer": "me"}]}}
    ns, changes = _change_set(*_namespace("shop"), deny, custom, jwt)
    assert changes[("apply", "AuthorizationPolicy", "deny")].manifest["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}]
    assert changes[("apply", "AuthorizationPolicy", "deny-ztunnel")].manifest["spec"] == {
        "action": "DENY", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}
    assert changes[("apply", "AuthorizationPolicy", "ext")].manifest["spec"]["targetRefs"][0]["kind"] == "Service"
    assert ("apply", "AuthorizationPolicy", "ext-ztunnel") not in changes
    assert changes[("apply", "RequestAuthentication", "jwt")].manifest["spec"]["targetRefs"][0]["name"] == "api"
    assert ns.verdict == "needs-waypoint" and not ns.blocking


def test_dead_objects_listed_templates_relabelled_network_policies_opened():
    sidecar = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default", "namespace": "shop"},
               "spec": {"egress": [{"hosts": ["./*"]}]}}
    shop = _namespace("shop")
    shop[1]["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] = "true"
    shop[1]["spec"]["template"]["metadata"]["annotations"] = {"sidecar.istio.io/proxyCPU": "1", "team": "a"}
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web", "namespace": "shop"},
              "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]}}
    ns, changes = _change_set(*shop, sidecar, netpol)
    assert ns.verdict == "ready", ns.reasons
    assert changes[("delete", "Sidecar", "default")].why == "ambient workloads have no sidecar to configure"
    assert changes[("delete", "Deployment", "api")].fields == ["sidecar.istio.io/proxyCPU"]
    template = changes[("apply", "Deployment", "api")].manifest["spec"]["template"]["metadata"]
    assert template["labels"] == {"app": "api"}
    opened = changes[("apply", "NetworkPolicy", "web")].manifest["spec"]["ingress"]
    assert opened[0]["ports"] == [{"port": 80}, {"port": 15008, "protocol": "TCP"}]
    assert opened[1] == {"from": [{"ipBlock": {"cidr": "169.254.7.127/32"}}]}


def test_what_the_change_set_cannot_fix_blocks_with_the_rule_and_a_step_to_review():
    """A policy selecting a workload no Service fronts: no waypoint can take it over."""
    shop = _namespace("shop")[:2]
    ns, changes = _change_set(*shop, _l7_policy("shop", ["web"]))
    assert ns.verdict == "blocked"
    assert [(r.rule, r.stage) for r in ns.blocking] == [("authz-l7-at-ztunnel", "after-changes")]
    assert "no Service fronts" in changes[("review", "AuthorizationPolicy", "api")].why


def test_nodes_are_collected_by_name_for_the_cost(tmp_path):
    """A live read keeps a Node's name and labels only, and the plan counts them."""
    from conftest import cluster_objects
    from kube_api.server import ApiServer

    nodes = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}", "labels": {"zone": "a"}},
              "spec": {"podCIDR": "10.0.0.0/24"}, "status": {"capacity": {"cpu": "8"}}} for i in range(5)]
    with ApiServer(cluster_objects() + nodes) as server:
        snapshot = api.load(api.ClusterSource(kubeconfig=str(server.kubeconfig(tmp_path / "kubeconfig"))))
    nodes = snapshot.of(k.NODE)
    assert len(nodes) == 5 and all(set(n.raw) == {"apiVersion", "kind", "metadata"} for n in nodes)
    assert all(set(n.metadata) <= {"name", "uid", "labels"} for n in nodes)
    assert api.plan(snapshot).cost.nodes == len(nodes)


def test_planning_on_two_cores_gives_the_plan_one_core_gives(cluster_10k):
    from auditor.plan import renderer

    one = renderer("json")(api.plan(cluster_10k, api.Settings(jobs=1)))
    two = renderer("json")(api.plan(cluster_10k, api.Settings(jobs=2)))
    assert one == two
