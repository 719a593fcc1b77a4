"""The mesh across clusters (auditor.facts.topology): what each cluster shows of itself,
and how copies of a Service and the clusters' identities are compared."""

from __future__ import annotations

from auditor.facts.context import AuditOptions, Context
from auditor.facts.subjects import facts_for
from auditor.facts.topology import Topology, member
from auditor.engine import cluster_object
from auditor.core.versions import parse_version
from conftest import snapshot_of


def ns(name, labels=None, annotations=None):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


def mesh_config(text):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": text}}


def service(name="cart", namespace="shop", ports=None, **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": ports if ports is not None else [{"name": "http", "port": 80}],
                     **spec}}


def waypoint(name="waypoint", namespace="shop"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": "istio-waypoint", "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}


ISTIOD = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system"},
          "spec": {"template": {"metadata": {"labels": {"app": "istiod"}},
                                "spec": {"containers": [{"name": "discovery", "image": "istio/pilot:1.27.1"}]}}}}
AMBIENT = {"istio.io/dataplane-mode": "ambient"}


def contexts(clusters: dict, version="1.27.1", collected=None) -> dict[str, Context]:
    out = {name: Context(snapshot_of(*docs), parse_version(version) if version else None,
                         AuditOptions(member=name, cluster_name=name, collected=collected))
           for name, docs in clusters.items()}
    topology = Topology([member(name, ctx) for name, ctx in out.items()])
    for ctx in out.values():
        ctx.join_mesh(topology)
    return out


def cluster_facts(ctx):
    return facts_for(ctx, cluster_object(ctx.options.member))["multicluster"]


def service_facts(ctx, name="cart"):
    return facts_for(ctx, ctx.snapshot.get("Service", "shop", name))["multicluster"]


def test_a_member_reads_network_trust_domain_mesh_id_and_control_plane():
    ctx = contexts({"east": [ns("istio-system", {"topology.istio.io/network": "net1"}), ISTIOD, ns("shop", AMBIENT),
                             mesh_config("trustDomain: east.example\ntrustDomainAliases: [old.example]\n"
                                         "defaultConfig: {meshId: prod}\n")],
                    "west": [ns("istio-system")]})
    east = member("east", ctx["east"])
    assert (east.network, east.trust_domain, east.aliases, east.mesh_id, east.istiod, east.ambient) == \
           ("net1", "east.example", ("old.example",), "prod", True, True)
    west = member("west", ctx["west"])
    # no mesh config in the input: nothing to compare; no istiod and no Deployments collected: unknown
    assert (west.network, west.trust_domain, west.mesh_id, west.istiod, west.ambient) == ("", None, None, None, False)


def test_the_mesh_id_defaults_to_the_trust_domain_and_remotes_are_recognized():
    ctx = contexts({"east": [ns("istio-system"), mesh_config("trustDomain: a.example\n"), ISTIOD],
                    "west": [ns("istio-system", annotations={"topology.istio.io/controlPlaneClusters": "east"}),
                             mesh_config("{}")],
                    "south": [ns("istio-system")]}, collected=frozenset({"deployments.apps"}))
    assert member("east", ctx["east"]).mesh_id == "a.example"
    assert member("west", ctx["west"]).mesh_id == "cluster.local"
    assert member("west", ctx["west"]).istiod is False  # named its control plane
    assert member("south", ctx["south"]).istiod is False  # Deployments collected, no istiod among them
    assert cluster_facts(ctx["west"])["remote"] and cluster_facts(ctx["east"])["primaries"] == ["east"]
    assert cluster_facts(ctx["west"])["controllers"] == ["east"] and cluster_facts(ctx["south"])["controllers"] == []


def test_cluster_facts_give_networks_and_maturity_per_version():
    ctx = contexts({"east": [ns("istio-system", {"topology.istio.io/network": "net1"}), ns("shop", AMBIENT)],
                    "west": [ns("istio-system")]}, version="1.25.0")
    facts = cluster_facts(ctx["east"])
    assert facts["networks"] == {"east": "net1", "west": "(unlabelled)"} and facts["multi_network"]
    assert (facts["status"], facts["network_status"]) == ("not implemented", "not implemented")
    assert facts["ambient_clusters"] == ["east"] and facts["size"] == 2
    assert ctx["east"].mesh["clusters"] == 2 and ctx["east"].mesh["cluster_names"] == ["east", "west"]
    later = contexts({"east": [ns("istio-system")], "west": [ns("istio-system")]}, version="1.29.0")
    assert (cluster_facts(later["east"])["status"], cluster_facts(later["east"])["network_status"]) == ("beta", "beta")
    unknown = contexts({"east": [ns("istio-system")], "west": [ns("istio-system")]}, version=None)
    assert cluster_facts(unknown["east"])["status"] == "unknown"


def test_identity_conflicts_take_the_majority_and_honour_aliases():
    tds = {"east": "a.example", "west": "a.example", "central": "b.example"}
    ctx = contexts({n: [ns("istio-system"), mesh_config(f"trustDomain: {td}\n")] for n, td in tds.items()})
    assert cluster_facts(ctx["east"])["identity_conflicts"] == []
    conflicts = cluster_facts(ctx["central"])["identity_conflicts"]
    # the mesh ID follows the trust domain when unset: both differ
    assert [(c["what"], c["value"], c["expected"], c["clusters"], c["severity"]) for c in conflicts] == [
        ("trust domain", "b.example", "a.example", ["east", "west"], "error"),
        ("mesh ID", "b.example", "a.example", ["east", "west"], "warning")]
    aliased = contexts({"east": [ns("istio-system"), mesh_config("trustDomain: a.example\ndefaultConfig: {meshId: m}\n")],
                        "west": [ns("istio-system"), mesh_config("trustDomain: b.example\ntrustDomainAliases: [a.example]\n"
                                                                 "defaultConfig: {meshId: m}\n")]})
    assert cluster_facts(aliased["west"])["identity_conflicts"] == []
    # the reference's aliases count too (east lists west's domain)
    other_way = contexts({"east": [ns("istio-system"), mesh_config("trustDomain: a.example\ntrustDomainAliases: [b.example]\n"
                                                                   "defaultConfig: {meshId: m}\n")],
                          "west": [ns("istio-system"), mesh_config("trustDomain: b.example\ndefaultConfig: {meshId: m}\n")]})
    assert cluster_facts(other_way["west"])["identity_conflicts"] == []


def test_service_copies_compare_ports_type_and_addressing_with_the_majority():
    ports = [{"name": "http", "port": 80, "targetPort": 8080}]
    ctx = contexts({"east": [ns("shop"), service(ports=ports)], "west": [ns("shop"), service(ports=ports)],
                    "central": [ns("shop"), service(ports=[{"name": "http", "port": 80}], type="NodePort")],
                    "south": [ns("shop")]})
    assert service_facts(ctx["east"])["conflicts"] == []
    assert service_facts(ctx["east"])["elsewhere"] == ["west", "central"]
    assert service_facts(ctx["central"])["conflicts"] == [
        "type NodePort here, ClusterIP in east, west",
        "ports http 80/TCP here, http 80/TCP -> 8080 in east, west"]
    headless = contexts({"east": [ns("shop"), service()], "west": [ns("shop"), service(clusterIP="None")]})
    assert service_facts(headless["west"])["conflicts"] == ["headless here, a cluster IP in east"]
    assert service_facts(headless["west"])["headless"] is True
    alone = contexts({"east": [ns("shop"), service()], "west": [ns("shop")]})
    assert service_facts(alone["east"]) == {"size": 2, "elsewhere": []}


def test_waypoint_names_are_compared_among_ambient_copies_only():
    bound = {**AMBIENT, "istio.io/use-waypoint": "waypoint"}
    ctx = contexts({"east": [ns("shop", bound), waypoint(), service()],
                    "west": [ns("shop", bound), waypoint(), service()],
                    "central": [ns("shop", AMBIENT), service()],
                    "legacy": [ns("shop", {"istio-injection": "enabled"}), service()]})
    assert service_facts(ctx["east"])["waypoint"] == {}
    assert service_facts(ctx["central"])["waypoint"] == {"here": "", "expected": "shop/waypoint", "clusters": ["east", "west"]}
    assert service_facts(ctx["legacy"])["waypoint"] == {}  # a sidecar copy uses no waypoint
    # a tie between a named waypoint and none: the named one is the reference
    tie = contexts({"east": [ns("shop", AMBIENT), service()], "west": [ns("shop", bound), waypoint(), service()]})
    assert service_facts(tie["east"])["waypoint"]["expected"] == "shop/waypoint"
    assert service_facts(tie["west"])["waypoint"] == {}


def test_a_single_cluster_context_has_no_topology():
    ctx = Context(snapshot_of(ns("istio-system"), ns("shop", AMBIENT), service()))
    assert ctx.topology is None and ctx.mesh["clusters"] == 1
    assert facts_for(ctx, ctx.snapshot.get("Service", "shop", "cart"))["multicluster"] == {"size": 1}
    assert facts_for(ctx, cluster_object("cluster"))["multicluster"] == {"size": 1}
