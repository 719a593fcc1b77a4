"""Replicas: running pods that differ only in name and identity are read once and counted."""

from __future__ import annotations

import copy

import orjson

from auditor.collect.files import load_paths
from auditor.facts.context import Context
from auditor.model.snapshot import Projector

TEMPLATE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "web-7d9f-",
        "namespace": "shop",
        "labels": {"app": "web", "pod-template-hash": "7d9f"},
        "annotations": {"ambient.istio.io/redirection": "enabled"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "controller": True}],
        "resourceVersion": "1",
    },
    "spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "web:1", "volumeMounts": [{"name": "token-x"}]}]},
    "status": {"phase": "Running", "podIP": "10.0.0.1"},
}


def pod(name: str, **changes) -> dict:
    raw = copy.deepcopy(TEMPLATE)
    raw["metadata"].update(name=name, uid=f"uid-{name}")
    raw["spec"]["nodeName"] = f"node-{name}"  # per-pod details projection drops
    raw["spec"]["containers"][0]["volumeMounts"][0]["name"] = f"token-{name}"
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target = raw
        for p in parents:
            target = target[p]
        target[leaf] = value
    return raw


def test_replicas_share_everything_but_their_identity():
    project = Projector()
    (a, sig_a), (b, sig_b) = project(pod("a")), project(pod("b"))
    assert sig_a == sig_b and sig_a is not None
    assert a["metadata"]["name"] == "a" and b["metadata"]["name"] == "b"
    assert b["metadata"]["uid"] == "uid-b" and b["metadata"]["generateName"] == "web-7d9f-"
    for key in ("labels", "annotations", "ownerReferences"):
        assert b["metadata"][key] is a["metadata"][key]
    assert b["spec"] is a["spec"] and b["status"] is a["status"]
    assert b == {**a, "metadata": {**a["metadata"], "name": "b", "uid": "uid-b"}}
    assert "nodeName" not in a["spec"] and a["status"] == {"phase": "Running"}


def test_any_difference_a_rule_could_see_keeps_pods_apart():
    project = Projector()
    base = project(pod("a"))[1]
    for change in ({"metadata.labels": {"app": "web", "version": "v2"}},
                   {"metadata.annotations": {"ambient.istio.io/redirection": "pending"}},
                   {"status": {"phase": "Pending"}},
                   {"metadata.namespace": "other"},
                   {"spec": {"hostNetwork": True, "containers": TEMPLATE["spec"]["containers"]}}):
        other, signature = project(pod("b", **change))
        assert signature not in (None, base), change


def test_a_null_field_and_a_missing_one_sign_alike_without_breaking_the_share():
    project = Projector()
    bare = pod("a")
    del bare["metadata"]["annotations"]
    nulled = pod("b", **{"metadata.annotations": None})
    (a, sig_a), (b, sig_b) = project(bare), project(nulled)
    assert sig_a == sig_b and "annotations" not in a["metadata"] and b["metadata"]["annotations"] is None
    assert b["spec"] is a["spec"]


def test_only_running_pods_get_a_signature():
    project = Projector()
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r", "uid": "u"}, "spec": {}, "status": {}}
    assert project(rs)[1] is None
    declared = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert project(declared) == (declared, None)
    odd = pod("a", **{"metadata.labels": {"app": {1, 2}}})  # not JSON-shaped: never shared
    assert project(odd)[1] is None


def test_a_snapshot_of_replicas_is_one_counted_workload(tmp_path):
    header = {"kind": "MeshAuditSnapshot", "schema_version": 2, "tool": {"name": "mesh-audit", "version": "0"},
              "collection": {"context": "c", "server": "s", "counts": {}, "not_collected": [], "not_installed": []}}
    pods = [pod(n) for n in ("a", "b", "c")] + [pod("d", **{"status": {"phase": "Pending"}})]
    path = tmp_path / "snap.json"
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in [header, *pods]))
    loaded = load_paths([str(path)])
    assert [o.name for o in loaded.objects] == ["a", "b", "c", "d"]
    assert len({o.signature for o in loaded.objects}) == 2
    facts = Context(loaded.snapshot())
    counted = sorted((w.obj.name, w.count) for w in facts.workloads)
    assert counted == [("a", 3), ("d", 1)]
    assert all(facts.workload(o).obj.name == ("d" if o.name == "d" else "a") for o in loaded.objects)


def test_yaml_dump_replicas_are_recognized_too(tmp_path):
    import yaml

    path = tmp_path / "pods.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [pod("a"), pod("b")]}))
    loaded = load_paths([str(path)])
    a, b = loaded.objects
    assert a.signature == b.signature and b.raw["spec"] is a.raw["spec"]
    assert a.line < b.line


def test_signed_replicas_make_the_workloads_unsigned_pods_make(tmp_path):
    """Replicas recognized by their loader's signature skip the owner lookup: the workloads,
    owners and counts are those found by looking every pod up. Finished pods, signed alike,
    still count for nothing, and a bare pod is its own workload."""
    from auditor.model.snapshot import K8sObject, Snapshot

    done = {"status": {"phase": "Succeeded"}}
    bare = {"metadata.ownerReferences": None}
    pods = [pod(n) for n in "abc"] + [pod(n, **done) for n in "de"] + [pod(n, **bare) for n in "fg"]
    project = Projector()
    signed = [K8sObject(raw, signature=signature) for raw, signature in map(project, pods)]
    assert len({o.signature for o in signed}) == 3

    def workloads(objects):
        ctx = Context(Snapshot(objects))
        return sorted((w.obj.name, w.count, str(w.owner)) for w in ctx.workloads)

    unsigned = [K8sObject(o.raw) for o in signed]
    assert workloads(signed) == workloads(unsigned) == [
        ("a", 3, "Owner(api_version='apps/v1', kind='Deployment', namespace='shop', name='web')"),
        ("f", 1, "None"), ("g", 1, "None")]


def test_one_signature_whoever_signs(tmp_path):
    """Replicas are recognised one way: the signature a loader gives a pod as it reads it
    (from a snapshot line, a dump, a projector) is the one facts gives the same pod when it
    comes without one (a live page, a watch event, a plan's what-if), so signed and
    unsigned replicas of one template are one workload."""
    from auditor.model.snapshot import K8sObject, Snapshot, replica_signature

    path = tmp_path / "pods.json"
    path.write_bytes(orjson.dumps({"apiVersion": "v1", "kind": "List", "items": [pod("a"), pod("b"), pod("c", **{"metadata.labels": {"x": "1"}})]}))
    loaded = load_paths([str(path)]).objects
    assert [o.signature for o in loaded] == [replica_signature(o.raw) for o in loaded]
    assert loaded[0].signature == loaded[1].signature != loaded[2].signature
    assert len(loaded[0].signature) == 16  # a digest, not the pod's text, per replica
    mixed = [loaded[0], K8sObject(loaded[1].raw), loaded[2]]  # the second as a watch event would bring it
    ctx = Context(Snapshot(mixed))
    assert sorted((w.obj.name, w.count) for w in ctx.workloads) == [("a", 2), ("c", 1)]


def test_a_running_pod_and_a_declared_one_alike_are_two_workloads():
    """A uid is identity, so it is not in the signature; but it alone tells a running pod
    (no status written) from a declared one: they are not replicas of each other."""
    from auditor.model.snapshot import K8sObject, Snapshot, replica_signature

    running = pod("a")
    del running["status"]
    declared = copy.deepcopy(running)
    declared["metadata"].update(name="b", uid=None)
    assert replica_signature(running) == replica_signature(declared)
    ctx = Context(Snapshot([K8sObject(running), K8sObject(declared), K8sObject({**running, "metadata": {
        **running["metadata"], "name": "c", "uid": "uid-c"}})]))
    assert sorted((w.obj.name, w.count, w.observed) for w in ctx.workloads) == [("a", 2, True), ("b", 1, False)]
