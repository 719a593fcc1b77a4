"""Human-readable output: findings grouped by rule, most severe first, then a summary line."""

from __future__ import annotations

from itertools import groupby

from tabulate import tabulate

from auditor.report import Report, describe_gap

MESSAGE_WIDTH = 70


def _location(finding) -> str:
    if finding.location is None:
        return "-"
    return f"{finding.location[0]}:{finding.location[1]}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 or word == "info" else f"{n} {word}s"


def summary_line(report: Report) -> str:
    counts = report.counts()
    parts = ", ".join(_plural(counts[s], s) for s in ("error", "warning", "info"))
    version = f"Istio {report.istio_version}" if report.istio_version else "Istio version unknown (all rules applied)"
    line = f"{parts} in {_plural(report.objects, 'object')}; {_plural(len(report.rules), 'rule')}; {version}"
    if not report.complete:
        line += f"; INCOMPLETE: {len(report.not_collected)} not collected"
    return line


def render(report: Report) -> str:
    titles = {r.id: r.title for r in report.rules}
    out: list[str] = []
    for rule_id, group in groupby(report.findings, key=lambda f: (f.severity, f.rule)):
        findings = list(group)
        severity, rule = rule_id
        out.append(f"{severity.upper()}  {rule}  {titles.get(rule, '')}  ({len(findings)})")
        rows = [[str(f.object) + (f" ({f.pods} pods)" if f.pods > 1 else ""), _location(f), f.message] for f in findings]
        table = tabulate(rows, headers=["OBJECT", "LOCATION", "MESSAGE"], tablefmt="simple", maxcolwidths=[None, None, MESSAGE_WIDTH])
        out.append("\n".join("  " + line for line in table.splitlines()))
        out.append("")
    if not report.findings:
        out.append("No findings.")
        out.append("")
    for err in report.errors:
        where = f"{err['file']}:{err['line']}: " if err.get("file") else ""
        subject = f"{err['rule']} on {err['object']}: " if err.get("rule") else ""
        out.append(f"error: {where}{subject}{err['message']}")
    if report.errors:
        out.append("")
    if report.not_collected:
        out.append("Not collected (findings may be missing for these):")
        out.extend(f"  {describe_gap(g)}" for g in report.not_collected)
        out.append("")
    out.append(summary_line(report))
    return "\n".join(out) + "\n"
