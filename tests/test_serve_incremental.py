"""serve's incremental rounds (auditor.serve.incremental) against a full audit of the same
objects: for changes to objects of every kind of the demo and of a generated cluster
(relabelled, deleted, a replica added, a namespace moved to ambient, a Service bound to
a waypoint), the round's report is the report a full audit gives, finding for finding."""

from __future__ import annotations

import sys

from auditor import api
from auditor.core import kinds as k
from auditor.model.snapshot import K8sObject, Snapshot
from auditor.serve.incremental import REBASE, Auditor
from conftest import DEMO, ROOT

COLLECTION = {"source": "files", "files_read": 1}


def full(objects: dict, settings, collection: dict = COLLECTION) -> list[dict]:
    return outcome(api.audit(Snapshot(objects.values(), collection=dict(collection)), settings))


def outcome(report) -> list[dict]:
    """What a round must get right: the findings, and the rule errors met on the way."""
    return [f.to_dict() for f in report.findings] + report.errors


def relabelled(obj: K8sObject, **labels) -> K8sObject:
    return obj.rewritten({**obj.raw, "metadata": {**obj.metadata, "labels": {**obj.labels, **labels}}})


def changes(obj: K8sObject) -> list[tuple[str, K8sObject | None]]:
    """What can happen to `obj` between two rounds: (what, the object after; None: deleted)."""
    out = [("relabelled", relabelled(obj, **{"mesh-audit.test/changed": "yes"})), ("deleted", None),
           ("given a boom label", relabelled(obj, boom="yes"))]
    if obj.gk == k.NAMESPACE:
        out.append(("to ambient", relabelled(obj, **{"istio.io/dataplane-mode": "ambient", "istio-injection": "disabled"})))
    if obj.gk == k.SERVICE:
        out.append(("bound to a waypoint", relabelled(obj, **{"istio.io/use-waypoint": "waypoint"})))
    if obj.gk == k.POD:
        twin = {**obj.raw, "metadata": {**obj.metadata, "name": obj.name + "-twin", "uid": "twin"}}
        out.append(("a replica added", K8sObject(twin)))
    return out


def check_rounds(objects: dict, picked: list[K8sObject], collection: dict = COLLECTION,
                 settings=None) -> tuple[int, int]:
    settings = settings or api.resolve(api.Settings())
    auditor = Auditor(settings)
    today = full(objects, settings, collection)
    assert outcome(auditor.audit(dict(objects), dict(collection))) == today
    tried = 0
    for obj in picked:
        for what, after in changes(obj):
            changed = dict(objects)
            if after is None:
                del changed[obj.key]
            else:
                changed[after.key] = after
            got = outcome(auditor.audit(changed, dict(collection)))
            assert got == full(changed, settings, collection), f"{obj.ref()} {what}"
            back = outcome(auditor.audit(dict(objects), dict(collection)))
            assert back == today, f"{obj.ref()} {what}, then undone"
            tried += 1
    return tried, auditor.incremental_rounds


def test_rounds_on_the_demo_equal_full_audits():
    objects = {o.key: o for o in api.load([DEMO])}
    tried, incremental = check_rounds(objects, list(objects.values()))
    assert tried >= 80 and incremental > 120  # most rounds took the incremental path


ERRING_RULE = """\
id: needs-boom
title: A rule that fails on objects without a boom label
severity: warning
applies_to: [Namespace, Service]
when: >
  object.metadata.labels["boom"] == "yes"
message: >
  "boom"
rationale: To test rule errors.
remediation: None.
references: [https://istio.io/latest/docs/]
"""


def test_rule_errors_of_a_round_equal_a_full_audits(tmp_path):
    """A rule that errors on objects lacking a label: a round reports the errors of the
    objects it evaluated again, and the base's for the rest, as a full audit would."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "needs-boom.yaml").write_text(ERRING_RULE)
    settings = api.resolve(api.Settings(rules_dirs=(str(folder),)))
    objects = {o.key: o for o in api.load([DEMO])}
    assert full(objects, settings)[-1]["rule"] == "needs-boom"  # it errs on the demo
    picked = [o for o in objects.values() if o.gk in (k.NAMESPACE, k.SERVICE)]
    errors = lambda objects: [e for e in full(objects, settings) if "kind" in e]  # noqa: E731 - findings have none
    calmed = {**objects, picked[0].key: relabelled(picked[0], boom="yes")}
    assert len(errors(calmed)) == len(errors(objects)) - 1  # the label ends that object's error
    tried, incremental = check_rounds(objects, picked, settings=settings)
    assert tried > 20 and incremental > 20


def test_rounds_on_a_generated_cluster_equal_full_audits(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from generate import write

    write(300, tmp_path, seed=11)
    snapshot = api.load(snapshot=str(tmp_path / "snapshot.json"))  # as read from a cluster: absences count
    objects = {o.key: o for o in snapshot}
    by_kind: dict[str, list[K8sObject]] = {}
    for obj in objects.values():
        by_kind.setdefault(obj.gk, []).append(obj)
    picked = [o for group in by_kind.values() for o in group[:: max(1, len(group) // 8)][:8]]
    tried, incremental = check_rounds(objects, picked, snapshot.collection)
    assert tried > 120 and incremental > 200


def test_what_the_reach_does_not_follow_is_audited_in_full():
    settings = api.resolve(api.Settings())
    objects = {o.key: o for o in api.load([DEMO])}
    auditor = Auditor(settings)
    auditor.audit(dict(objects), dict(COLLECTION))
    gateway = next(o for o in objects.values() if o.gk == k.GATEWAY)
    config = next(o for o in objects.values() if o.gk == k.CONFIG_MAP)
    for changed in (gateway, config):
        before = auditor.full_rounds
        auditor.audit({**objects, changed.key: relabelled(changed, changed="yes")}, dict(COLLECTION))
        assert auditor.full_rounds == before + 1, changed.ref()
    auditor.audit(dict(objects), dict(COLLECTION))  # back to the demo: a ConfigMap changed, so in full
    service = next(o for o in objects.values() if o.gk == k.SERVICE and o.namespace == "catalog")
    before = auditor.incremental_rounds
    auditor.audit({**objects, service.key: relabelled(service, changed="yes")}, dict(COLLECTION))
    assert auditor.incremental_rounds == before + 1
    many = {**objects, **{("v1/ConfigMap", "x", f"c{i}"): K8sObject(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "x"}})
        for i in range(REBASE + 1)}}
    before = auditor.full_rounds
    auditor.audit(many, dict(COLLECTION))
    assert auditor.full_rounds == before + 1  # too many changes since the base: a new base


def test_a_relist_audits_in_full():
    settings = api.resolve(api.Settings())
    objects = {o.key: o for o in api.load([DEMO])}
    auditor = Auditor(settings)
    auditor.audit(dict(objects), dict(COLLECTION))
    auditor.audit(dict(objects), dict(COLLECTION), relisted=True)
    assert auditor.full_rounds == 2 and auditor.incremental_rounds == 0


def test_the_base_keeps_its_indices_not_its_facts_and_is_frozen_out_of_collection():
    """serve lives long: its base keeps what what-if copies share, and the garbage
    collector runs, but over each round's garbage, not over the base again."""
    import gc

    settings = api.resolve(api.Settings())
    objects = {o.key: o for o in api.load([DEMO])}
    auditor = Auditor(settings)
    was_enabled = gc.isenabled()
    gc.disable()  # as the command line starts
    try:
        auditor.audit(dict(objects), dict(COLLECTION))
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert auditor.base.whatif.ctx.facts_cache == {}
        service = next(o for o in objects.values() if o.gk == k.SERVICE and o.namespace == "catalog")
        changed = {**objects, service.key: relabelled(service, changed="yes")}
        assert [f.to_dict() for f in auditor.audit(changed, dict(COLLECTION)).findings] == full(changed, settings)
    finally:
        gc.unfreeze()
        if not was_enabled:
            gc.disable()


def test_rounds_do_not_look_the_repository_up_again(monkeypatch, tmp_path):
    """Where the repository is (for SARIF paths) is found once, when serve starts, and every
    round's report says the same; a round does not walk the working directory for it."""
    from auditor.gate import finish

    monkeypatch.chdir(tmp_path)
    looked = []
    monkeypatch.setattr(finish, "repository_root", lambda start=None: looked.append(start) or "/elsewhere")
    objects = {o.key: o for o in api.load([DEMO])}
    auditor = Auditor(api.resolve(api.Settings()))
    reports = [auditor.audit(dict(objects), dict(COLLECTION))]
    ns = next(o for o in objects.values() if o.gk == k.NAMESPACE)
    reports.append(auditor.audit({**objects, ns.key: relabelled(ns, x="1")}, dict(COLLECTION)))
    assert looked == [] and {r.repo_root for r in reports} == {str(tmp_path)}
