"""The fast readers give what the general ones give: a pod decoded straight into its
projection equals the projection of the whole pod, and a JSON dump read item by item
gives the objects, lines and problems of a dump parsed whole."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.collect.jsonlist import items as json_items
from auditor.collect.decode import ProjectingReader, kind_of, project_json
from auditor.collect.files import load_paths
from auditor.model.snapshot import Projector, project

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=6)
maybe = lambda s: st.one_of(st.just(None), s, anything)  # noqa: E731  (a field of the expected shape, or not)
container = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["app", "istio-proxy", "istio-init"]), "image": scalars, "ports": anything,
    "restartPolicy": scalars, "resources": anything, "env": anything})
pod_spec = st.fixed_dictionaries({}, optional={
    "containers": st.one_of(st.lists(container, max_size=3), anything), "initContainers": st.lists(container, max_size=2),
    "hostNetwork": scalars, "serviceAccountName": scalars, "volumes": anything, "nodeName": scalars})
metadata = st.fixed_dictionaries({}, optional={
    "name": scalars, "namespace": scalars, "uid": scalars, "generateName": scalars, "resourceVersion": scalars,
    "labels": maybe(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3)),
    "annotations": anything, "ownerReferences": anything, "managedFields": anything})
pods = st.fixed_dictionaries({"kind": st.just("Pod")}, optional={
    "apiVersion": st.sampled_from(["v1", None]), "metadata": maybe(metadata), "spec": maybe(pod_spec),
    "status": maybe(st.fixed_dictionaries({}, optional={"phase": scalars, "podIP": scalars}))})
replica_sets = st.fixed_dictionaries({"kind": st.just("ReplicaSet")}, optional={
    "apiVersion": st.just("apps/v1"), "metadata": maybe(metadata), "status": anything,
    "spec": maybe(st.fixed_dictionaries({}, optional={
        "replicas": scalars, "selector": anything,
        "template": maybe(st.fixed_dictionaries({}, optional={
            "metadata": maybe(st.fixed_dictionaries({}, optional={"labels": anything, "annotations": anything,
                                                                  "name": scalars})),
            "spec": maybe(pod_spec)}))}))})


@settings(max_examples=400, deadline=None)
@given(st.one_of(pods, replica_sets))
def test_a_pod_decoded_into_its_projection_equals_the_projection_of_the_pod(obj):
    data = orjson.dumps(obj)
    fast = project_json(data)
    if fast is None:  # the general path takes it
        return
    assert orjson.dumps(fast) == orjson.dumps(project(orjson.loads(data)))  # key order included


@settings(max_examples=200, deadline=None)
@given(pods)
def test_a_list_item_without_kind_takes_the_lists(obj):
    """Items of a PodList carry no kind or apiVersion: the collector restores the list's."""
    item = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    fast = project_json(orjson.dumps(item), "Pod", "v1")
    if fast is None:
        return
    assert orjson.dumps(fast) == orjson.dumps(project({**item, "apiVersion": "v1", "kind": "Pod"}))


words = st.text(max_size=3)
identity = st.fixed_dictionaries({}, optional={"name": st.one_of(words, scalars), "uid": scalars, "nodeName": scalars,
                                              "generateName": st.one_of(words, scalars), "podIP": scalars,
                                              "phase": scalars, "app": words})  # the last two: not replicas
# Pods as a cluster holds them (each field of its type), which the fast paths read.
running_pods = st.fixed_dictionaries({"apiVersion": st.just("v1"), "kind": st.just("Pod"), "metadata": st.fixed_dictionaries(
    {"name": words}, optional={"generateName": words, "namespace": words, "uid": words,
                               "labels": st.dictionaries(words, words, max_size=2), "annotations": st.dictionaries(words, words, max_size=2),
                               "ownerReferences": anything})}, optional={
    "spec": pod_spec, "status": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"phase": scalars, "podIP": scalars}))})


def _reference(lines: list[bytes], *listed) -> list:
    """What reading each line on its own and adopting it gives. `listed`: the kind and
    apiVersion of a list whose items carry none."""
    projector, out = Projector(), []
    for line in lines:
        projected = project_json(line, *listed)
        out.append(None if projected is None else projector.adopt(projected))
    return out


def _read(lines: list[bytes], *listed) -> list:
    reader = ProjectingReader(Projector())
    return [None if item is None else (item.raw, item.signature) for item in (reader(line, *listed) for line in lines)]


def _as_read(objects: list) -> list:
    return [None if o is None else (orjson.dumps(o[0]), o[1]) for o in objects]


@settings(max_examples=300, deadline=None)
@given(st.one_of(running_pods, pods), st.lists(identity, min_size=1, max_size=4),
       st.lists(st.one_of(running_pods, pods, replica_sets), max_size=2))
def test_replicas_read_from_their_bytes_equal_replicas_adopted_one_by_one(base, identities, others):
    """Pods that differ from one read before only in identity and dropped fields, read
    as replicas of it, give what projecting and adopting each pod gives: values, key
    order, signatures. (So do pods that differ in a phase or a label: not replicas.)"""
    lines = []
    for i, changes in enumerate(identities):
        pod = json.loads(json.dumps(base))
        meta, spec, status = pod.get("metadata"), pod.get("spec"), pod.get("status")
        for key in ("name", "uid", "generateName"):
            if key in changes and isinstance(meta, dict):
                meta[key] = changes[key]
        if "nodeName" in changes and isinstance(spec, dict):
            spec["nodeName"] = changes["nodeName"]
        for key in ("podIP", "phase"):
            if key in changes and isinstance(status, dict):
                status[key] = changes[key]
        if "app" in changes and isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
            meta["labels"]["app"] = changes["app"]
        lines.append(orjson.dumps(pod))
        if i < len(others):
            lines.append(orjson.dumps(others[i]))
    assert _as_read(_read(lines)) == _as_read(_reference(lines))
    items = [orjson.dumps({k: v for k, v in orjson.loads(line).items() if k not in ("kind", "apiVersion")})
             for line in lines if orjson.loads(line).get("kind") == "Pod"]  # a PodList's items, as the API serves them
    assert _as_read(_read(items, "Pod", "v1")) == _as_read(_reference(items, "Pod", "v1"))


def test_replicas_share_their_template_and_keep_their_own_identity():
    def pod(name, env="x", **status):
        return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "labels": {"app": "a"}},
                             "spec": {"nodeName": name, "containers": [{"name": "app", "env": [{"name": env}]}]},
                             "status": {"phase": "Running", "podIP": name, **status}})

    reader = ProjectingReader(Projector())
    first, twin, other_env, pending = (reader(line) for line in (pod("a"), pod("b"), pod("c", "y"), pod("d", phase="Pending")))
    assert twin.raw["metadata"] == {"name": "b", "namespace": "ns", "uid": "u-b", "labels": {"app": "a"}}
    assert twin.raw["spec"] is first.raw["spec"] and twin.raw["metadata"]["labels"] is first.raw["metadata"]["labels"]
    assert twin.signature is first.signature
    assert len(reader.templates) == 3  # the env is not read, but its bytes differ: adopted the general way
    assert other_env.signature == first.signature and other_env.raw["spec"] is first.raw["spec"]
    assert pending.signature != first.signature and pending.raw["status"] == {"phase": "Pending"}


def test_what_the_fast_path_leaves_to_the_general_one():
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    assert project_json(orjson.dumps(manifest)) is None  # declared, not running: never projected
    assert project_json(orjson.dumps({**manifest, "status": {}, "metadata": "p"})) is None  # odd metadata
    assert project_json(b'{"apiVersion":"v1","kind":"Service"}') is None
    assert kind_of(b'{"apiVersion": "v1", "kind": "Pod", "metadata": {}}') == "Pod"
    assert kind_of(b'{"metadata": {"ownerReferences": [{"kind": "ReplicaSet"}]}, "kind": "Pod"}') == "ReplicaSet"
    deep = b'{"apiVersion":"v1","kind":"Pod","status":{},"metadata":{"annotations":' + b"[" * 3000 + b"]" * 3000 + b"}}"
    assert project_json(deep) is None


def _items(count: int) -> list[dict]:
    out = []
    for i in range(count):
        out.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "shop", "uid": str(i),
                                                                    "labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "app", "image": "x", "env": [{"name": "A", "value": "{["}]}]},
                    "status": {"phase": "Running"}})
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "shop"},
                    "data": {"brace": "}{", "quote": 'say "items": ['}})
    return out


def test_dump_items_lines_and_objects_match_the_whole_document_path(tmp_path):
    for name, text in (("indented.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": _items(5)}, indent=4)),
                       ("compact.json", json.dumps({"kind": "PodList", "items": _items(3)})),
                       ("array.json", json.dumps(_items(2), indent=2))):
        data = text.encode()
        raws = json_items.raw_items(data)
        assert raws is not None, name
        streamed = json_items.items_in_shares(data, raws, 1, Projector())
        assert [line for _, line, *_ in streamed] == json_items.json_item_lines(data)
        whole = orjson.loads(data)
        whole = whole if isinstance(whole, list) else whole["items"]
        assert [obj["metadata"]["name"] for _, _, obj, _, _ in streamed] == [o["metadata"]["name"] for o in whole]
        assert [projected for _, _, _, projected, _ in streamed] == [o["kind"] == "Pod" for o in whole]


def test_documents_that_are_not_lists_or_not_json_take_the_general_path(tmp_path):
    assert json_items.raw_items(b'{"kind": "Namespace", "items": []}') is None
    assert json_items.raw_items(b'{"kind": "List", "items": [') is None
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod",}]}')
    result = load_paths([str(bad)])
    assert [str(e) for e in result.errors] == [f"{bad}:1: invalid JSON: trailing comma is not allowed"]
    twice = tmp_path / "twice.json"
    twice.write_text('{"kind": "List", "items": [\n{"apiVersion": "v1", "kind": "Namespace",\n'
                     ' "metadata": {"name": "a", "name": "b"}}]}')
    assert "appears twice" in str(load_paths([str(twice)]).errors[0])


def test_a_dump_item_with_a_bad_name_is_an_error_at_its_line(tmp_path):
    items = _items(1)
    items[0]["metadata"]["name"] = 7
    path = tmp_path / "dump.json"
    path.write_text(json.dumps({"kind": "List", "items": items}, indent=4))
    result = load_paths([str(path)])
    assert [str(e) for e in result.errors] == [
        f"{path}:4: Pod: metadata.name is the number 7, not a string; kubectl rejects it: quote the value"]
    assert [o.name for o in result.objects] == ["c0"]


def test_a_large_dump_read_through_a_mapping_gives_what_reading_it_gives(tmp_path, monkeypatch):
    from auditor.collect.jsonlist import mapped as mapped_dump

    path = tmp_path / "dump.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": _items(300)}, indent=4))
    read = load_paths([str(path)])
    monkeypatch.setattr(mapped_dump, "MAPPED_MIN_BYTES", 0)
    mapped = load_paths([str(path)])
    assert [(o.raw, o.index) for o in mapped.objects] == [(o.raw, o.index) for o in read.objects]
    snapshot_read, snapshot_mapped = read.snapshot(), mapped.snapshot()
    assert [snapshot_mapped.location(o) for o in snapshot_mapped] == [snapshot_read.location(o) for o in snapshot_read]
    assert mapped.object_span(str(path), snapshot_mapped.location(mapped.objects[0])[1])[0] > 0


def test_an_item_only_orjson_rejects_leaves_nothing_of_the_item_by_item_reading(tmp_path):
    """msgspec splits a List whose item holds a string that is not UTF-8; orjson refuses
    that item, and the whole document is then read the general way, which says where.
    What the item-by-item reading had added (a warning for an item before it) is forgotten."""
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"kind": "List", "items": [\n {"name": "not an object"},\n'
                     b' {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},\n'
                     b'  "data": {"n": "\xff"}}]}\n')
    result = load_paths([str(path)])
    assert result.warnings == [] and result.objects == []
    [error] = [str(e) for e in result.errors]
    assert error.startswith(f"{path}:4: invalid JSON: str is not valid UTF-8")
