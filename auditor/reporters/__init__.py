"""Output formats. Each module renders a Report to text: `render(report) -> str`."""

from __future__ import annotations

from auditor.reporters import github, json_report, junit, markdown, policyreport, sarif, table

REPORTERS = {
    "table": table.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "markdown": markdown.render,
    "github": github.render,
    "policyreport": policyreport.render_as("policyreport"),
    "openreports": policyreport.render_as("openreports"),
}
