"""Output formats. Each module renders a Report to text: `render(report) -> str`."""

from __future__ import annotations

from auditor.reporters import json_report, sarif, table

REPORTERS = {
    "table": table.render,
    "json": json_report.render,
    "sarif": sarif.render,
}
