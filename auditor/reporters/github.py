"""GitHub Actions workflow commands: each finding becomes an annotation on the file and
line of a pull request (`::error file=...,line=...,title=...::message`).

Findings on live objects, which have no file, are annotated without one. Suppressed
findings are left out; errors of the run itself are reported as `::error`.
"""

from __future__ import annotations

from auditor.report import Report, describe_gap
from auditor.reporters.sarif import artifact_uri, because
from auditor.words import printable, printable_lines

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(report: Report) -> str:
    out = []
    for f in report.active:
        props = []
        # A finding on a cluster object that a change causes sits on the change's line.
        where = f.location or next(((c["location"]["file"], c["location"]["line"]) for c in f.causes
                                    if c.get("location") and c["change"] != "deleted"), None)
        if where is not None and not where[0].startswith("<"):
            uri, relative = artifact_uri(where[0], report.repo_root)
            if relative:  # an annotation can only sit on a file of the repository
                props += [f"file={_prop(uri)}", f"line={where[1]}"]
        props.append(f"title={_prop(printable(f'{f.rule} ({f.object})'))}")
        message = printable_lines(f.message + (f" (because of the change: {because(f)})" if f.causes else ""))
        out.append(f"::{COMMANDS[f.severity]} {','.join(props)}::{_data(message)}")
    for e in report.errors:
        out.append(f"::error title=mesh-audit::{_data(printable_lines(e['message']))}")
    for g in report.not_collected:
        out.append(f"::error title=mesh-audit: not collected::{_data(printable(describe_gap(g)))}")
    counts = report.counts()
    change = f" added by the change ({len(report.change['resolved'])} resolved)" if report.change is not None else ""
    out.append(f"mesh-audit: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info{change} "
               f"in {report.objects} objects")
    return "\n".join(out) + "\n"
