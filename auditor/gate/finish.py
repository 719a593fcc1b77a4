"""From findings to what a CI gate decides on: the collection record and input problems
attached, findings outside the asked namespaces dropped, live findings pointed at their
manifests (source map), suppressions and the baseline applied, and the severity that
fails the gate set."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date

from auditor.collect.excludes import work_tree
from auditor.gate.locate import place_findings
from auditor.model.report import Report
from auditor.model.snapshot import Snapshot
from auditor.gate.sourcemap import SourceMap
from auditor.gate.suppress import apply_baseline, apply_suppressions


def finish(report: Report, snapshot: Snapshot, settings) -> Report:
    """The finished report: `report` as the engine made it, for `snapshot` and `settings`
    (api.Settings, resolved)."""
    config = settings.config
    collection = snapshot.collection
    warnings = [w.to_dict() for w in snapshot.warnings] + report.warnings
    findings = report.findings
    scope = set(settings.namespaces) or set(collection.get("namespaces") or ())
    if scope:
        findings = [f for f in findings if _in_scope(f.object, scope)]
    if settings.source_map:
        mapping = SourceMap(settings.source_map)
        warnings += [w.to_dict() for w in mapping.warnings]
        findings = mapping.apply(findings)
    findings = place_findings(findings, snapshot.object_span)
    suppressed = apply_suppressions(findings, snapshot, settings.exemptions, settings.names,
                                    settings.today or date.today(), config.path)
    finished = replace(
        report, findings=suppressed.findings, collection=collection, cluster_name=settings.cluster_name,
        category=settings.category, repo_root=settings.repo_root or repository_root(), config_path=config.path,
        warnings=warnings + suppressed.warnings, unused_exemptions=suppressed.unused_exemptions,
        errors=[dict(kind="input", **e.to_dict()) for e in snapshot.errors] + report.errors,
        fail_on=config.effective_fail_on(settings.fail_on))
    if settings.baseline is not None:
        finished = apply_baseline(finished, settings.baseline_entries, settings.baseline)
    return finished


def repository_root(start: str | None = None) -> str:
    """The top of the git work tree holding `start` (default: the working directory); else
    `start` itself."""
    here = os.path.abspath(start or os.curdir)
    return work_tree(here) or here


def _in_scope(obj, namespaces: set[str]) -> bool:
    if obj.namespace is not None:
        return obj.namespace in namespaces
    return obj.kind != "Namespace" or obj.name in namespaces
