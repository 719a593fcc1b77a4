"""The engine evaluates look-alike objects once: conditions on what they read, kept by value."""

from __future__ import annotations

import pytest

from auditor import engine
from auditor.rulebook import load_rules
from auditor.rulebook.cel import get_backend
from conftest import audit, available_backends, snapshot_of
from test_rulebook import VALID, write_rule

TEAM_RULE = VALID.replace('object.metadata.name == "bad"', '"team" in facts.labels && facts.labels["team"] == "x"')


def namespace(name: str, **labels) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def team_rules(tmp_path, backend, text=TEAM_RULE):
    return load_rules([write_rule(tmp_path, text).parent], backend=backend)


@pytest.fixture(autouse=True)
def no_verdicts_kept():
    """Each test starts with no verdicts kept from another."""
    engine.MEMORY.forget()


def conditions_evaluated(spy, rules) -> int:
    return sum(1 for call in spy.call_args_list if call.args[0] is rules[0].programs["when"])


@pytest.mark.parametrize("backend_name", available_backends())
def test_objects_alike_in_what_conditions_read_are_evaluated_once(tmp_path, mocker, backend_name):
    """Namespaces that differ in names and in labels no condition names share one
    evaluation of the conditions; each finding is still worded for its own object."""
    backend = get_backend(backend_name)
    rules = team_rules(tmp_path, backend)
    docs = [namespace(f"x{i}", team="x", app=f"a{i}") for i in range(10)]
    docs += [namespace(f"y{i}", team="y", app=f"a{i}") for i in range(10)] + [namespace("none")]
    spy = mocker.spy(backend, "evaluate")
    report = audit(snapshot_of(*docs), rules, backend=backend, jobs=1)
    assert sorted(f.message for f in report.findings) == sorted(f"namespace x{i} is bad" for i in range(10))
    assert conditions_evaluated(spy, rules) == 3  # team x, team y, no team

    spy.reset_mock()
    again = audit(snapshot_of(*docs), rules, backend=backend, jobs=1)  # another audit with the same rules and mesh
    assert [f.message for f in again.findings] == [f.message for f in report.findings]
    assert conditions_evaluated(spy, rules) == 0
    assert engine.reads_of(rules, when_only=True)["facts"] == {"labels": ("team",)}


@pytest.mark.parametrize("backend_name", available_backends())
def test_a_label_a_condition_reads_keeps_objects_apart(tmp_path, backend_name):
    backend = get_backend(backend_name)
    text = TEAM_RULE.replace('facts.labels["team"] == "x"', 'facts.labels["team"] == "x" && !("skip" in facts.labels)')
    rules = team_rules(tmp_path, backend, text)
    docs = [namespace("a", team="x"), namespace("b", team="x", skip="1"), namespace("c", team="x", skip="")]
    report = audit(snapshot_of(*docs), rules, backend=backend, jobs=1)
    assert [f.message for f in report.findings] == ["namespace a is bad"]


@pytest.mark.parametrize("backend_name", available_backends())
def test_verdicts_are_kept_apart_for_each_value_of_the_mesh_they_read(tmp_path, backend_name):
    """The same namespace under a mesh with and without ambient: a condition on the mesh
    is evaluated again, not answered from the other audit."""
    backend = get_backend(backend_name)
    rules = team_rules(tmp_path, backend, TEAM_RULE.replace('"team" in', 'size(mesh.ambient_namespaces) > 0 && "team" in'))
    bad = namespace("bad", team="x")
    assert audit(snapshot_of(bad), rules, backend=backend, jobs=1).findings == []
    ambient = namespace("amb", **{"istio.io/dataplane-mode": "ambient"})
    report = audit(snapshot_of(bad, ambient), rules, backend=backend, jobs=1)
    assert [f.message for f in report.findings] == ["namespace bad is bad"]
    assert len(engine.MEMORY.verdict_tables()) == 2


def test_what_marshal_cannot_write_is_evaluated_alone(tmp_path, mocker):
    """A value nested deeper than marshal writes gets no key: each such object is
    evaluated on its own, and rightly."""
    backend = get_backend()
    rules = team_rules(tmp_path, backend, VALID.replace('object.metadata.name == "bad"', "object.spec.x == 1"))
    deep = 1
    for _ in range(2100):
        deep = [deep]
    docs = [{**namespace(name), "spec": {"x": value}} for name, value in (("d1", deep), ("d2", deep), ("one", 1))]
    spy = mocker.spy(backend, "evaluate")
    report = audit(snapshot_of(*docs), rules, backend=backend, jobs=1)
    assert [f.message for f in report.findings] == ["namespace one is bad"]
    assert conditions_evaluated(spy, rules) == 3
    assert engine.MEMORY.verdict_tables() == [1]  # only the shallow one was kept


def test_verdict_tables_are_bounded(tmp_path, monkeypatch):
    """A long-lived process auditing with many rule sets keeps at most so many tables."""
    monkeypatch.setattr(engine, "MEMORY", engine.Memory(limit=2))
    backend = get_backend()
    for i in range(3):
        text = TEAM_RULE.replace('== "x"', f'== "x{i}"')
        rules = load_rules([write_rule(tmp_path / str(i), text).parent], backend=backend)
        report = audit(snapshot_of(namespace("n", team=f"x{i}")), rules, backend=backend, jobs=1)
        assert [f.message for f in report.findings] == ["namespace n is bad"]
        assert len(engine.MEMORY.verdict_tables()) <= 2


def test_keeping_verdicts_changes_no_report(rules, monkeypatch, tmp_path):
    """The built-in rules over a generated cluster and the demo: the same report when no
    verdict can be kept (every object evaluated on its own)."""
    import sys

    from conftest import FIXTURES, ROOT, load_snapshot

    sys.path.insert(0, str(ROOT / "bench"))
    from generate import write

    write(400, tmp_path, seed=5)
    cluster = load_snapshot(tmp_path / "yaml")
    demo = load_snapshot(FIXTURES / "demo")
    def findings(snapshot):
        report = audit(snapshot, rules, jobs=1)
        assert report.errors == []
        return [f.to_dict() for f in report.findings]

    kept = [findings(snapshot) for snapshot in (cluster, demo)]
    assert sum(engine.MEMORY.verdict_tables()) < len(cluster) / 2  # look-alikes were shared

    def unkeyable(value, version):
        raise ValueError("unmarshallable object")

    engine.MEMORY.forget()
    monkeypatch.setattr(engine.marshal, "dumps", unkeyable)
    alone = [findings(snapshot) for snapshot in (cluster, demo)]
    assert not any(engine.MEMORY.verdict_tables())
    assert kept == alone and kept[0] and kept[1]
