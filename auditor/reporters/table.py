"""Human-readable output: findings grouped by rule, most severe first, then a summary line.
On a terminal the CLI asks for color: each group's heading in its severity's color."""

from __future__ import annotations

import textwrap
from itertools import groupby

import click

from auditor.model.report import ObjectRef, Report, describe_gap
from auditor.reporters.view import PLAIN, View
from auditor.reporters.sarif import because
from auditor.core.words import printable, printable_lines, wrapped

WIDTH = 100  # a report written to a file or a pipe; a terminal's own width otherwise
MIN_WIDTH = 60
MESSAGE_MIN = 30
COLOURS = {"error": "red", "warning": "yellow", "info": "blue"}


def _location(finding) -> str:
    if finding.location is None:
        return "-"
    return printable(f"{finding.location[0]}:{finding.location[1]}")


def _message(f) -> str:
    notes = [f"suppressed: {s['justification']}" for s in f.suppressions]
    if f.baseline_state == "unchanged":
        notes.append("in baseline")
    message = printable(f.message + (f" [{'; '.join(notes)}]" if notes else ""))
    return message + (f"\nbecause of: {printable(because(f))}" if f.causes else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 or word == "info" else f"{n} {word}s"


def summary_line(report: Report) -> str:
    counts = report.counts()
    parts = ", ".join(_plural(counts[s], s) for s in ("error", "warning", "info"))
    version = f"Istio {report.istio_version}" if report.istio_version else "Istio version unknown (all rules applied)"
    line = f"{parts} in {_plural(report.objects, 'object')}; {_plural(len(report.rules), 'rule')}; {version}"
    suppressed = len(report.findings) - len(report.active)
    if suppressed:
        line += f"; {suppressed} suppressed"
    if report.baseline is not None:
        b = report.baseline
        line += f"; baseline: {b['new']} new, {b['unchanged']} unchanged, {len(b['fixed'])} fixed"
    if report.change is not None:
        line += f"; change: {len(report.change['added'])} added, {len(report.change['resolved'])} resolved"
    if not report.complete:
        line += f"; INCOMPLETE: {len(report.not_collected)} not collected"
    return line


def _comparison(report: Report) -> list[str]:
    c = report.comparison
    out = [f"Upgrade from Istio {c['current']} to {c['target']}: {len(c['added'])} added, "
           f"{len(c['removed'])} removed, {len(c['severity_changed'])} with another severity"]
    for label, entries in (("+", c["added"]), ("-", c["removed"])):
        out += [f"  {label} {e['severity']}  {e['rule']}  {_ref(e['object'])}" for e in entries]
    out += [f"  ~ {e['was']} -> {e['severity']}  {e['rule']}  {_ref(e['object'])}" for e in c["severity_changed"]]
    return out + [""]


def _ref(o: dict) -> str:
    """An object written as a report's dicts hold it, named as findings name objects."""
    return str(ObjectRef(o.get("apiVersion", ""), o["kind"], o["namespace"], o["name"], o.get("cluster")))


def render(report: Report, view: View = PLAIN) -> str:
    """The report as a table `width` columns wide (default WIDTH): long messages and paths
    wrap at word boundaries inside their column, headings and notes below them."""
    width, color = max(view.width or WIDTH, MIN_WIDTH), view.color
    titles = {r.id: r.title for r in report.rules}
    headings: dict[str, str] = {}  # heading line -> severity, colored once the rest is made printable
    out: list[str] = []
    tables: set[int] = set()  # lines already laid out to the width
    shown = report.findings if view.show_suppressed else report.active
    for rule_id, group in groupby(shown, key=lambda f: (f.severity, f.rule)):
        findings = list(group)
        severity, rule = rule_id
        for line in _wrap(printable(f"{severity.upper()}  {rule} ({len(findings)})  {titles.get(rule, '')}"), width):
            headings[line] = severity
            out.append(line)
        rows = [[printable(str(f.object)) + (f" ({f.pods} pods)" if f.pods > 1 else ""), _location(f), _message(f)]
                for f in findings]
        table = _table(rows, width)
        tables.update(range(len(out), len(out) + len(table)))
        out += table
        out.append("")
    if not shown:
        out.append("No findings.")
        out.append("")
    if report.comparison is not None:
        out += _comparison(report)
    if report.change is not None and report.change["resolved"]:
        out.append("Resolved by the change:")
        out += [f"  {e['severity']}  {e['rule']}  {_ref(e['object'])}" for e in report.change["resolved"]]
        out.append("")
    if report.baseline is not None and report.baseline["fixed"]:
        out.append(f"Fixed since the baseline ({report.baseline['file']}):")
        out += [f"  {e['rule']}  {_ref(e)}" for e in report.baseline["fixed"]]
        out.append("")
    for err in report.errors:
        where = (f"{err['file']}:{err['line']}: " if err.get("line") else f"{err['file']}: ") if err.get("file") else ""
        subject = f"{err['rule']} on {err['object']}: " if err.get("rule") else ""
        out.append(f"error: {where}{subject}{err['message']}")
    if report.errors:
        out.append("")
    if report.not_collected:
        out.append("Not collected (findings may be missing for these):")
        out.extend(f"  {describe_gap(g)}" for g in report.not_collected)
        out.append("")
    elif report.not_rendered:
        out.append("Not rendered, so not audited:")
        out.extend(f"  {n['path']}: {n['reason']}" for n in report.not_rendered)
        out.append("")
    out.append(summary_line(report))
    lines = []
    for i, entry in enumerate(out):
        if i in tables or entry in headings:  # made printable and laid out to the width above
            lines.append(entry)
            continue
        for line in printable_lines(entry).split("\n"):  # what the input wrote is shown, never obeyed
            lines += _wrap(line, width)
    if color:
        lines = [click.style(line, fg=COLOURS[headings[line]], bold=headings[line] == "error") if line in headings
                 else line for line in lines]
    return "\n".join(lines) + "\n"


def _table(rows: list[list[str]], width: int) -> list[str]:
    """OBJECT, LOCATION and MESSAGE columns within `width` (two spaces of indent, two
    between columns) when names and paths fit whole and the message keeps MESSAGE_MIN
    columns; otherwise each finding as its object and location, the message below."""
    widest = [max(len(line) for r in rows for line in r[i].split("\n")) for i in range(2)]
    obj, loc = max(widest[0], len("OBJECT")), max(widest[1], len("LOCATION"))
    msg = width - 6 - obj - loc
    if msg < MESSAGE_MIN:
        return _stacked(rows, width)
    from tabulate import tabulate  # imported here: a scan that writes no table does not pay for it

    cells = [[o, l, wrapped(m, msg)] for o, l, m in rows]
    lines = ["  " + line for line in tabulate(cells, headers=["OBJECT", "LOCATION", "MESSAGE"], tablefmt="simple",
                                              disable_numparse=True).splitlines()]
    return lines if max(len(line) for line in lines) <= width else _stacked(rows, width)  # a word wider than its column


def _stacked(rows: list[list[str]], width: int) -> list[str]:
    out = []
    for obj, loc, message in rows:
        head = f"  {obj}  {loc}" if loc != "-" else f"  {obj}"
        out += _wrap(head, width)
        for part in message.split("\n"):
            out += textwrap.wrap(part, width, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False)
    return out


def _wrap(line: str, width: int) -> list[str]:
    """A line of prose at word boundaries, continued two spaces further in (a word wider than
    the whole line, a long path, is the one thing cut)."""
    if len(line) <= width:
        return [line]
    indent = line[:len(line) - len(line.lstrip())]
    return textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_on_hyphens=False)
