"""Output formats. Each module renders a Report to text: `render(report, view) -> str`,
`view` being how the reader asked to see it (auditor.reporters.view)."""

from __future__ import annotations

from auditor.model.report import Report
from auditor.reporters import github, json_report, junit, markdown, policyreport, sarif, table
from auditor.reporters.view import PLAIN, View

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


def render(fmt: str, report: Report, view: View = PLAIN) -> str:
    """`report` in the output format `fmt` (a key of REPORTERS)."""
    return REPORTERS[fmt](report, view)
