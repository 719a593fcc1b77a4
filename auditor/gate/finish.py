"""From findings to what a CI gate decides on: the collection record and input problems
attached, findings outside the asked namespaces dropped, live findings pointed at their
manifests (source map), suppressions and the baseline applied, and the severity that
fails the gate set."""

from __future__ import annotations

import os
from datetime import date

from auditor.collect.excludes import work_tree
from auditor.gate.locate import place_findings
from auditor.model.report import Report
from auditor.model.snapshot import Snapshot
from auditor.gate.suppress import apply_baseline, apply_suppressions


def finish(report: Report, snapshot: Snapshot, settings) -> None:
    """Complete `report` in place; `settings` are api.Settings, resolved."""
    config = settings.config
    collection = snapshot.collection
    report.collection = collection
    report.cluster_name = settings.cluster_name
    report.category = settings.category
    report.repo_root = settings.repo_root or repository_root()
    report.config_path = config.path
    report.warnings = [w.to_dict() for w in snapshot.warnings] + report.warnings
    report.errors = [dict(kind="input", **e.to_dict()) for e in snapshot.errors] + report.errors
    scope = set(settings.namespaces) or set(collection.get("namespaces") or ())
    if scope:
        report.findings = [f for f in report.findings if _in_scope(f.object, scope)]
    if settings.source_map:
        from auditor.gate.sourcemap import SourceMap

        mapping = SourceMap(settings.source_map)
        report.warnings += [w.to_dict() for w in mapping.warnings]
        mapping.apply(report)
    place_findings(report, getattr(snapshot, "object_span", None))
    apply_suppressions(report, snapshot, settings.exemptions, settings.names, settings.today or date.today(), config.path)
    if settings.baseline is not None:
        apply_baseline(report, settings.baseline_entries, settings.baseline)
    report.fail_on = config.effective_fail_on(settings.fail_on)


def repository_root(start: str | None = None) -> str:
    """The top of the git work tree holding `start` (default: the working directory); else
    `start` itself."""
    here = os.path.abspath(start or os.curdir)
    return work_tree(here) or here


def _in_scope(obj, namespaces: set[str]) -> bool:
    if obj.namespace is not None:
        return obj.namespace in namespaces
    return obj.kind != "Namespace" or obj.name in namespaces
