"""Versioned JSON: the contract for scripts. Keys sorted, findings in a fixed order.

`schema_version` changes only when an existing key changes meaning or goes away;
new keys may appear at any version (auditor/schemas/report.schema.json).
"""

from __future__ import annotations

import orjson

from auditor.model.report import Report
from auditor.reporters.view import PLAIN, View

SCHEMA_VERSION = 1


def to_document(report: Report) -> dict:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mesh-audit", "version": report.tool_version},
        "summary": report.summary(),
        "findings": [f.to_dict() for f in report.findings],
        "errors": report.errors,
        "warnings": report.warnings,
        "collection": report.collection,
        "baseline": report.baseline,
        "comparison": report.comparison,
        "unused_exemptions": report.unused_exemptions,
    }
    if report.change is not None:  # --changes-only: what the change adds and resolves
        doc["change"] = report.change
    return doc


def render(report: Report, view: View = PLAIN) -> str:
    return orjson.dumps(to_document(report), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
