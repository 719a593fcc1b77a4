"""GitHub Actions workflow commands: each finding becomes an annotation on the file and
line of a pull request (`::error file=...,line=...,title=...::message`).

Findings on live objects, which have no file, are annotated without one. Suppressed
findings are left out; errors of the run itself are reported as `::error`. GitHub shows
at most ten annotations of each kind per step: past that, the ones on files of the
pull request come first, and a line says how many more there are (the step summary and
the SARIF report hold them all).
"""

from __future__ import annotations

from auditor.model.report import Report, describe_gap
from auditor.reporters.view import PLAIN, View
from auditor.reporters.sarif import artifact_uri, because
from auditor.core.words import printable, printable_lines

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}
SHOWN_PER_KIND = 10  # annotations of each kind GitHub shows for one step


def _place(f, report: Report) -> list[str]:
    """`file=...,line=...` of an annotation, on a file of the repository; [] where there is none."""
    # A finding on a cluster object that a change causes sits on the change's line.
    where = f.location or next(((c["location"]["file"], c["location"]["line"]) for c in f.causes
                                if c.get("location") and c["change"] != "deleted"), None)
    if where is None or where[0].startswith("<"):
        return []
    uri, relative = artifact_uri(where[0], report.repo_root)
    return [f"file={_prop(uri)}", f"line={where[1]}"] if relative else []  # only a repository file holds one


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(report: Report, view: View = PLAIN) -> str:
    out = []
    placed = [(f, _place(f, report)) for f in report.active]
    kept: dict[str, int] = {}
    shown: set[int] = set()
    for f, props in sorted(placed, key=lambda item: not item[1]):  # on a file of the repository first
        if kept.get(f.severity, 0) < SHOWN_PER_KIND:
            kept[f.severity] = kept.get(f.severity, 0) + 1
            shown.add(id(f))
    for f, props in placed:
        if id(f) not in shown:
            continue
        props = [*props, f"title={_prop(printable(f'{f.rule} ({f.object})'))}"]
        message = printable_lines(f.message + (f" (because of the change: {because(f)})" if f.causes else ""))
        out.append(f"::{COMMANDS[f.severity]} {','.join(props)}::{_data(message)}")
    for e in report.errors:
        out.append(f"::error title=mesh-audit::{_data(printable_lines(e['message']))}")
    for g in report.not_collected:
        out.append(f"::error title=mesh-audit: not collected::{_data(printable(describe_gap(g)))}")
    hidden = len(placed) - len(shown)
    if hidden:
        out.append(f"mesh-audit: {hidden} more finding{'s are' if hidden != 1 else ' is'} not annotated (GitHub shows "
                   f"{SHOWN_PER_KIND} of each severity per step); the step summary and the SARIF report list every one")
    counts = report.counts()
    change = f" added by the change ({len(report.change['resolved'])} resolved)" if report.change is not None else ""
    out.append(f"mesh-audit: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info{change} "
               f"in {report.objects} objects")
    return "\n".join(out) + "\n"
