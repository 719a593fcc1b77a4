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
