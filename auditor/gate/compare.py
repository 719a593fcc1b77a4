"""`--compare-version`: what an Istio upgrade changes in the findings of the same objects."""

from __future__ import annotations

from auditor.model.report import Finding, Report


def _brief(f: Finding) -> dict:
    return {"rule": f.rule, "severity": f.severity, "object": f.object.to_dict(), "message": f.message}


def compare(current: Report, target: Report) -> dict:
    """Findings the target version adds, removes, or keeps at another severity."""
    before = {f.identity(): f for f in current.findings}
    after = {f.identity(): f for f in target.findings}
    return {
        "current": current.istio_version,
        "target": target.istio_version,
        "added": [_brief(after[k]) for k in sorted(after.keys() - before.keys())],
        "removed": [_brief(before[k]) for k in sorted(before.keys() - after.keys())],
        "severity_changed": [
            {**_brief(after[k]), "was": before[k].severity}
            for k in sorted(after.keys() & before.keys()) if after[k].severity != before[k].severity
        ],
    }
