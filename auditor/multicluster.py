"""Audit several clusters as one mesh (what api.load and api.audit do when given a
mapping of cluster names to inputs, or a snapshot file holding several clusters).

Live clusters are collected at the same time, each in its own forked process where that
is safe (a collection is mostly parsing, which threads would serialize); a cluster that
cannot be reached becomes a gap and the others are still audited. Each cluster is then
audited as it would be alone, with the mesh's topology (facts.topology) joined to its
context so that rules about several clusters see it, and the reports are merged: every
finding names its cluster.
"""

from __future__ import annotations

import marshal
import os
import shutil
import tempfile
from dataclasses import replace

from auditor.collect.cluster.kubeconfig import preload
from auditor.collect.collection import Collection
from auditor.collect.snapshot.file import write_snapshot
from auditor.core.coverage import Gap
from auditor.core.errors import ClusterError, UsageError
from auditor.core.fileio import atomic_file
from auditor.core.workers import as_completed, map_shares
from auditor.facts.topology import Topology, member
from auditor.gate.finish import finish
from auditor.gate.suppress import apply_baseline
from auditor.model.clusters import EVERYTHING, ClusterSource, Clusters, check_name, unreachable
from auditor.model.report import Report
from auditor.model.snapshot import K8sObject, Snapshot
from auditor.collect.sources import load_cluster, save_cluster
from auditor.pipeline import context_of, findings_of


def check_members(members: dict) -> None:
    """UsageError unless `members` names at least two clusters, each a valid name."""
    if len(members) < 2:
        raise UsageError("an audit of several clusters needs at least two")
    for name in members:
        check_name(str(name))


def load_clusters(members: dict) -> Clusters:
    """`members` (checked by check_members): cluster name -> an api.ClusterSource, or what
    was read already for it (files, dumps, a snapshot: api.load reads those). Live clusters
    are collected concurrently."""
    live = [(name, source) for name, source in members.items() if isinstance(source, ClusterSource)]
    collected = dict(zip((name for name, _ in live), _collect_all(live)))
    return Clusters({name: collected.get(name, source) for name, source in members.items()})


def _collect_all(live: list[tuple]) -> list[Snapshot]:
    """Each live cluster collected in a forked child (workers.as_completed) while this
    process turns the results that have arrived into snapshots; one after another where
    forking is not safe. The kubernetes client is imported once, before forking."""
    preload()
    parent = os.getpid()

    def collect(item) -> tuple:
        """("ok", snapshot) in this process; ("ok", bytes) from a child; or a failure."""
        outcome, snapshot = _attempt(load_cluster, item[1])
        if outcome != "ok" or os.getpid() == parent:
            return outcome, snapshot
        # marshal: the same interpreter reads it back, replicas' shared parts stay shared, and
        # it reads about twice as fast as JSON (the parent's share of the work).
        return "ok", marshal.dumps((snapshot.collection, [o.raw for o in snapshot]))

    out: list = [None] * len(live)
    for i, (outcome, value) in as_completed(collect, live):
        name, source = live[i]
        _refuse(name, outcome, value)
        if outcome == "unreachable":
            out[i] = unreachable(source.context, value)
        elif isinstance(value, Snapshot):
            out[i] = value
        else:
            collection, objects = marshal.loads(value)
            out[i] = Snapshot((K8sObject(o) for o in objects), collection=collection)
    return out


def save_clusters(sources: dict, path: str) -> dict[str, tuple[dict, int]]:
    """Collect every cluster at once, each into its own segment, then join the segments
    into one snapshot at `path`, atomically. An unreachable cluster gets a segment with
    no objects and its gap. Returns each cluster's record and object count."""
    if len(sources) < 2:
        raise UsageError("a snapshot of several clusters needs at least two")
    preload()
    suffix = ".json.gz" if path.endswith(".gz") else ".json"
    with tempfile.TemporaryDirectory(prefix="mesh-audit-snapshot-") as folder:
        def save(item) -> tuple:
            i, (name, source) = item
            segment = os.path.join(folder, f"{i}{suffix}")
            outcome, value = _attempt(save_cluster, source, segment, check_name(name), list(sources))
            if outcome == "unreachable":  # a segment with no objects and its gap
                value = Collection(context=source.context, not_collected=[Gap(EVERYTHING, value)])
                write_snapshot(value, segment, name, list(sources))
            return outcome, segment, (value.describe(), value.object_count) if outcome != "usage" else value

        outcomes = map_shares(save, list(enumerate(sources.items())))
        for name, (outcome, _, value) in zip(sources, outcomes):
            _refuse(name, outcome, value)
        with atomic_file(path) as out:
            for _, segment, _ in outcomes:
                with open(segment, "rb") as part:
                    shutil.copyfileobj(part, out)
    return {name: saved for name, (_, _, saved) in zip(sources, outcomes)}


def _attempt(work, *args) -> tuple[str, object]:
    """("ok", work(*args)), or ("unreachable", why) when the cluster cannot be read, or
    ("usage", why) for a kubeconfig or context to fix: a value, so that it comes back
    from a forked child as it is."""
    try:
        return "ok", work(*args)
    except ClusterError as err:
        return "unreachable", str(err)
    except UsageError as err:
        return "usage", str(err)


def _refuse(name: str, outcome: str, why) -> None:
    """A kubeconfig or context to fix stops the audit of every cluster (exit 2)."""
    if outcome == "usage":
        raise UsageError(f"cluster {name}: {why}")


def audit_clusters(clusters: Clusters, settings) -> Report:
    """One report for the mesh: each cluster audited with the topology of them all, under
    `settings` (api.Settings, resolved)."""
    if settings.compare_version is not None:
        raise UsageError("--compare-version compares one cluster's versions; audit the clusters one at a time for it")
    by_name = contexts(clusters, settings)
    reports = []
    for name, snapshot in clusters.items():
        report = findings_of(by_name[name], settings)
        report = replace(report, warnings=[_in_cluster(w, name) for w in report.warnings])  # what its objects say
        reports.append((name, finish(report, snapshot, replace(settings, baseline=None))))
    merged = merge(reports, clusters)
    if settings.baseline is not None:
        merged = apply_baseline(merged, settings.baseline_entries, settings.baseline)
    return merged


def contexts(clusters: Clusters, settings) -> dict:
    """Each cluster's context, joined to the topology of the clusters that could be read."""
    out = {name: context_of(snapshot, settings, member=name) for name, snapshot in clusters.items()}
    topology = Topology([member(name, out[name]) for name in clusters.reachable()])
    for name in clusters.reachable():
        out[name].join_mesh(topology)
    return out


def merge(reports: list[tuple[str, Report]], clusters: Clusters) -> Report:
    """The clusters' finished reports as one: findings in the usual order, rules and
    exemptions that went unused everywhere, each problem naming its cluster."""
    first = reports[0][1]
    rules = {}
    for _, report in reports:
        for rule in report.rules:
            rules.setdefault(rule.id, rule)
    versions = {name: r.istio_version for name, r in reports}
    unused = [e for e in first.unused_exemptions if all(e in r.unused_exemptions for _, r in reports[1:])]
    return replace(
        first,
        findings=sorted((f for _, r in reports for f in r.findings), key=lambda f: f.sort_key()),
        rules=list(rules.values()),
        errors=[_named(e, name) for name, r in reports for e in r.errors],
        warnings=_once([w for _, r in reports for w in r.warnings]),
        objects=sum(r.objects for _, r in reports),
        istio_version=_versions(versions),
        skipped_rules=sorted(set.intersection(*(set(r.skipped_rules) for _, r in reports))),
        collection=clusters.collection,
        unused_exemptions=unused,
    )


def _in_cluster(warning: dict, cluster: str) -> dict:
    """A warning about a cluster's objects, naming the cluster where no file does."""
    out = {**warning, "cluster": cluster}
    if not out.get("file"):
        out["message"] = f"cluster {cluster}: {out['message']}"
    return out


def _once(problems: list[dict]) -> list[dict]:
    """Each warning once: the configuration's (an expired exemption) reach every cluster's
    report; those about a cluster's own objects name it, so stay apart."""
    seen, out = set(), []
    for problem in problems:
        key = tuple(sorted((k, str(v)) for k, v in problem.items()))
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _named(problem: dict, cluster: str) -> dict:
    out = {**problem, "cluster": cluster}
    if out.get("object"):
        out["object"] = f"{out['object']} @{cluster}"
    return out


def _versions(versions: dict[str, str | None]) -> str | None:
    """The Istio version, or each cluster's when they differ (`1.27.1 (east), 1.28.0 (west)`)."""
    known = {v for v in versions.values() if v}
    if len(known) <= 1 and all(versions.values()):
        return next(iter(known), None)
    return ", ".join(f"{v or 'unknown'} ({name})" for name, v in versions.items()) if known else None
