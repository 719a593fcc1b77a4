"""SARIF 2.1.0 for GitHub code scanning.

Findings from files point at the file and line. Objects with no file (stdin, a live
cluster) get a stable pseudo-path `k8s/<namespace>/<kind>/<name>` so that their alerts
keep their identity from scan to scan; `partialFingerprints` hash rule + object identity,
never the message, so rewording a message does not reopen alerts.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import quote

import orjson

from auditor.report import Finding, Report, describe_gap

LEVELS = {"error": "error", "warning": "warning", "info": "note"}
# GitHub ranks security alerts by this score (critical >= 9, high >= 7, medium >= 4).
SECURITY_SEVERITY = {"error": "8.0", "warning": "5.0", "info": "2.0"}
PRECISION = {"high": "very-high", "medium": "medium", "low": "low"}
CLUSTER_SCOPE = "_cluster"


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
    """`k8s/[<cluster>/]<namespace>/<Kind>/<name>`: stable per object, so alerts keep their identity."""
    o = finding.object
    parts = ("k8s", *((cluster,) if cluster else ()), o.namespace or CLUSTER_SCOPE, o.kind, o.name)
    return "/".join(quote(part, safe="") for part in parts)


def artifact_uri(path: str) -> str:
    """A repository-relative URI: relative to the working directory, forward slashes."""
    if os.path.isabs(path):
        path = os.path.relpath(path)
    path = path.replace(os.sep, "/")
    while path.startswith("./"):
        path = path[2:]
    return quote(path, safe="/")


def fingerprint(finding: Finding, cluster: str | None = None) -> str:
    identity = "\x00".join((*((cluster,) if cluster else ()), *finding.identity()))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _result(finding: Finding, rule_index: dict[str, int], cluster: str | None) -> dict:
    if finding.location is not None and not finding.location[0].startswith("<"):
        uri, line, message = artifact_uri(finding.location[0]), finding.location[1], finding.message
    else:
        uri, line = pseudo_path(finding, cluster), 1
        message = f"{finding.object}: {finding.message}"
    result = {
        "ruleId": finding.rule,
        "level": LEVELS[finding.severity],
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": max(1, line)}},
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
    return result


def to_document(report: Report) -> dict:
    rules = sorted(report.rules, key=lambda r: r.id)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    notifications = [
        {"level": "error", "message": {"text": f"{e.get('rule') or e.get('file')}: {e['message']}"}} for e in report.errors
    ] + [
        {"level": "error", "message": {"text": f"not collected: {describe_gap(g)}"}} for g in report.not_collected
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mesh-audit",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "rules": [_rule_descriptor(r) for r in rules],
            }},
            "automationDetails": {"id": f"mesh-audit/{report.cluster_name}/" if report.cluster_name else "mesh-audit/"},
            "invocations": [{
                "executionSuccessful": not report.errors and report.complete,
                "toolExecutionNotifications": notifications,
            }],
            "properties": {"collection": report.collection},
            "results": [_result(f, rule_index, report.cluster_name) for f in report.findings],
        }],
    }


def render(report: Report) -> str:
    return orjson.dumps(to_document(report), option=orjson.OPT_INDENT_2).decode() + "\n"
