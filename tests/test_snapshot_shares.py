"""A large snapshot read by several processes gives exactly what one reader gives: the same
objects in the same order, replicas recognized, the same report; and a file that is not
whole and well-formed is read again by the single reader, which says what is wrong."""

from __future__ import annotations

import sys

import orjson
import pytest

from auditor import api
from auditor.collect.snapshot import shares as snapshot_shares
from auditor.collect.cluster.lister import strip_bookkeeping
from auditor.collect.collection import Collection
from auditor.collect.files import load_paths
from auditor.collect.snapshot.file import write_snapshot
from auditor.reporters import render
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from generate import generate  # noqa: E402


@pytest.fixture(scope="module")
def cluster_file(tmp_path_factory):
    cluster = generate(400, seed=3)
    objects = [strip_bookkeeping(dict(o)) for o in cluster["declared"] + cluster["observed"]]
    path = tmp_path_factory.mktemp("shares") / "snapshot.json"
    write_snapshot(Collection(objects=objects, context="bench", server="https://127.0.0.1", server_version="v1.31.4"),
                   str(path))
    return path


@pytest.fixture
def in_shares(monkeypatch, mocker):
    """Any snapshot is large enough to share; the spy says whether the shares were kept."""
    monkeypatch.setattr(snapshot_shares, "PARALLEL_MIN_BYTES", 0)
    return mocker.spy(snapshot_shares, "load_in_shares")


def loaded(path, jobs):
    result = load_paths([str(path)], jobs=jobs)
    return ([(o.key, o.raw, o.signature) for o in result.objects], [str(e) for e in result.errors],
            [str(w) for w in result.warnings])


@pytest.mark.parametrize("jobs", [2, 3])
def test_shares_read_what_one_reader_reads(cluster_file, in_shares, mocker, jobs):
    unpacked = mocker.spy(snapshot_shares.marshal, "loads")
    alone = loaded(cluster_file, 1)
    shared = loaded(cluster_file, jobs)
    assert in_shares.spy_return is True
    assert unpacked.call_count == jobs - 1  # each child's objects came back packed
    assert shared == alone
    objects, errors, _ = shared
    assert errors == [] and len(objects) > 500
    signatures = [signature for (gk, _, _), _, signature in objects if gk == "Pod"]
    assert len(set(signatures)) < len(signatures) / 5  # replicas recognized across the shares


def test_a_scan_in_shares_reports_what_one_process_reports(cluster_file, in_shares):
    reports = []
    for jobs in (1, 2):
        settings = api.Settings(jobs=jobs)
        reports.append(render("sarif", api.audit(api.load(snapshot=str(cluster_file), jobs=jobs), settings)))
    assert in_shares.spy_return is True
    assert reports[0] == reports[1]


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("damage", ["blank line", "invalid JSON", "not an object", "not a Kubernetes object",
                                    "end marker miscounts", "cut before the end marker", "cut mid-line",
                                    "more after the end marker"])
@pytest.mark.parametrize("share", [0, 1])
def test_a_damaged_file_is_read_again_by_one_reader(cluster_file, in_shares, tmp_path, damage, share):
    lines = _lines(cluster_file)
    late = len(lines) // 4 if share == 0 else len(lines) * 3 // 4  # in this process's share, or the child's
    if damage == "blank line":
        lines.insert(late, b"\n")
    elif damage == "invalid JSON":
        lines[late] = lines[late][:40] + b"\n"
    elif damage == "not an object":
        lines[late] = b"[1, 2]\n"
    elif damage == "not a Kubernetes object":
        lines[late] = b'{"name": "x"}\n'
    elif damage == "end marker miscounts":
        lines[-1] = orjson.dumps({"kind": "MeshAuditSnapshotEnd", "objects": len(lines)}) + b"\n"
    elif damage == "cut before the end marker":
        lines = lines[:-1]
    elif damage == "cut mid-line":
        lines = lines[:late] + [lines[late][:100]]
    else:
        lines.append(lines[1])
    path = tmp_path / "damaged.json"
    path.write_bytes(b"".join(lines))
    alone = loaded(path, 1)
    shared = loaded(path, 2)
    assert in_shares.spy_return is False
    assert shared == alone
    if damage == "blank line":  # the single reader skips a blank line
        assert alone[1] == [] and len(alone[0]) == len(lines) - 3
    elif damage in ("not an object", "not a Kubernetes object"):
        assert alone[1] == [] and alone[2] == [f"{path}: skipped: not a Kubernetes object (needs apiVersion and kind)"]
    else:
        assert alone[1] and alone[1][0].startswith(f"{path}:")


def test_small_and_compressed_snapshots_are_read_by_one_reader(cluster_file, mocker, tmp_path):
    import gzip

    spy = mocker.spy(snapshot_shares, "load_in_shares")
    loaded(cluster_file, 2)  # far below the size that pays for a second reader
    assert spy.spy_return is False
    mocker.patch.object(snapshot_shares, "PARALLEL_MIN_BYTES", 0)
    packed = tmp_path / "snapshot.json.gz"
    packed.write_bytes(gzip.compress(cluster_file.read_bytes()))
    assert loaded(packed, 2) == loaded(cluster_file, 1)
    assert spy.spy_return is False
