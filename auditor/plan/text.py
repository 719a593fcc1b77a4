"""Words and numbers every plan format shares: quantities, the verdict in a few words,
the summary line and the cost rows."""

from __future__ import annotations

from auditor.plan.model import BLOCKED, NEEDS_WAYPOINT, READY, NamespacePlan, Plan, Resources
from auditor.core.words import plural


def cpu(millis: int) -> str:
    sign = "-" if millis < 0 else ""
    millis = abs(millis)
    return f"{sign}{millis / 1000:g}" if millis % 1000 == 0 and millis else f"{sign}{millis}m"


def memory(value: int) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value >= size:
            return f"{sign}{value / size:.1f}".rstrip("0").rstrip(".") + unit
    return f"{sign}{value}"


def resources(r: Resources) -> str:
    return f"{cpu(r.cpu_millis)} CPU, {memory(r.memory_bytes)}"


def why(ns: NamespacePlan) -> str:
    """The namespace's verdict in a few words: the rules behind it."""
    if ns.verdict == BLOCKED:
        rules = sorted({r.rule for r in ns.blocking})
        return "blocked by " + ", ".join(rules)
    if ns.held_by:
        return "held: waits for " + ", ".join(h.split(":")[0] for h in ns.held_by)
    if ns.verdict == NEEDS_WAYPOINT:
        return "waypoint for " + ", ".join(sorted({r.rule for r in ns.reasons if r.migration == "needs-waypoint"}) or ["L7 features"])
    steps = [c for c in ns.changes.changes if c.action != "apply" or c.kind != "Namespace"] if ns.changes else []
    return f"ready; {plural(len(steps), 'more change')}" if steps else "ready"


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    total = len(plan.namespaces)
    parts = ", ".join(f"{counts[v]} {v}" for v in (READY, NEEDS_WAYPOINT, BLOCKED) if counts[v])
    held = sum(1 for n in plan.namespaces if n.held_by)
    version = f"Istio {plan.istio_version}" if plan.istio_version else "Istio version unknown"
    line = f"{plural(total, 'namespace')} to move to ambient: {parts or 'none'}"
    if held:
        line += f" ({held} held by callers)"
    return line + f"; {plural(len(plan.waves), 'wave')}; {version}"


def cost_rows(plan: Plan) -> list[tuple[str, str, str]]:
    c = plan.cost
    rows = [("sidecars removed", cpu(-c.sidecars.cpu_millis), memory(-c.sidecars.memory_bytes)),
            ("waypoints added", cpu(c.waypoints.cpu_millis), memory(c.waypoints.memory_bytes))]
    if c.ztunnel_installed:
        rows.append(("ztunnel", "already running", ""))
    elif c.nodes is None:
        rows.append(("ztunnel (per node)", cpu(c.ztunnel_per_node.cpu_millis), memory(c.ztunnel_per_node.memory_bytes)))
    else:
        rows.append((f"ztunnel ({plural(c.nodes, 'node')})", cpu(c.ztunnel.cpu_millis), memory(c.ztunnel.memory_bytes)))
    net = c.added.cpu_millis - c.sidecars.cpu_millis, c.added.memory_bytes - c.sidecars.memory_bytes
    rows.append(("net change" + (" (without ztunnel)" if c.nodes is None and not c.ztunnel_installed else ""),
                 cpu(net[0]), memory(net[1])))
    return rows
