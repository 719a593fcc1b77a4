"""SARIF 2.1.0 for GitHub code scanning.

Findings from files point at the file and line, as a path relative to the repository
root (`%SRCROOT%`, the git work tree the scan ran in, or --repo-root), so GitHub places
them whatever directory the scan ran from. Objects with no file (stdin, a live cluster)
get a stable pseudo-path `k8s/<namespace>/<kind>/<name>` so that their alerts keep their
identity from scan to scan; `partialFingerprints` hash rule + object identity, never the
message, so rewording a message does not reopen alerts. `automationDetails.id` is set
only when asked (--category, or --cluster-name): otherwise upload-sarif's `category`
decides, as GitHub lets the file's own id win. GitHub accepts 25,000 results per run;
beyond that the most severe are kept and a notification says how many were left out.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import orjson

from auditor.model.report import Finding, Report, describe_gap
from auditor.reporters.view import PLAIN, View

LEVELS = {"error": "error", "warning": "warning", "info": "note"}
MAX_RESULTS = 25_000  # per run, as GitHub code scanning ingests them
ROOT = "%SRCROOT%"
# GitHub ranks security alerts by this score (critical >= 9, high >= 7, medium >= 4).
SECURITY_SEVERITY = {"error": "8.0", "warning": "5.0", "info": "2.0"}
PRECISION = {"high": "very-high", "medium": "medium", "low": "low"}
CLUSTER_SCOPE = "_cluster"
WHOLE_CLUSTER_API = "mesh-audit.io/v1"  # the subject of rules about the cluster as a whole (engine.cluster_object)


def _rule_name(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _rule_descriptor(rule) -> dict:
    properties = {"tags": rule.tags, "precision": PRECISION[rule.confidence], "problem.severity": rule.severity}
    if "security" in rule.tags:
        properties["security-severity"] = SECURITY_SEVERITY[rule.severity]
    references = "\n".join(f"- {r}" for r in rule.references)
    return {
        "id": rule.id,
        "name": _rule_name(rule.id),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": " ".join(rule.rationale.split())},
        "help": {
            "text": f"{' '.join(rule.rationale.split())}\n\nRemediation: {' '.join(rule.remediation.split())}",
            "markdown": f"{rule.rationale.strip()}\n\n**Remediation:** {rule.remediation.strip()}\n\n{references}",
        },
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": properties,
    }


def pseudo_path(finding: Finding, cluster: str | None = None) -> str:
    """`k8s/[<cluster>/]<namespace>/<Kind>/<name>` (`_cluster` for a cluster-scoped
    object's namespace; `k8s/[<cluster>/]_cluster` for the cluster as a whole): stable per
    object, so alerts keep their identity."""
    o = finding.object
    cluster = o.cluster or cluster
    whole = o.kind == "Cluster" and o.api_version == WHOLE_CLUSTER_API
    parts = ("k8s", *((cluster,) if cluster else ()), CLUSTER_SCOPE) if whole else \
        ("k8s", *((cluster,) if cluster else ()), o.namespace or CLUSTER_SCOPE, o.kind, o.name)
    return "/".join(quote(part, safe="") for part in parts)


def artifact_uri(path: str, root: str | None = None) -> tuple[str, bool]:
    """(URI, relative to the root?) for a file: repository-relative with forward slashes
    when it lies under `root` (default: the working directory), else an absolute file: URI
    (GitHub cannot place it, but it names the file exactly)."""
    absolute = os.path.abspath(path)
    base = os.path.abspath(root or os.curdir)
    if absolute != base and not absolute.startswith(base.rstrip(os.sep) + os.sep):
        return Path(absolute).as_uri(), False
    return quote(os.path.relpath(absolute, base).replace(os.sep, "/"), safe="/"), True


def fingerprint(finding: Finding, cluster: str | None = None) -> str:
    """Stable per rule and object: the finding's own cluster (in an audit of several) is
    already in its identity; --cluster-name prefixes a single cluster's."""
    identity = "\x00".join((*((cluster,) if cluster and not finding.object.cluster else ()), *finding.identity()))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _artifact(finding: Finding, report: Report) -> tuple[dict, int, str]:
    """(artifactLocation, line, message) of a finding: its file under the repository root,
    or its object's pseudo-path."""
    if finding.location is not None and not finding.location[0].startswith("<"):
        uri, relative = artifact_uri(finding.location[0], report.repo_root)
        location = {"uri": uri, "uriBaseId": ROOT} if relative else {"uri": uri}
        return location, finding.location[1], finding.message
    return {"uri": pseudo_path(finding, report.cluster_name)}, 1, f"{finding.object}: {finding.message}"


def _result(finding: Finding, rule_index: dict[str, int], report: Report) -> dict:
    artifact, line, message = _artifact(finding, report)
    cluster = report.cluster_name
    result = {
        "ruleId": finding.rule,
        "level": LEVELS[finding.severity],
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {"artifactLocation": artifact, "region": {"startLine": max(1, line)}},
            "logicalLocations": [{"name": str(finding.object), "kind": "resource"}],
        }],
        "partialFingerprints": {"meshAuditObject/v1": fingerprint(finding, cluster)},
        "properties": {"object": finding.object.to_dict(), "observed": finding.observed},
    }
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    if finding.suppressions:
        result["suppressions"] = [
            {"kind": s["kind"], "status": "accepted", "justification": f"{s['justification']} ({s['source']})"}
            for s in finding.suppressions
        ]
    if finding.baseline_state:
        result["baselineState"] = finding.baseline_state
    if finding.causes:
        result["message"]["text"] += f" (because of the change: {because(finding)})"
        result["relatedLocations"] = [_cause_location(i, c, report) for i, c in enumerate(finding.causes, 1)]
    return result


def because(finding: Finding) -> str:
    """The changed objects behind a finding on an object the change did not write."""
    return "; ".join(_cause_text(c) for c in finding.causes)


def _cause_text(cause: dict) -> str:
    where = cause.get("location")
    place = f"{where['file']}:{where['line']}" if where else None
    if cause["change"] == "deleted":
        detail = ", ".join(p for p in (cause.get("why"), f"was at {place}" if place else None) if p)
        return f"deleted {cause['object']}" + (f" ({detail})" if detail else "")
    return cause["object"] + (f" ({place})" if place else "")


def _cause_location(index: int, cause: dict, report: Report) -> dict:
    out: dict = {"id": index, "message": {"text": _cause_text(cause)}}
    where = cause.get("location")
    if where and not where["file"].startswith("<"):
        uri, relative = artifact_uri(where["file"], report.repo_root)
        artifact = {"uri": uri, "uriBaseId": ROOT} if relative else {"uri": uri}
        out["physicalLocation"] = {"artifactLocation": artifact, "region": {"startLine": max(1, where["line"])}}
    return out


def _kept(report: Report) -> tuple[list[Finding], int]:
    """The findings that fit in one run, the most severe (and not suppressed) first, in the
    report's order; and how many were left out."""
    if len(report.findings) <= MAX_RESULTS:
        return report.findings, 0
    ranked = sorted(range(len(report.findings)), key=lambda i: (report.findings[i].suppressed, i))
    keep = sorted(ranked[:MAX_RESULTS])
    return [report.findings[i] for i in keep], len(report.findings) - MAX_RESULTS


def _automation_id(report: Report) -> str | None:
    if report.category:
        return f"{report.category.rstrip('/')}/"
    return f"mesh-audit/{report.cluster_name}/" if report.cluster_name else None


def to_document(report: Report) -> dict:
    rules = sorted(report.rules, key=lambda r: r.id)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    findings, left_out = _kept(report)
    notifications = [
        {"level": "error", "message": {"text": f"{e.get('rule') or e.get('file')}: {e['message']}"}} for e in report.errors
    ] + [
        {"level": "error", "message": {"text": f"not collected: {describe_gap(g)}"}} for g in report.not_collected
    ]
    notifications += [{"level": "warning", "message": {"text": f"not audited: {n['path']}: {n['reason']}"}}
                      for n in report.not_rendered if not report.not_collected]
    if left_out:
        notifications.append({"level": "warning", "message": {"text": (
            f"{left_out:,} of {len(report.findings):,} findings are not in this run: GitHub code scanning accepts "
            f"{MAX_RESULTS:,} results per run (the most severe are kept); the JSON report has them all")}})
    run = {
        "tool": {"driver": {
            "name": "mesh-audit",
            "version": report.tool_version,
            "semanticVersion": report.tool_version,
            "rules": [_rule_descriptor(r) for r in rules],
        }},
        "invocations": [{
            "executionSuccessful": not report.errors and report.complete,
            "toolExecutionNotifications": notifications,
        }],
        "originalUriBaseIds": {ROOT: {"uri": Path(os.path.abspath(report.repo_root or os.curdir)).as_uri() + "/"}},
        "properties": {"collection": report.collection},
        "results": [_result(f, rule_index, report) for f in findings],
    }
    automation = _automation_id(report)
    if automation is not None:
        run["automationDetails"] = {"id": automation}
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [run]}


def render(report: Report, view: View = PLAIN) -> str:
    return orjson.dumps(to_document(report), option=orjson.OPT_INDENT_2).decode() + "\n"
