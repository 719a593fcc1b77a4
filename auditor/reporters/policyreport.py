"""Findings as in-cluster report objects: where Kyverno, Trivy Operator and Policy Reporter
users already look (`kubectl get polr -A`).

Two flavours of the same content:
- `policyreport`: `wgpolicyk8s.io/v1alpha2` PolicyReport per namespace, ClusterPolicyReport
  for cluster-scoped findings (kubernetes-sigs/wg-policy-prototypes, as Kyverno ships it);
- `openreports`: `openreports.io/v1alpha1` Report and ClusterReport (openreports/reports-api).

Each report is named `mesh-audit`, labelled `app.kubernetes.io/managed-by: mesh-audit`, and
holds one result per finding: `policy` is the rule id, `result` is `fail` for an error and
`warn` otherwise, `severity` maps error/warning/info to high/medium/info. Suppressed
findings are left out, as they are from the exit code. Namespaces without findings get no
report (`serve` deletes the one it wrote before). `render` writes them as a YAML stream for
`kubectl apply -f`.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from auditor.model.report import Finding, Report
from auditor.reporters.view import PLAIN, View

NAME = "mesh-audit"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mesh-audit"}
SEVERITY = {"error": "high", "warning": "medium", "info": "info"}
RESULT = {"error": "fail", "warning": "warn", "info": "warn"}


@dataclass(frozen=True)
class Flavour:
    api_version: str
    kind: str  # namespaced
    cluster_kind: str
    plural: str
    cluster_plural: str
    sourced: bool = False  # the report itself names its source (openreports.io has the field)

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0]


FLAVOURS = {
    "policyreport": Flavour("wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport",
                            "policyreports", "clusterpolicyreports"),
    "openreports": Flavour("openreports.io/v1alpha1", "Report", "ClusterReport", "reports", "clusterreports",
                           sourced=True),
}


def build(report: Report, flavour: str = "policyreport", uids: dict | None = None, now: float | None = None) -> list[dict]:
    """The report objects for a Report's findings: one per namespace with findings, then one
    cluster-wide for findings on cluster-scoped objects, each with its results sorted.
    `uids` maps (apiVersion, kind, namespace, name) to the object's uid where it is known."""
    kind = FLAVOURS[flavour]
    rules = {r.id: r for r in report.rules}
    by_namespace: dict[str | None, list[dict]] = {}
    for finding in report.findings:
        if finding.suppressed:
            continue
        by_namespace.setdefault(finding.object.namespace or None, []).append(
            _result(finding, rules.get(finding.rule), uids or {}, now))
    out = []
    for namespace in sorted(n for n in by_namespace if n is not None):
        out.append(_report(kind, kind.kind, namespace, by_namespace[namespace]))
    if None in by_namespace:
        out.append(_report(kind, kind.cluster_kind, None, by_namespace[None]))
    return out


def render_as(flavour: str):
    def render(report: Report, view: View = PLAIN) -> str:
        docs = build(report, flavour)
        if not docs:
            return ""
        return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)

    return render


def _report(kind: Flavour, object_kind: str, namespace: str | None, results: list[dict]) -> dict:
    metadata = {"name": NAME, **({"namespace": namespace} if namespace is not None else {}), "labels": dict(MANAGED_BY)}
    results.sort(key=lambda r: (r["policy"], [(x.get("kind"), x.get("name")) for x in r.get("resources", [])], r["message"]))
    summary = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    for r in results:
        summary[r["result"]] += 1
    doc = {"apiVersion": kind.api_version, "kind": object_kind, "metadata": metadata}
    if kind.sourced:
        doc["source"] = NAME
    doc["summary"] = summary
    doc["results"] = results
    return doc


def _result(finding: Finding, rule, uids: dict, now: float | None) -> dict:
    o = finding.object
    resource = {"apiVersion": o.api_version, "kind": o.kind, "name": o.name}
    if o.namespace:
        resource["namespace"] = o.namespace
    uid = uids.get((o.api_version, o.kind, o.namespace or None, o.name))
    if uid:
        resource["uid"] = uid
    result = {
        "source": NAME,
        "policy": finding.rule,
        "result": RESULT[finding.severity],
        "severity": SEVERITY[finding.severity],
        "scored": True,
        "message": finding.message,
        "resources": [resource],
    }
    if rule is not None:
        result["category"] = rule.category
        properties = {"title": rule.title, "docs": rule.help_uri, "confidence": finding.confidence}
        if finding.location:
            properties["location"] = f"{finding.location[0]}:{finding.location[1]}"
        result["properties"] = properties
    if now is not None:
        result["timestamp"] = {"seconds": int(now), "nanos": 0}
    return result
