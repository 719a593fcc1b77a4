"""A pull-request comment: a summary line, then one collapsible section per rule.

The first line is an HTML comment marker, so a bot can find and update its earlier
comment instead of adding a new one on every push.
"""

from __future__ import annotations

from itertools import groupby

from auditor.report import Report, describe_gap

MARKER = "<!-- mesh-audit -->"
ICONS = {"error": "🔴", "warning": "🟠", "info": "🔵"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    counts = report.counts()
    version = f"Istio {report.istio_version}" if report.istio_version else "Istio version unknown"
    out = [MARKER, "## mesh-audit", ""]
    if not report.active:
        out.append(f"✅ No findings in {report.objects} objects ({version}).")
    else:
        summary = ", ".join(f"{ICONS[s]} {counts[s]} {s}" for s in ("error", "warning", "info") if counts[s])
        out.append(f"{summary} in {report.objects} objects ({version}).")
    suppressed = len(report.findings) - len(report.active)
    if suppressed:
        out.append(f"{suppressed} suppressed finding(s) not shown.")
    if report.baseline is not None:
        b = report.baseline
        out.append(f"Against the baseline: {b['new']} new, {b['unchanged']} unchanged, {len(b['fixed'])} fixed.")
    if not report.complete:
        out += ["", "> [!WARNING]", "> The scan is incomplete; findings may be missing for:"]
        out += [f"> - {_cell(describe_gap(g))}" for g in report.not_collected]
    titles = {r.id: r for r in report.rules}
    for (severity, rule_id), group in groupby(report.active, key=lambda f: (f.severity, f.rule)):
        findings = list(group)
        rule = titles.get(rule_id)
        title = rule.title if rule else ""
        out += ["", "<details>", f"<summary>{ICONS[severity]} <b>{rule_id}</b>: {title} ({len(findings)})</summary>", ""]
        out += ["| object | where | message |", "|---|---|---|"]
        for f in findings:
            where = f"`{f.location[0]}:{f.location[1]}`" if f.location else "cluster"
            new = " 🆕" if f.baseline_state == "new" else ""
            out.append(f"| {_cell(str(f.object))}{new} | {where} | {_cell(f.message)} |")
        if rule:
            out += ["", f"**Fix:** {' '.join(rule.remediation.split())} ([docs]({rule.help_uri}))"]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"
