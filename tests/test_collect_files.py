"""Loading manifests and dumps: documents, lists, lines, observed state and bad input."""

from __future__ import annotations

import io
import json

import pytest

from auditor.collect.files import load_paths
from auditor.collect.jsonlist.items import json_item_lines
from auditor.core.errors import UsageError

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: apps\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_multi_document_yaml_keeps_each_start_line(tmp_path):
    path = write(tmp_path, "a.yaml", POD.format(name="one") + "---\n" + POD.format(name="two") + "---\n")
    result = load_paths([str(path)])
    assert [(o.name, o.line) for o in result.objects] == [("one", 1), ("two", 7)]
    assert result.warnings == [] and result.errors == []


def test_yaml_list_items_get_their_own_lines(tmp_path):
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n"
    result = load_paths([str(write(tmp_path, "list.yaml", text))])
    assert [(o.kind, o.name, o.line) for o in result.objects] == [("Service", "a", 4), ("Service", "b", 7)]


def test_json_dump_items_resolve_lines_lazily(tmp_path):
    doc = {"apiVersion": "v1", "kind": "PodList", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "x", "uid": "1"}, "status": {}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2", "namespace": "x", "uid": "2", "annotations": {"a": "{[}"}}},
    ]}
    path = write(tmp_path, "dump.json", json.dumps(doc, indent=4))
    result = load_paths([str(path)])
    snap = result.snapshot()
    objs = sorted(snap, key=lambda o: o.name)
    assert [o.line for o in objs] == [None, None]  # not computed at load time
    lines = [snap.location(o)[1] for o in objs]
    text = path.read_text().splitlines()
    assert [text[n - 1].strip() for n in lines] == ["{", "{"]
    assert lines[0] < lines[1]
    assert all(o.observed for o in objs)


def test_json_item_lines_skips_braces_in_strings():
    data = b'{"kind": "List", "note": "{[", "items": [\n {"a": "}"},\n\n {"b": [1, {"c": 2}]}\n]}'
    assert json_item_lines(data) == [2, 4]


def test_observed_versus_declared(tmp_path):
    text = POD.format(name="declared") + "---\n" + POD.format(name="observed") + "  uid: abc\n---\n" + POD.format(name="status") + "status: {}\n"
    objs = {o.name: o.observed for o in load_paths([str(write(tmp_path, "a.yaml", text))]).objects}
    assert objs == {"declared": False, "observed": True, "status": True}


def test_directories_are_recursive_and_sorted(tmp_path):
    write(tmp_path, "b/z.yml", POD.format(name="z"))
    write(tmp_path, "a.json", json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}))
    write(tmp_path, "b/notes.txt", "not yaml: [")
    result = load_paths([str(tmp_path)])
    assert [o.name for o in result.objects] == ["j", "z"]


def test_stdin(tmp_path):
    result = load_paths(["-"], stdin=io.BytesIO(POD.format(name="s").encode()))
    assert [(o.name, o.file, o.line) for o in result.objects] == [("s", "<stdin>", 1)]
    result = load_paths(["-"], stdin=io.BytesIO(b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}'))
    assert [o.name for o in result.objects] == ["j"]


def test_non_kubernetes_documents_are_skipped_with_a_warning(tmp_path):
    path = write(tmp_path, "a.yaml", "just: data\n---\n- a\n- b\n---\n" + POD.format(name="ok"))
    result = load_paths([str(path)])
    assert [o.name for o in result.objects] == ["ok"]
    assert [str(w) for w in result.warnings] == [
        f"{path}:1: skipped: not a Kubernetes object (needs apiVersion and kind)",
        f"{path}:3: skipped: not a Kubernetes object (needs apiVersion and kind)",
        f"{path}:3: skipped: not a Kubernetes object (needs apiVersion and kind)",
    ]


def test_malformed_yaml_names_file_and_line_and_keeps_other_files(tmp_path):
    good = write(tmp_path, "good.yaml", POD.format(name="kept"))
    bad = write(tmp_path, "bad.yaml", POD.format(name="first") + "---\nkind: Pod\nmetadata: {name: [unclosed\n")
    result = load_paths([str(bad), str(good)])
    assert [str(e) for e in result.errors] == [f"{bad}:9: invalid YAML: did not find expected ',' or ']'"]
    assert {o.name for o in result.objects} == {"first", "kept"}


def test_invalid_json_and_utf8(tmp_path):
    bad_json = write(tmp_path, "a.json", '{\n  "kind": "Pod",\n  oops\n}')
    bad_utf8 = tmp_path / "b.yaml"
    bad_utf8.write_bytes(b"kind: Pod\nname: \xff\n")
    errors = [str(e) for e in load_paths([str(bad_json), str(bad_utf8)]).errors]
    assert errors[0].startswith(f"{bad_json}:3: invalid JSON")
    assert errors[1] == f"{bad_utf8}:2: not valid UTF-8 (byte 16)"


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file or directory"):
        load_paths([str(tmp_path / "nope.yaml")])


def test_timestamps_stay_strings(tmp_path):
    path = write(tmp_path, "a.yaml", POD.format(name="t") + "  annotations:\n    when: 2024-01-02\n")
    assert load_paths([str(path)]).objects[0].annotations["when"] == "2024-01-02"


def test_duplicates_warn_and_keep_the_later_one(tmp_path):
    path = write(tmp_path, "a.yaml", POD.format(name="d") + "---\n" + POD.format(name="d") + "  labels: {v: '2'}\n")
    result = load_paths([str(path)])
    snap = result.snapshot()
    assert [o.labels for o in snap] == [{"v": "2"}]
    assert "is also defined at" in str(result.warnings[0])


def test_symlink_loop_terminates(tmp_path):
    write(tmp_path, "d/a.yaml", POD.format(name="a"))
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    assert [o.name for o in load_paths([str(tmp_path / "d")]).objects] == ["a"]
