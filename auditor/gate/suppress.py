"""Suppressions and baselines: findings that are known and accepted stay in the JSON and
SARIF reports (marked, with the reason) but no longer count toward --fail-on.

Three ways to suppress, each with its reason:
- an annotation on the object: `mesh-audit.io/ignore: "rule-a,rule-b"` (or `*`), with
  `mesh-audit.io/ignore-reason`;
- an exemption in `.mesh-audit.yaml` (optionally expiring);
- `--ignore RULE[=Kind/namespace/name-glob]` on the command line.
In an audit of several clusters, a pattern ending in `@cluster-glob` applies to those
clusters only.

A baseline records the findings of one scan by rule and object identity (never the
message text); later scans against it count only findings that are new.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import orjson

from auditor.gate.config import Exemption
from auditor.core.errors import UsageError
from auditor.core.kinds import group_kind
from auditor.model.report import Finding, Report
from auditor.model.snapshot import Snapshot
from auditor.core.words import did_you_mean

IGNORE_ANNOTATION = "mesh-audit.io/ignore"
IGNORE_REASON = "mesh-audit.io/ignore-reason"
BASELINE_KIND = "MeshAuditBaseline"


def cli_ignores(values: list[str], names: dict[str, str]) -> list[Exemption]:
    """`RULE` or `RULE=Kind/ns/name-glob`, as given to --ignore."""
    out = []
    for value in values:
        rule, _, pattern = value.partition("=")
        if rule not in names and rule != "*":
            raise UsageError(f"--ignore {value}: no rule named '{rule}'{did_you_mean(rule, names)} "
                             "(see 'mesh-audit rules list')")
        pattern = pattern or "*/*"
        if pattern.count("/") not in (1, 2):
            raise UsageError(f"--ignore {value}: the object must be Kind/namespace/name (or Kind/name), globs allowed")
        out.append(Exemption(rule=names.get(rule, rule), pattern=pattern, reason=f"--ignore {value}", source="cli"))
    return out


@dataclass(frozen=True)
class Suppressed:
    """The findings with their suppressions, warnings about expired exemptions (as the
    report lists warnings), and the exemptions in force that matched nothing."""

    findings: list[Finding]
    warnings: list[dict]
    unused_exemptions: list[dict]


def apply_suppressions(findings: list[Finding], snapshot: Snapshot, exemptions: list[Exemption],
                       names: dict[str, str], today: date, config_path: str | None = None) -> Suppressed:
    """Each finding with the annotations and exemptions that suppress it."""
    in_force = [ex for ex in exemptions if not ex.expired(today)]
    matched: set[int] = set()
    out = []
    for f in findings:
        found = list(f.suppressions)
        subject = snapshot.get(group_kind(f.object.api_version, f.object.kind), f.object.namespace, f.object.name)
        if subject is not None and IGNORE_ANNOTATION in subject.annotations:
            listed = {names.get(n.strip(), n.strip()) for n in subject.annotations[IGNORE_ANNOTATION].split(",") if n.strip()}
            if "*" in listed or f.rule in listed:
                reason = subject.annotations.get(IGNORE_REASON) or f"{IGNORE_ANNOTATION} on {f.object}"
                found.append({"kind": "inSource", "source": "annotation", "justification": reason})
        for i, ex in enumerate(in_force):
            if ex.matches(f.rule, f.object.path, f.object.cluster):
                matched.add(i)
                found.append({"kind": "external", "source": ex.source, "justification": ex.reason})
        out.append(replace(f, suppressions=found) if len(found) > len(f.suppressions) else f)
    warnings = [{"file": config_path, "line": ex.line,
                 "message": f"exemption expired on {ex.expires.isoformat()} and no longer suppresses: {ex.describe()}"}
                for ex in exemptions if ex.expired(today)]
    unused = [ex.to_dict() for i, ex in enumerate(in_force) if i not in matched]
    return Suppressed(out, warnings, unused)


# -- baselines ----------------------------------------------------------------------------

def _entry(identity: tuple) -> dict:
    rule, group, kind, namespace, name, *cluster = identity
    entry = {"rule": rule, "group": group, "kind": kind, "namespace": namespace or None, "name": name}
    if cluster:
        entry["cluster"] = cluster[0]
    return entry


def baseline_document(report: Report) -> dict:
    entries = sorted({f.identity() for f in report.findings if not f.suppressed})
    return {"kind": BASELINE_KIND, "schema_version": 1, "findings": [_entry(i) for i in entries]}


def write_baseline(report: Report, path: str) -> None:
    from auditor.core.fileio import atomic_file

    with atomic_file(path) as fh:
        fh.write(orjson.dumps(baseline_document(report), option=orjson.OPT_INDENT_2) + b"\n")


def read_baseline(path: str) -> set[tuple]:
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as err:
        raise UsageError(err.strerror or str(err), path) from None
    except orjson.JSONDecodeError as err:
        raise UsageError(f"invalid JSON: {err.msg}", path, err.lineno) from None
    if not isinstance(doc, dict) or doc.get("kind") != BASELINE_KIND or not isinstance(doc.get("findings"), list):
        raise UsageError("not a mesh-audit baseline (write one with --write-baseline)", path)
    try:
        return {(e["rule"], e.get("group") or "", e["kind"], e.get("namespace") or "", e["name"],
                 *((e["cluster"],) if e.get("cluster") else ())) for e in doc["findings"]}
    except (KeyError, TypeError):
        raise UsageError("baseline entries need rule, kind and name", path) from None


def apply_baseline(report: Report, known: set[tuple], path: str) -> Report:
    """The report with each finding marked new or unchanged against the baseline `known`
    (read from `path`), and the baseline's summary."""
    findings = [replace(f, baseline_state="unchanged" if f.identity() in known else "new") for f in report.findings]
    active = [f for f in findings if not f.suppressed]
    return replace(report, findings=findings, baseline={
        "file": path,
        "new": sum(1 for f in active if f.baseline_state == "new"),
        "unchanged": sum(1 for f in active if f.baseline_state == "unchanged"),
        "fixed": [_entry(i) for i in sorted(known - {f.identity() for f in findings})],
    })
