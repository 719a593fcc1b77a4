"""A pull-request comment: a summary line, then one collapsible section per rule, most
severe first.

The first line is an HTML comment marker, so a bot can find and update its earlier
comment instead of adding a new one on every push. A GitHub comment (and a step summary)
holds 65,536 characters: past that, the least severe findings give way to a line that
says how many more there are and where the full report is.
"""

from __future__ import annotations

import html
from itertools import groupby

from auditor.model.report import ObjectRef, Report, describe_gap
from auditor.reporters.view import PLAIN, View
from auditor.reporters.sarif import because
from auditor.core.words import plural, printable

_MARKDOWN = str.maketrans({c: f"\\{c}" for c in "\\`*_[]()!~|#"})


def code(text: str) -> str:
    """Text from the input as a code span (a name): no backtick to close it early, and a
    table's `|` escaped as GitHub reads it even there."""
    return "`" + printable(" ".join(text.splitlines())).replace("`", "'").replace("|", "\\|") + "`"


def escape_markdown(text: str) -> str:
    """GitHub-flavoured Markdown shows this as the text itself: HTML as entities, markup
    characters escaped."""
    return html.escape(text, quote=False).translate(_MARKDOWN)

MARKER = "<!-- mesh-audit -->"
ICONS = {"error": "🔴", "warning": "🟠", "info": "🔵"}
# GitHub's limit is 65,536 characters; a margin keeps UTF-16 counting of emoji inside it.
MAX_CHARS = 65_000


def cell(text: str) -> str:
    """Text from the input, shown as text in a comment: no HTML, links, images or
    emphasis it could smuggle in, no line breaks, no terminal escapes."""
    return escape_markdown(printable(" ".join(str(text).splitlines())))


def _header(report: Report) -> list[str]:
    counts = report.counts()
    version = f"Istio {report.istio_version}" if report.istio_version else "Istio version unknown"
    out = [MARKER, "## mesh-audit", ""]
    if not report.active:
        out.append(f"✅ No findings in {report.objects} objects ({version}).")
    else:
        summary = ", ".join(f"{ICONS[s]} {f'{counts[s]} info' if s == 'info' else plural(counts[s], s)}"
                            for s in ("error", "warning", "info") if counts[s])
        out.append(f"{summary} in {report.objects} objects ({version}).")
    suppressed = len(report.findings) - len(report.active)
    if suppressed:
        out.append(f"{suppressed} suppressed finding(s) not shown.")
    if report.baseline is not None:
        b = report.baseline
        out.append(f"Against the baseline: {b['new']} new, {b['unchanged']} unchanged, {len(b['fixed'])} fixed.")
    if report.change is not None:
        c = report.change
        out.append(f"Against the cluster it lands in, the change brings {len(c['added'])} added, "
                   f"{len(c['resolved'])} resolved finding(s).")
        out += [f"- resolved: {e['severity']} `{e['rule']}` on {cell(_ref(e['object']))}" for e in c["resolved"]]
    if not report.complete:
        out += ["", "> [!WARNING]", "> The scan is incomplete; findings may be missing for:"]
        out += [f"> - {cell(describe_gap(g))}" for g in report.not_collected]
    elif report.not_rendered:
        out += ["", "> [!NOTE]", "> Not rendered, so not audited:"]
        out += [f"> - {cell(n['path'])}: {cell(n['reason'])}" for n in report.not_rendered]
    return out


def _ref(o: dict) -> str:
    return str(ObjectRef(o.get("apiVersion", ""), o["kind"], o["namespace"], o["name"], o.get("cluster")))


def _row(f) -> str:
    where = code(f"{f.location[0]}:{f.location[1]}") if f.location else "cluster"
    new = " 🆕" if f.baseline_state == "new" else ""
    cause = f" (because of the change: {because(f)})" if f.causes else ""
    return f"| {cell(str(f.object))}{new} | {where} | {cell(f.message + cause)} |"


def render(report: Report, view: View = PLAIN) -> str:
    out = _header(report)
    size = sum(len(line) + 1 for line in out)
    titles = {r.id: r for r in report.rules}
    shown = 0
    for (severity, rule_id), group in groupby(report.active, key=lambda f: (f.severity, f.rule)):
        findings = list(group)
        rule = titles.get(rule_id)
        head = ["", "<details>", f"<summary>{ICONS[severity]} <b>{rule_id}</b>: {rule.title if rule else ''} "
                f"({len(findings)})</summary>", "", "| object | where | message |", "|---|---|---|"]
        tail = ["", f"**Fix:** {' '.join(rule.remediation.split())} ([docs]({rule.help_uri}))"] if rule else []
        tail += ["", "</details>"]
        rows = []
        budget = MAX_CHARS - size - _room_for_more(report, view) - sum(len(line) + 1 for line in head + tail)
        for f in findings:
            row = _row(f)
            if len(row) + 1 > budget:
                break
            rows.append(row)
            budget -= len(row) + 1
        if not rows:
            break
        out += head + rows + tail
        size += sum(len(line) + 1 for line in head + rows + tail)
        shown += len(rows)
        if len(rows) < len(findings):
            break
    if shown < len(report.active):
        out += ["", _more(view, len(report.active) - shown)]
    return "\n".join(out) + "\n"


def _room_for_more(report: Report, view: View) -> int:
    return len(_more(view, len(report.active))) + 4


def _more(view: View, hidden: int) -> str:
    where = f"the full report: {view.details_url}" if view.details_url else \
        "the full report: `mesh-audit scan -o table`, or the SARIF in code scanning"
    return (f"**{hidden:,} more finding{'s' if hidden != 1 else ''}** (less severe) do not fit in a comment's 65,536 "
            f"characters; see {where}.")
