"""Cluster-wide facts, the label index, Service selection, host names and finding roll-up."""

from __future__ import annotations

from auditor.facts.labels import LabelIndex, selector_matches
from auditor.facts.mesh import read_installation
from auditor.facts.services import qualify_host
from auditor.core.versions import Version
from auditor.facts.subjects import facts_for
from conftest import audit, context_of, snapshot_of


def cm(name, namespace, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def istiod(name, image):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "istio-system"},
            "spec": {"template": {"metadata": {"labels": {"app": "istiod"}}, "spec": {"containers": [{"name": "discovery", "image": image}]}}}}


def test_defaults_without_any_istio_objects():
    s = read_installation(snapshot_of())
    assert (s.root_namespace, s.outbound_traffic_policy, s.istio_version) == ("istio-system", "ALLOW_ANY", None)
    assert s.cni_excluded_namespaces == {"kube-system"} and s.injector.revisions is None


def test_mesh_config_root_namespace_and_outbound_policy():
    s = read_installation(snapshot_of(cm("istio", "istio-system", {"mesh": "rootNamespace: mesh-root\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"})))
    assert (s.root_namespace, s.outbound_traffic_policy) == ("mesh-root", "REGISTRY_ONLY")


def test_broken_mesh_config_warns_and_uses_defaults():
    s = read_installation(snapshot_of(cm("istio", "istio-system", {"mesh": "a: [\n"})))
    assert s.outbound_traffic_policy == "ALLOW_ANY"
    assert "data.mesh is not valid YAML" in s.warnings[0].message


def test_version_from_default_istiod_then_flag():
    snap = snapshot_of(istiod("istiod-canary", "docker.io/istio/pilot:1.25.1"), istiod("istiod", "registry:5000/istio/pilot:1.24.3-distroless"))
    s = read_installation(snap)
    assert s.istio_version == Version(1, 24, 3) and "istiod" in s.version_source
    assert read_installation(snap, Version(1, 26)).istio_version == Version(1, 26)
    assert read_installation(snapshot_of(istiod("istiod", "istio/pilot@sha256:abc"))).istio_version is None


def test_cni_and_injector_settings():
    mwc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
           "metadata": {"name": "istio-revision-tag-default", "labels": {"istio.io/rev": "1-24", "istio.io/tag": "default"}},
           "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io"}, {"name": "auto.sidecar-injector.istio.io"}]}
    s = read_installation(snapshot_of(
        cm("istio-cni-config", "istio-system", {"EXCLUDED_NAMESPACES": "kube-system, infra"}),
        cm("istio-sidecar-injector", "istio-system", {"config": "policy: disabled\nneverInjectSelector:\n- matchLabels: {a: b}\n"}),
        mwc,
    ))
    assert s.cni_excluded_namespaces == {"kube-system", "infra"}
    assert (s.injector.policy, len(s.injector.never_inject)) == ("disabled", 1)
    assert s.injector.revisions == {"1-24", "default"} and s.injector.namespaces_by_default


def test_label_index_selects_by_intersection_and_expressions():
    index = LabelIndex()
    index.add(0, "a", {"app": "x", "tier": "web"})
    index.add(1, "a", {"app": "x", "tier": "db"})
    index.add(2, "b", {"app": "x", "tier": "web"})
    assert index.select("a", {"app": "x", "tier": "web"}) == [0]
    assert index.select(None, {"tier": "web"}) == [0, 2]
    assert index.select("a", {}) == [0, 1]
    assert index.select("a", {"app": "x"}, [{"key": "tier", "operator": "NotIn", "values": ["web"]}]) == [1]
    assert index.select("a", {"app": "nope"}) == []
    assert selector_matches({"matchExpressions": [{"key": "k", "operator": "Bogus"}]}, {"k": "v"}) is False


def test_service_selects_workloads_and_selectorless_selects_none():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"istio.io/dataplane-mode": "ambient"}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"app": "x"}}, "spec": {}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"}, "spec": {"selector": {"app": "x"}}}
    bare = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bare", "namespace": "a"}, "spec": {}}
    facts = context_of(ns, pod, svc, bare)
    assert facts_for(facts, facts.snapshot.get("Service", "a", "s"))["workloads"]["ambient"] == 1
    assert facts_for(facts, facts.snapshot.get("Service", "a", "bare"))["workloads"] == {"ambient": 0, "sidecar": 0, "none": 0}


def test_short_host_names_follow_istio():
    assert qualify_host("reviews", "shop") == "reviews.shop.svc.cluster.local"
    assert qualify_host("reviews.shop", "other") == "reviews.shop"
    assert qualify_host("*", "shop") == "*"


def test_pod_findings_roll_up_to_owner_once(rules):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"}}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a", "uid": "d1"},
              "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}}
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc", "namespace": "a", "uid": "r1",
          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": True}]},
          "spec": {"template": {"metadata": {"labels": {"app": "web", "old": "template"}}, "spec": {"containers": [{"name": "c"}]}}}}
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-abc-{i}", "namespace": "a", "uid": f"p{i}", "labels": {"app": "web"},
             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "controller": True}]},
             "spec": {"containers": [{"name": "c"}, {"name": "istio-proxy"}]}, "status": {"phase": "Running"}} for i in range(3)]
    done = {**pods[0], "metadata": {**pods[0]["metadata"], "name": "finished", "uid": "p9"}, "status": {"phase": "Succeeded"}}
    report = audit(snapshot_of(ns, deploy, rs, *pods, done), rules)
    hits = [f for f in report.findings if f.rule == "mode-sidecar-in-ambient"]
    assert [(str(f.object), f.pods) for f in hits] == [("Deployment a/web", 3)]


def test_dns_capture_as_istio_cni_config_says_or_the_default():
    from conftest import context_of as ctx_of

    def cni(value):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-cni-config", "namespace": "istio-system"},
                "data": {"AMBIENT_DNS_CAPTURE": value}}

    assert ctx_of().mesh["dns_capture"] == "default"  # not collected: the chart's default for the version
    assert ctx_of(cni("true")).mesh["dns_capture"] == "on"
    assert ctx_of(cni("False")).mesh["dns_capture"] == "off"
    assert ctx_of(cni("maybe")).mesh["dns_capture"] == "default"
    # istio-cni reads its booleans with Go's ParseBool: "1" is on, "yes" is refused.
    assert ctx_of(cni("1")).mesh["dns_capture"] == "on"
    assert ctx_of(cni("yes")).mesh["dns_capture"] == "default"
