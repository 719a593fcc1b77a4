"""The plan as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

Sections: the namespaces and their verdicts, the waves, the cost compared in a chart,
each namespace in detail (reasons linking to the rules cited, changes, workloads,
callers), and the rules cited with why they matter and how to fix them.
"""

from __future__ import annotations

from html import escape

from auditor import __version__
from auditor.plan.model import BLOCKED, NEEDS_WAYPOINT, READY, NamespacePlan, Plan
from auditor.plan.text import cost_rows, cpu, memory, summary_line, why

COLORS = {READY: "#1a7f37", NEEDS_WAYPOINT: "#9a6700", BLOCKED: "#cf222e"}
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 12px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:17px;margin:20px 0 8px}
.muted{color:#59636e}.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;margin:12px 0}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6}.badge{display:inline-block;border-radius:12px;padding:1px 10px;color:#fff;font-weight:600;font-size:13px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;background:#eff1f3;border-radius:4px;padding:1px 4px}
ol.waves{padding-left:20px}ol.waves li{margin:6px 0}.charts{display:flex;flex-wrap:wrap;gap:16px}
.reason{margin:4px 0}a{color:#0969da}
"""


def render(plan: Plan) -> str:
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mesh-audit plan: moving to ambient</title>", f"<style>{STYLE}</style>", "</head>", "<body>", "<main>",
        "<h1>Moving to Istio ambient mode</h1>",
        f'<p class="muted">{escape(summary_line(plan))}. Made by mesh-audit {escape(__version__)}.</p>',
        _overview(plan), _waves(plan), _cost(plan),
        "<h2>Namespaces in detail</h2>", *(_namespace(n) for n in plan.namespaces), _rules(plan),
        "</main>", "</body>", "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _badge(verdict: str) -> str:
    return f'<span class="badge" style="background:{COLORS[verdict]}">{escape(verdict)}</span>'


def _overview(plan: Plan) -> str:
    counts = plan.counts()
    total = max(1, len(plan.namespaces))
    x, bars = 0.0, []
    for verdict in (READY, NEEDS_WAYPOINT, BLOCKED):
        width = 600 * counts[verdict] / total
        if width:
            bars.append(f'<rect x="{x:.1f}" y="0" width="{width:.1f}" height="28" fill="{COLORS[verdict]}"/>'
                        f'<text x="{x + 6:.1f}" y="19" fill="#fff" font-size="13">{counts[verdict]} {verdict}</text>')
        x += width
    chart = (f'<svg role="img" aria-label="namespaces by verdict" width="600" height="28" viewBox="0 0 600 28">'
             f'{"".join(bars)}</svg>') if plan.namespaces else ""
    rows = "".join(
        f'<tr><td><a href="#ns-{escape(n.name)}"><code>{escape(n.name)}</code></a></td><td>{escape(n.today)}</td>'
        f"<td>{_badge(n.verdict)}</td><td>{n.wave or '–'}</td><td>{len(n.workloads)}</td><td>{escape(why(n))}</td></tr>"
        for n in plan.namespaces)
    table = ("<table><thead><tr><th>namespace</th><th>today</th><th>verdict</th><th>wave</th><th>workloads</th>"
             f"<th>why</th></tr></thead><tbody>{rows}</tbody></table>") if plan.namespaces else \
        "<p>No namespace runs in sidecar mode: nothing to plan.</p>"
    skipped = ""
    if plan.skipped:
        skipped = '<p class="muted">Not planned: ' + "; ".join(
            f"<code>{escape(s['namespace'])}</code> ({escape(s['why'])})" for s in plan.skipped) + "</p>"
    return f'<h2 id="overview">Namespaces</h2><div class="card">{chart}{table}{skipped}</div>'


def _waves(plan: Plan) -> str:
    if not plan.waves and not any(n.held_by for n in plan.namespaces):
        return ""
    items = []
    for w in plan.waves:
        notes = "".join(f"<br><span class=\"muted\">{escape(note)}</span>" for note in w.order)
        names = ", ".join(f'<a href="#ns-{escape(n)}"><code>{escape(n)}</code></a>' for n in w.namespaces)
        items.append(f"<li>Wave {w.number}: {names}{notes}</li>")
    held = [n for n in plan.namespaces if n.held_by]
    tail = "".join(f"<p><code>{escape(n.name)}</code> is held: it waits for {escape('; '.join(n.held_by))}</p>" for n in held)
    return f'<h2 id="waves">Waves</h2><div class="card"><ol class="waves">{"".join(items)}</ol>{tail}</div>'


def _cost(plan: Plan) -> str:
    if not plan.namespaces:
        return ""
    c = plan.cost
    ztunnel = c.ztunnel if not c.ztunnel_installed else None
    charts = [
        _bars("CPU (millicores requested)", c.sidecars.cpu_millis, c.waypoints.cpu_millis,
              ztunnel.cpu_millis if ztunnel else 0, cpu),
        _bars("Memory (requested)", c.sidecars.memory_bytes, c.waypoints.memory_bytes,
              ztunnel.memory_bytes if ztunnel else 0, memory),
    ]
    rows = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(m)}</td></tr>" for a, b, m in cost_rows(plan))
    notes = "".join(f"<li>{escape(n)}</li>" for n in c.notes)
    return (f'<h2 id="cost">Cost</h2><div class="card"><div class="charts">{"".join(charts)}</div>'
            f"<table><thead><tr><th></th><th>CPU</th><th>memory</th></tr></thead><tbody>{rows}</tbody></table>"
            f'<ul class="muted">{notes}</ul></div>')


def _bars(title: str, sidecars: int, waypoints: int, ztunnel: int, fmt) -> str:
    """Sidecars today against what ambient adds (waypoints, then ztunnel, stacked)."""
    top = max(1, sidecars, waypoints + ztunnel)
    height, base = 150, 200

    def bar(x: int, value: int, y0: float, color: str) -> tuple[str, float]:
        h = height * value / top
        return f'<rect x="{x}" y="{y0 - h:.1f}" width="90" height="{h:.1f}" fill="{color}"/>', y0 - h

    today, _ = bar(40, sidecars, base, "#8250df")
    added_w, y = bar(190, waypoints, base, "#9a6700")
    added_z, y = bar(190, ztunnel, y, "#0969da")
    labels = (f'<text x="85" y="{base + 18}" text-anchor="middle" font-size="12">sidecars today</text>'
              f'<text x="235" y="{base + 18}" text-anchor="middle" font-size="12">ambient adds</text>'
              f'<text x="85" y="{base - height * sidecars / top - 6:.1f}" text-anchor="middle" font-size="12">'
              f"{escape(fmt(sidecars))}</text>"
              f'<text x="235" y="{y - 6:.1f}" text-anchor="middle" font-size="12">{escape(fmt(waypoints + ztunnel))}</text>')
    legend = ('<rect x="300" y="40" width="10" height="10" fill="#9a6700"/><text x="314" y="49" font-size="11">waypoints</text>'
              '<rect x="300" y="58" width="10" height="10" fill="#0969da"/><text x="314" y="67" font-size="11">ztunnel</text>')
    return (f'<svg role="img" aria-label="{escape(title)}" width="380" height="230" viewBox="0 0 380 230">'
            f'<text x="10" y="16" font-size="13" font-weight="600">{escape(title)}</text>'
            f'<line x1="20" y1="{base}" x2="290" y2="{base}" stroke="#d0d7de"/>{today}{added_w}{added_z}{labels}{legend}</svg>')


def _namespace(ns: NamespacePlan) -> str:
    reasons = "".join(
        f'<div class="reason"><a href="#rule-{escape(r.rule)}"><code>{escape(r.rule)}</code></a> '
        f"({escape(r.migration)}{', after the change set' if r.stage == 'after-changes' else ''}) "
        f"<b>{escape(r.object)}</b>: {escape(r.message)}</div>" for r in ns.reasons)
    held = "".join(f"<p>Waits for {escape(h)}</p>" for h in ns.held_by)
    changes = "".join(f"<li><b>{escape(c.action)}</b> {escape(c.ref())}"
                      f"{' (' + escape(', '.join(c.fields)) + ')' if c.fields else ''}: {escape(c.why)}</li>"
                      for c in (ns.changes.changes if ns.changes else []))
    workloads = "".join(f"<tr><td>{escape(w.name)}</td><td>{escape(w.mode)}</td><td>{w.pods}</td><td>{_badge(w.verdict)}</td>"
                        f"<td>{escape(', '.join(w.rules)) or '–'}</td></tr>" for w in ns.workloads)
    callers = "".join(f"<li><code>{escape(c.namespace)}</code>: {escape(c.evidence)}</li>" for c in ns.callers)
    return (f'<section id="ns-{escape(ns.name)}" class="card"><h3><code>{escape(ns.name)}</code> {_badge(ns.verdict)}'
            f"{' wave ' + str(ns.wave) if ns.wave else ''}</h3>"
            f'<p class="muted">Today: {escape(ns.today)}. Sidecars request {escape(cpu(ns.sidecars.cpu_millis))} CPU and '
            f"{escape(memory(ns.sidecars.memory_bytes))}.</p>"
            f"{reasons or '<p>Nothing is lost by moving.</p>'}{held}"
            f"{'<h4>Changes</h4><ul>' + changes + '</ul>' if changes else ''}"
            f"{'<h4>Callers</h4><ul>' + callers + '</ul>' if callers else ''}"
            f"{'<h4>Workloads</h4><table><thead><tr><th>workload</th><th>mode today</th><th>pods</th><th>verdict</th><th>rules</th></tr></thead><tbody>' + workloads + '</tbody></table>' if workloads else ''}"
            "</section>")


def _rules(plan: Plan) -> str:
    if not plan.rules:
        return ""
    items = "".join(
        f'<section id="rule-{escape(rid)}" class="card"><h3><code>{escape(rid)}</code> {escape(r["title"])}</h3>'
        f'<p class="muted">In a plan: {escape(r["migration"])}</p><p>{escape(r["rationale"])}</p>'
        f'<p><b>Fix:</b> {escape(r["remediation"])}</p><p><a href="{escape(r["reference"])}">{escape(r["reference"])}</a></p>'
        "</section>" for rid, r in sorted(plan.rules.items()))
    return f'<h2 id="rules">Rules cited</h2>{items}'
