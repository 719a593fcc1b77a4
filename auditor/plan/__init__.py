"""`mesh-audit plan`: which namespaces can move to ambient, what blocks the rest, the
change set that makes the move, the order to move in, and what it costs.

    from auditor import api

    plan = api.plan(api.load(["k8s/"]))
    for ns in plan.namespaces:
        print(ns.name, ns.verdict, ns.wave, [r.rule for r in ns.reasons])

Modules: moves (what a move does to the objects), whatif (auditing changed copies of
the cluster), changes (the change set), waves (ordering by callers), cost (requests
saved and added), planner (putting it together), verify and emit (writing the change
set and re-auditing it), model (the Plan), render (table, JSON, Markdown, HTML).
"""

from importlib import import_module

# Format -> the function of auditor.plan.render that writes it (imported when first used,
# so that the command line names the formats without loading them).
_FORMATS = {"table": "render_table", "json": "render_json", "markdown": "render_markdown", "html": "render_html"}
NAMES = tuple(_FORMATS)


def renderer(fmt: str):
    """The `render(plan) -> str` of the plan format `fmt` (one of NAMES); table's also takes `width`."""
    return getattr(import_module("auditor.plan.render"), _FORMATS[fmt])
