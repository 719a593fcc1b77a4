"""A Plan as text: a `render_<format>(plan) -> str` for each plan format (auditor.plan.NAMES:
table, json, markdown, html)."""

from __future__ import annotations

import textwrap

import orjson
from tabulate import tabulate

from auditor.plan import html
from auditor.reporters.markdown import cell, code
from auditor.plan.model import BLOCKED, NEEDS_WAYPOINT, READY, NamespacePlan, Plan
from auditor.plan.text import cost_rows, summary_line, why
from auditor.core.words import plural, printable_lines, wrapped

MARKER = "<!-- mesh-audit plan -->"
ICONS = {READY: "🟢", NEEDS_WAYPOINT: "🟡", BLOCKED: "🔴"}
MAX_CHARS = 65_000  # a GitHub comment holds 65,536
WIDTH = 100


def render_table(plan: Plan, width: int | None = None) -> str:
    """The plan as text `width` columns wide (default WIDTH); the WHY column and notes wrap."""
    width = max(width or WIDTH, 60)
    rows = [(n.name, n.today, n.verdict, str(n.wave or "-"), str(len(n.workloads)), why(n)) for n in plan.namespaces]
    out = [_wrap(summary_line(plan), "", width), ""]
    if rows:
        headers = ["NAMESPACE", "TODAY", "VERDICT", "WAVE", "WORKLOADS", "WHY"]
        fixed = sum(max(len(headers[i]), *(len(r[i]) for r in rows)) + 2 for i in range(5))
        rows = [(*r[:5], wrapped(r[5], max(20, width - fixed))) for r in rows]
        out.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    else:
        out.append("No namespace to plan: nothing runs in sidecar mode (pass --include-unmeshed for namespaces "
                   "outside the mesh).")
    if plan.waves:
        out += ["", "Waves:"]
        for w in plan.waves:
            out.append(f"  {w.number}: {', '.join(w.namespaces)}")
            out += [_wrap(note, "       ", width) for note in w.order]
    for ns in plan.namespaces:
        details = _details(ns, width)
        if details:
            out += ["", f"{ns.name} ({ns.verdict}):", *details]
    if plan.namespaces:
        out += ["", "Cost (requested by pods; negative is saved):",
                tabulate(cost_rows(plan), headers=["", "CPU", "MEMORY"], tablefmt="simple")]
        out += [_wrap(note, "  ", width) for note in plan.cost.notes]
    if plan.skipped:
        out += ["", _wrap("Not planned: " + "; ".join(f"{s['namespace']} ({s['why']})" for s in plan.skipped), "", width)]
    if not plan.complete:
        out += ["", "Incomplete input: " + ", ".join(g.get("resource", "?") for g in plan.collection.get("not_collected") or [])
                + (f"; {plural(len(plan.errors), 'file')} did not load" if plan.errors else "")]
    if plan.verification is not None:
        out += ["", _verification_line(plan)]
    out += ["", _wrap("Rule details: mesh-audit rules show RULE; the change set: mesh-audit plan --emit DIR", "", width)]
    return printable_lines("\n".join(out)) + "\n"  # what the input wrote is shown, never obeyed


def _details(ns: NamespacePlan, width: int = WIDTH) -> list[str]:
    out = []
    for r in ns.reasons:
        stage = " (after the change set)" if r.stage == "after-changes" else ""
        out.append(_wrap(f"- {r.rule} [{r.migration}]{stage}: {r.object}: {r.message}", "    ", width))
    out += [_wrap(f"- waits for {h}", "    ", width) for h in ns.held_by]
    for c in ns.changes.changes if ns.changes and ns.verdict != BLOCKED else []:
        if c.action == "apply" and c.kind == "Namespace" and len(ns.changes.changes) == 1:
            continue
        out.append(_wrap(f"* {c.action} {c.ref()}" + (f" ({', '.join(c.fields)})" if c.fields else "") + f": {c.why}",
                         "    ", width))
    return out


def _wrap(text: str, indent: str, width: int = WIDTH) -> str:
    return textwrap.fill(text, width, initial_indent=indent[:-2] + "  " if indent else "", subsequent_indent=indent + "  ",
                         break_on_hyphens=False)


def _verification_line(plan: Plan) -> str:
    v = plan.verification
    if v["ok"]:
        return f"Verified: with the change set applied wave by wave, no new error or warning ({len(v['waves'])} waves)."
    lines = ["Verification failed:"]
    for w in v["waves"]:
        lines += [f"  wave {w['wave']}: {f['severity']} {f['rule']} {f['object']}: {f['message']}" for f in w["new_findings"]]
        lines += [f"  wave {w['wave']}: {gap}" for gap in w["gaps"]]
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return orjson.dumps(plan.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def render_markdown(plan: Plan) -> str:
    out = [MARKER, "## mesh-audit plan: moving to ambient", "", summary_line(plan) + ".", ""]
    if plan.namespaces:
        out += ["| namespace | today | verdict | wave | why |", "|---|---|---|---|---|"]
        out += [f"| {code(n.name)} | {n.today} | {ICONS[n.verdict]} {n.verdict} | {n.wave or '–'} | {cell(why(n))} |"
                for n in plan.namespaces]
        out.append("")
    if plan.waves:
        out += ["### Waves", ""]
        for w in plan.waves:
            out.append(f"{w.number}. {', '.join(code(n) for n in w.namespaces)}" +
                       ("".join(f"<br>{cell(note)}" for note in w.order)))
        out.append("")
    details = []
    for ns in plan.namespaces:
        if ns.reasons or ns.held_by or (ns.changes and len(ns.changes.changes) > 1 and ns.verdict != BLOCKED):
            details += [f"<details><summary><code>{cell(ns.name)}</code>: {ns.verdict}</summary>", ""]
            details += [f"- `{r.rule}` ({r.migration}{', after the change set' if r.stage == 'after-changes' else ''}): "
                        f"{cell(r.object)}: {cell(r.message)}" for r in ns.reasons]
            details += [f"- waits for {cell(h)}" for h in ns.held_by]
            details += [f"- {c.action} {cell(c.ref())}: {cell(c.why)}" for c in ns.changes.changes] \
                if ns.changes and ns.verdict != BLOCKED else []
            details += ["", "</details>", ""]
    out += details
    if plan.namespaces:
        out += ["### Cost (requests)", "", "| | CPU | memory |", "|---|---|---|"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in cost_rows(plan)]
        out += [""] + [f"- {note}" for note in plan.cost.notes] + [""]
    if plan.verification is not None:
        out += [_verification_line(plan), ""]
    text = "\n".join(out)
    if len(text) > MAX_CHARS:
        cut = text[:MAX_CHARS - 200].rsplit("\n", 1)[0]
        text = cut + "\n\n… cut to fit a comment: run `mesh-audit plan -o markdown=FILE` for the whole plan.\n"
    return text


def render_html(plan: Plan) -> str:
    return html.render(plan)
