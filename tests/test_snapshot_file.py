"""Snapshot files: a file cut anywhere is an error, never a smaller cluster; the header is
checked against its schema; older versions are still read."""

from __future__ import annotations

import gzip

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from auditor.cli import cli
from auditor.collect.collection import Collection
from auditor.collect.files import load_paths
from auditor.collect.snapshot.file import write_snapshot
from auditor.core.coverage import Gap

OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "uid": "1", "labels": {"istio-injection": "enabled"}}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop", "uid": "2"},
     "spec": {"template": {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": [{"name": "cart"}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart", "namespace": "shop", "uid": "3"},
     "spec": {"selector": {"app": "cart"}}},
]


def snapshot(tmp_path, name="snap.json", objects=OBJECTS, **collection) -> bytes:
    path = tmp_path / name
    write_snapshot(Collection(objects=list(objects), context="c", server="https://s", counts={"namespaces": 1},
                              **collection), str(path))
    return path.read_bytes()


def load(path):
    result = load_paths([str(path)])
    return [o.name for o in result.objects], [str(e) for e in result.errors]


def test_a_written_snapshot_has_a_header_objects_and_an_end_marker(tmp_path):
    lines = [orjson.loads(line) for line in snapshot(tmp_path).splitlines()]
    head, *objects, end = lines
    assert head["schema_version"] == 3 and head["objects"] == 3 and len(objects) == 3
    assert end == {"kind": "MeshAuditSnapshotEnd", "objects": 3}
    assert load(tmp_path / "snap.json") == (["shop", "cart", "cart"], [])


@pytest.mark.parametrize("name", ["snap.json", "snap.json.gz"])
def test_a_snapshot_cut_at_any_byte_is_an_error(tmp_path, name):
    """Every prefix of a small snapshot: either every object, or an error naming the file
    (a prefix that cuts even the header is not a snapshot at all: also an error). Only the
    final newline may go; an empty file is no input at all (see test_empty_input)."""
    whole = snapshot(tmp_path, name)
    cut = tmp_path / f"cut-{name}"
    last = len(whole) - 1 if name.endswith(".json") else len(whole)
    for end in range(1, last):
        cut.write_bytes(whole[:end])
        names, errors = load(cut)
        assert errors, f"cut at byte {end} of {len(whole)} passed as {names}"
        assert errors[0].startswith(str(cut))
    cut.write_bytes(whole)
    assert load(cut) == (["shop", "cart", "cart"], [])


def test_cut_messages_say_how_much_was_read(tmp_path):
    whole = snapshot(tmp_path)
    lines = whole.splitlines(keepends=True)
    (tmp_path / "at-line.json").write_bytes(b"".join(lines[:3]))  # header and two objects, whole lines
    (tmp_path / "mid-line.json").write_bytes(b"".join(lines[:3]) + lines[3][:20])
    assert load(tmp_path / "at-line.json")[1] == [
        f"{tmp_path / 'at-line.json'}:3: the snapshot is cut short after 2 of 3 objects; it cannot be audited as a whole: "
        "copy it again or take a new snapshot"]
    assert load(tmp_path / "mid-line.json")[1][0].startswith(f"{tmp_path / 'mid-line.json'}:4: the snapshot is cut short after 2 of 3")
    gz = gzip.compress(whole, mtime=0)
    (tmp_path / "cut.json.gz").write_bytes(gz[: len(gz) - 20])
    [message] = load(tmp_path / "cut.json.gz")[1]
    assert "the snapshot is cut short after" in message and "Compressed file ended before the end-of-stream marker" in message


def test_a_cut_snapshot_fails_the_scan_instead_of_passing(tmp_path):
    whole = snapshot(tmp_path)
    (tmp_path / "cut.json").write_bytes(b"".join(whole.splitlines(keepends=True)[:2]))
    result = CliRunner().invoke(cli, ["scan", "--snapshot", str(tmp_path / "cut.json"), "-o", "json"])
    assert result.exit_code == 2
    assert "the snapshot is cut short after 1 of 3 objects" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_gzip_member_boundary_cut_is_caught_too(tmp_path):
    """Snapshots of live clusters are gzip members page by page: a copy that stops between
    two members reads as valid gzip, so only the end marker tells."""
    head, *rest = snapshot(tmp_path).splitlines(keepends=True)
    members = [gzip.compress(head, mtime=0)] + [gzip.compress(line, mtime=0) for line in rest]
    (tmp_path / "members.json.gz").write_bytes(b"".join(members[:-1]))
    [message] = load(tmp_path / "members.json.gz")[1]
    assert "the snapshot is cut short after 3 of 3 objects" in message


@pytest.mark.parametrize("change, message", [
    ({"namespaces": 5}, "'collection.namespaces' must be an array or a null, not an integer"),
    ({"namespaces": "shop"}, "'collection.namespaces' must be an array or a null, not a string"),
    ({"counts": {"pods": "many"}}, "'collection.counts.pods' must be an integer, not a string"),
    ({"not_collected": [{"resource": "pods"}]}, "'reason' is required"),
])
def test_the_header_is_checked_against_the_schema(tmp_path, change, message):
    lines = snapshot(tmp_path).splitlines(keepends=True)
    head = orjson.loads(lines[0])
    head["collection"].update(change)
    (tmp_path / "bad.json").write_bytes(orjson.dumps(head) + b"\n" + b"".join(lines[1:]))
    names, errors = load(tmp_path / "bad.json")
    assert errors == [f"{tmp_path / 'bad.json'}:1: snapshot header: {message}"]


def test_more_after_the_end_marker_is_an_error(tmp_path):
    whole = snapshot(tmp_path)
    (tmp_path / "more.json").write_bytes(whole + orjson.dumps(OBJECTS[0]) + b"\n")
    assert load(tmp_path / "more.json")[1] == [f"{tmp_path / 'more.json'}:6: there is more after the snapshot's end marker"]


def test_version_2_snapshots_are_still_read(tmp_path):
    head = {"kind": "MeshAuditSnapshot", "schema_version": 2, "tool": {"name": "mesh-audit", "version": "0.1.0"},
            "collection": {"context": "c", "server": "s", "counts": {}, "not_collected": [Gap("pods", "forbidden").to_dict()],
                           "not_installed": []}}
    (tmp_path / "v2.json").write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in [head, *OBJECTS]))
    result = load_paths([str(tmp_path / "v2.json")])
    assert [o.name for o in result.objects] == ["shop", "cart", "cart"] and result.errors == []
    assert [g.resource for g in result.snapshots[0][1].not_collected] == ["pods"]


def _schema_validates(header: dict) -> bool:
    import jsonschema

    from auditor.schemas import load_schema

    return jsonschema.Draft202012Validator(load_schema("snapshot.schema.json")).is_valid(header)


_text = st.text(max_size=3)
_maybe_text = st.one_of(st.none(), _text)
_name = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
_gap = st.fixed_dictionaries({"resource": _text, "reason": _text}, optional={
    "namespace": _maybe_text, "name": _maybe_text, "status": st.one_of(st.none(), st.integers(0, 600))})
# Headers the schema accepts, each of its properties present or not.
_headers = st.fixed_dictionaries({
    "kind": st.just("MeshAuditSnapshot"), "schema_version": st.integers(1, 9),
    "collection": st.fixed_dictionaries({}, optional={
        "context": _maybe_text, "server": _maybe_text, "server_version": _maybe_text, "collected_at": _maybe_text,
        "namespaces": st.one_of(st.none(), st.lists(_text, max_size=2)),
        "counts": st.dictionaries(_text, st.integers(0, 9), max_size=2), "not_collected": st.lists(_gap, max_size=2),
        "not_installed": st.lists(_text, max_size=2)})}, optional={
    "tool": st.fixed_dictionaries({}, optional={"name": _text, "version": _text}), "objects": st.integers(0, 9),
    "cluster": _name, "clusters": st.lists(_name, min_size=1, max_size=2), "extra": _text})
def _wrong(value) -> list:
    """Values that break what the schema could ask of this one: its type, a bound, a
    pattern, a minimum length."""
    if isinstance(value, bool) or value is None:
        return [1, "x", [], {}, not value if isinstance(value, bool) else False]
    if isinstance(value, int):
        return [-1, 1.5, "1", None, True]
    if isinstance(value, str):
        return ["", "-x", "x" * 64, "MeshAuditSnapshotX", 1, None]
    if isinstance(value, list):
        return [[], [1], [None], None, "x"]
    return [{}, {"x": -1}, None, [], "x"]


def _places(value):
    """(container, key) of every value inside a header."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in list(items):
        yield value, key
        yield from _places(inner)


@settings(max_examples=120, deadline=None)
@given(_headers)
def test_a_header_the_quick_check_accepts_the_schema_accepts(header):
    """The header types accept what mesh-audit writes, and only ever spare the schema a
    header it would accept: with any one value changed or dropped, either both refuse
    the header or the schema accepts it."""
    import copy

    from auditor.collect.snapshot.header import plainly_valid

    assert plainly_valid(header) and _schema_validates(header), header
    for n, (container, key) in enumerate(_places(header)):
        for change in ["drop", *_wrong(container[key])]:
            changed = copy.deepcopy(header)
            place, place_key = list(_places(changed))[n]
            if change == "drop":
                if not isinstance(place, dict):
                    continue
                del place[place_key]
            else:
                place[place_key] = change
            if plainly_valid(changed):
                assert _schema_validates(changed), changed


def test_the_quick_check_knows_every_property_the_schema_names():
    """Header types and schema name the same properties, so a change to one shows here."""
    import msgspec

    from auditor.collect.snapshot import header as h
    from auditor.schemas import load_schema

    schema = load_schema("snapshot.schema.json")
    fields = lambda cls: {f.name for f in msgspec.structs.fields(cls)}  # noqa: E731
    assert fields(h.HeaderFields) == set(schema["properties"])
    assert fields(h._Collection) == set(schema["properties"]["collection"]["properties"])
    assert fields(h._Tool) == set(schema["properties"]["tool"]["properties"])
    assert fields(h._Gap) == set(schema["properties"]["collection"]["properties"]["not_collected"]["items"]["properties"])


def test_a_header_mesh_audit_writes_is_read_without_the_schema(tmp_path, mocker):
    import auditor.collect.snapshot.file as snapshot_file

    snapshot(tmp_path, not_collected=[Gap("pods", "forbidden", status=403)], not_installed=["telemetries"])
    check = mocker.spy(snapshot_file, "_check_header")
    names, errors = load(tmp_path / "snap.json")
    assert errors == [] and names == ["shop", "cart", "cart"] and check.call_count == 0
