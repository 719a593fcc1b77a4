"""Forked shares of the rule evaluation: same report as one process, and no child left
behind when one fails or the run is interrupted."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from auditor import engine
from auditor.core import workers
from auditor.cli import cli
from auditor.collect.files import load_paths
from conftest import audit, FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "bench"))

from generate import write  # noqa: E402

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="children are forked on Linux only")


@pytest.fixture
def forking(monkeypatch):
    """Fork even if a thread of another test is still winding down, and for tiny inputs."""
    monkeypatch.setattr(workers, "fork_safe", lambda: True)
    monkeypatch.setattr(engine, "PARALLEL_MIN_SUBJECTS", 0)


def test_split_gives_contiguous_shares_of_equal_weight():
    assert workers.split([1] * 10, 2) == [range(0, 5), range(5, 10)]
    assert workers.split([8, 1, 1, 1, 1, 1, 1, 1, 1], 2) == [range(0, 1), range(1, 9)]
    assert workers.split([1, 1, 1], 3) == [range(0, 1), range(1, 2), range(2, 3)]
    assert workers.split([5], 3) == [range(0, 1), range(1, 1), range(1, 1)]
    assert workers.split([], 2) == [range(0, 0), range(0, 0)]
    shares = workers.split([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], 3)
    assert [i for share in shares for i in share] == list(range(10))


def test_auto_jobs_is_capped():
    assert 1 <= workers.auto_jobs() <= workers.MAX_AUTO_JOBS


@linux_only
def test_children_do_their_shares_in_order(forking):
    results = workers.map_shares(lambda share: (os.getpid(), [x * 2 for x in share]), [range(0, 2), range(2, 4), range(4, 5)])
    assert [r[1] for r in results] == [[0, 2], [4, 6], [8]]
    assert results[0][0] == os.getpid()
    assert len({r[0] for r in results}) == 3  # two children besides this process


@linux_only
def test_as_completed_runs_every_item_in_a_child_and_yields_each_as_it_finishes(forking):
    parent = os.getpid()

    def work(item):
        if item == 0:
            time.sleep(1.0)  # the first item finishes last
        return os.getpid(), item * 10

    got = list(workers.as_completed(work, [0, 1, 2]))
    assert sorted((i, value) for i, (_, value) in got) == [(0, 0), (1, 10), (2, 20)]
    assert got[-1][0] == 0  # yielded when it finished, not in order
    pids = {pid for _, (pid, _) in got}
    assert parent not in pids and len(pids) == 3


@linux_only
@pytest.mark.parametrize("how", ["raise", "exit", "kill"])
def test_as_completed_does_a_failed_childs_item_here(forking, how):
    parent = os.getpid()

    def work(item):
        if item == 1 and os.getpid() != parent:
            if how == "raise":
                raise RuntimeError("child failure")
            if how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid(), item

    got = dict(workers.as_completed(work, [0, 1, 2]))
    assert {i: value for i, (_, value) in got.items()} == {0: 0, 1: 1, 2: 2}
    assert got[1][0] == parent and got[0][0] != parent


@linux_only
@pytest.mark.parametrize("jobs", [2, 3])
def test_a_json_dump_decoded_in_shares_equals_one_process(forking, monkeypatch, mocker, tmp_path, jobs):
    """Items, byte offsets, lines (each share counting its own stretch), errors and replica
    signatures: the same as decoding the dump item after item."""
    import json

    from auditor.collect.jsonlist import items as json_items, mapped as mapped_dump
    from auditor.model.snapshot import Projector

    write(300, tmp_path / "gen")
    dump = json.loads((tmp_path / "gen" / "dump.json").read_text())
    dump["items"].insert(7, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 5, "namespace": "shop"},
                             "spec": {"containers": []}, "status": {"phase": "Running"}})  # an error, at its line
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump, indent=4))
    data = path.read_bytes()
    raws = json_items.raw_items(data)
    alone = json_items.items_in_shares(data, raws, 1, Projector())
    shared = json_items.items_in_shares(data, raws, jobs, Projector())
    assert shared == alone
    assert len({at for at, *_ in shared}) == len(shared) and shared[-1][1] > 10000  # lines of every share

    def loaded(jobs):
        result = load_paths([str(path)], jobs=jobs)
        snapshot = result.snapshot()
        return ([(o.key, o.raw, o.line, o.index, o.signature, snapshot.location(o)) for o in snapshot],
                [str(e) for e in result.errors])

    monkeypatch.setattr(mapped_dump, "PARALLEL_JSON_MIN_BYTES", 0)
    shared_out = mocker.spy(json_items, "map_shares")
    forked = loaded(jobs)
    assert len(shared_out.call_args.args[1]) == jobs
    assert forked == loaded(1)
    assert len(shared_out.call_args.args[1]) == 1  # --jobs 1: one process, however large the dump
    assert len(forked[0]) > 400 and forked[1] == [f"{path}:{_line_of(data, 7)}: Pod: metadata.name is the number 5, not a string; kubectl rejects it: quote the value"]


def _line_of(data: bytes, item: int) -> int:
    """The line where the dump's item number `item` starts (kubectl-style indentation)."""
    lines = data.decode().splitlines()
    starts = [n for n, text in enumerate(lines, start=1) if text == "        {"]
    return starts[item]


def test_as_completed_without_forking_runs_in_order_here(monkeypatch):
    monkeypatch.setattr(workers, "fork_safe", lambda: False)
    assert list(workers.as_completed(lambda item: (os.getpid(), item), ["a", "b"])) == \
        [(0, (os.getpid(), "a")), (1, (os.getpid(), "b"))]


@linux_only
@pytest.mark.parametrize("how", ["raise", "exit", "kill"])
def test_a_failed_child_share_is_done_here(forking, how):
    parent = os.getpid()

    def work(share):
        if os.getpid() != parent:
            if how == "raise":
                raise RuntimeError("child failed")
            if how == "exit":
                os._exit(0)  # leaves without writing a result
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid(), sum(share)

    assert workers.map_shares(work, [range(0, 3), range(3, 6)]) == [(parent, 3), (parent, 12)]


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not workers.fork_safe()
        parent = os.getpid()
        assert workers.map_shares(lambda share: os.getpid(), [range(1), range(1)]) == [parent, parent]
    finally:
        stop.set()
        thread.join()


@linux_only
def test_interrupt_kills_and_reaps_children(forking, monkeypatch):
    started = []
    fork = workers._fork

    def recording_fork(work, share):
        child = fork(work, share)
        started.append(child[0])
        return child

    monkeypatch.setattr(workers, "_fork", recording_fork)
    parent = os.getpid()

    def work(share):
        if os.getpid() != parent:
            time.sleep(60)
        raise KeyboardInterrupt

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        workers.map_shares(work, [range(1), range(1)])
    assert time.monotonic() - began < 10
    assert len(started) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], os.WNOHANG)  # already reaped: no zombie, no orphan


def single_cluster_fixtures() -> list[str]:
    """The rule fixtures of one cluster (those of several clusters hold each cluster's
    istio-system and shop, which would replace the others' in one input)."""
    return [str(p) for p in sorted((FIXTURES / "rules").glob("*/*.yaml")) if "# cluster:" not in p.read_text()]


def _same_report(snapshot, rules, **kwargs):
    one = audit(snapshot, rules, jobs=1, **kwargs)
    for jobs in (2, 3):
        many = audit(snapshot, rules, jobs=jobs, **kwargs)
        assert [(f.rule, f.severity, f.message, str(f.object), f.location, f.pods) for f in many.findings] == \
               [(f.rule, f.severity, f.message, str(f.object), f.location, f.pods) for f in one.findings]
        assert many.errors == one.errors and many.objects == one.objects
    return one


@linux_only
def test_forked_audit_of_a_generated_cluster_equals_one_process(forking, rules, tmp_path):
    write(600, tmp_path)
    report = _same_report(load_paths([str(tmp_path / "snapshot.json")]).snapshot(), rules)
    assert len(report.findings) > 20


@linux_only
def test_forked_audit_of_every_rule_fixture_equals_one_process(forking, rules):
    """All fixtures as one input: most rules fire somewhere."""
    loaded = load_paths(single_cluster_fixtures())
    report = _same_report(loaded.snapshot(), rules)
    assert len({f.rule for f in report.findings}) >= 30


@linux_only
def test_forked_audit_reports_rule_errors_like_one_process(forking, rules):
    """Rules that fail at run time (fixtures/broken-rules, '# runtime-error:') on every Namespace."""
    from auditor.rulebook import load_rule_file

    corpus = FIXTURES / "broken-rules"
    broken = [load_rule_file(p) for p in sorted(corpus.glob("*.yaml")) if p.read_text().startswith("# runtime-error:")]
    assert len(broken) >= 3
    report = _same_report(load_paths(single_cluster_fixtures()).snapshot(), rules + broken)
    assert {e["rule"] for e in report.errors} >= {r.id for r in broken}


def test_jobs_option_is_validated():
    result = CliRunner().invoke(cli, ["scan", str(FIXTURES / "demo"), "--jobs", "0"])
    assert result.exit_code == 2 and "--jobs" in result.output
    result = CliRunner(env={"MESH_AUDIT_JOBS": "many"}).invoke(cli, ["scan", str(FIXTURES / "demo")])
    assert result.exit_code == 2 and "many" in result.output


def _loaded(paths, jobs):
    from auditor.collect import files

    result = files.load_paths(paths, jobs=jobs)
    snap = result.snapshot()
    return ([(o.key, o.raw, snap.location(o), o.signature) for o in result.objects],
            [str(w) for w in result.warnings], [str(e) for e in result.errors],
            [(path, c.describe()) for path, c in result.snapshots])


@linux_only
def test_forked_loading_equals_one_process(forking, monkeypatch, tmp_path):
    """Files of every sort, good and bad, split between processes: same objects, lines,
    replica signatures, warnings, errors and snapshot records, in the same order."""
    from auditor.collect import files

    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 0)
    write(300, tmp_path / "gen")
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n")
    (tmp_path / "bad.json").write_text('{"apiVersion": "v1", ')
    (tmp_path / "notk8s.yaml").write_text("hello: world\n")
    inputs = [str(tmp_path / "gen" / "yaml"), str(tmp_path / "bad.yaml"), str(tmp_path / "gen" / "dump.json"),
              str(tmp_path / "notk8s.yaml"), str(tmp_path / "gen" / "snapshot.json"), str(tmp_path / "bad.json"),
              str(FIXTURES / "rules")]
    one = _loaded(inputs, 1)
    assert len(one[0]) > 1000 and one[1] and len(one[2]) == 2 and one[3]
    for jobs in (2, 3):
        assert _loaded(inputs, jobs) == one


@linux_only
def test_forked_loading_is_used_for_many_large_files(forking, monkeypatch, tmp_path):
    from auditor.collect import files

    calls = []
    monkeypatch.setattr(workers, "_fork", lambda work, share: calls.append(share) or None)  # "fork failed"
    for i in range(3):
        (tmp_path / f"f{i}.json").write_bytes(b"[" + b",".join([b'{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n%d"}}' % j for j in range(i * 10, i * 10 + 10)]) + b"]")
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 10)
    result = files.load_paths([str(tmp_path)], jobs=2)
    assert calls == [range(2, 3)] or calls == [range(1, 3)]  # the parent took the first share
    assert [o.name for o in result.objects] == [f"n{j}" for j in range(30)]  # the failed fork's share done here
    calls.clear()
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 10**9)
    files.load_paths([str(tmp_path)], jobs=2)
    assert calls == []  # small inputs are read in one process
