"""In what order namespaces can move without opening an authorization gap.

Once a namespace's L7 authorization moves to its waypoint, only traffic through the
waypoint is checked, and sidecars never send traffic through a waypoint: a caller still
on sidecars either bypasses the policy or (behind the ztunnel policy that admits only the
waypoint) is refused. So a namespace whose policies move to a waypoint waits until every
namespace that calls it has moved. Callers are read from the moved policies' sources
(`principals`, `namespaces`, `serviceAccounts`; a rule with no source admits every caller)
and from routes elsewhere that send traffic to its Services.

Namespaces that call each other move in the same wave. A namespace whose caller stays on
sidecars (blocked, or not planned) is held, and so are the namespaces it calls in turn.
"""

from __future__ import annotations

from dataclasses import replace

from auditor.core import kinds as k
from auditor.facts.questions import Context, named_callers, traffic_targets
from auditor.plan.model import BLOCKED, Caller, NamespacePlan, Wave
from auditor.plan.memo import memo
from auditor.model.snapshot import as_dict, as_list

ANY = "*"


def callers(ctx: Context, plan: NamespacePlan) -> list[Caller]:
    """Namespaces that send traffic the namespace's moved policies check (ANY: every one)."""
    found: dict[str, str] = {}
    cs = plan.changes
    for policy in cs.moved_policies if cs else []:
        if policy.gk == k.REQUEST_AUTHENTICATION:
            found.setdefault(ANY, f"{policy.ref()} validates the tokens of every caller")
            continue
        for rule in as_list(policy.spec.get("rules")):
            sources = [as_dict(e).get("source") for e in as_list(as_dict(rule).get("from"))]
            if not sources:
                found.setdefault(ANY, f"{policy.ref()} has a rule that admits any caller")
        for kind, value, ns in named_callers(policy.spec):
            found.setdefault(ns or ANY, f"{policy.ref()} allows {kind} {value}")
    if cs and cs.bound_services:
        for ns, evidence in _routing_namespaces(ctx, plan.name, set(cs.bound_services)).items():
            found.setdefault(ns, evidence)
    found.pop(plan.name, None)
    return [Caller(ns, why) for ns, why in sorted(found.items())]


def _routing_namespaces(ctx: Context, namespace: str, services: set[str]) -> dict[str, str]:
    """Namespaces holding routes that send traffic to these Services."""
    out: dict[str, str] = {}
    routes = memo(ctx, "routes_to", lambda: _routes_to(ctx))
    for service in sorted(services):
        for route in routes.get(service, ()):
            if route.namespace != namespace:
                out.setdefault(route.namespace or "", f"{route.ref()} routes to {service}")
    return out


def _routes_to(ctx: Context) -> dict[str, list]:
    """Service (as findings name it) -> the VirtualServices and routes that send traffic to it."""
    out: dict[str, list] = {}
    for route in ctx.snapshot.of(k.VIRTUAL_SERVICE, *k.ROUTE_GKS):
        names = {f"{k.short_kind(gk)} {ns}/{name}" for gk, ns, name in traffic_targets(ctx, route)
                 if route.gk == k.VIRTUAL_SERVICE or gk == k.SERVICE}
        for name in names:
            out.setdefault(name, []).append(route)
    return out


def order(plans: list[NamespacePlan], sidecar_namespaces: set[str]) -> tuple[list[NamespacePlan], list[Wave]]:
    """The plans, each with its `wave` and what holds it (`held_by`), and the waves for the
    namespaces that can move. `sidecar_namespaces`: namespaces with sidecar workloads today."""
    movable = {p.name: p for p in plans if p.verdict != BLOCKED}
    staying = sidecar_namespaces - set(movable)
    needs: dict[str, dict[str, str]] = {}  # namespace -> caller namespace -> evidence
    for p in movable.values():
        needs[p.name] = {}
        for c in p.callers:
            names = sorted(sidecar_namespaces - {p.name}) if c.namespace == ANY else [c.namespace]
            for ns in names:
                if ns in sidecar_namespaces:
                    needs[p.name].setdefault(ns, c.evidence)
    held: dict[str, list[str]] = {}
    changed = True
    while changed:  # a namespace that waits for one that stays on sidecars stays too
        changed = False
        for name, wanted in needs.items():
            if name in held:
                continue
            waiting = sorted(ns for ns in wanted if ns in staying or ns in held)
            if waiting:
                held[name] = waiting
                changed = True
    held_by = {name: [f"{ns}: {needs[name][ns]}" for ns in waiting] for name, waiting in held.items()}
    wave_of: dict[str, int] = {}
    graph = {name: sorted(ns for ns in wanted if ns in movable and ns not in held)
             for name, wanted in needs.items() if name not in held}
    waves: dict[int, list[str]] = {}
    notes: dict[int, list[str]] = {}
    for group, number in _levels(graph):
        for name in group:
            wave_of[name] = number
            waves.setdefault(number, []).append(name)
            if len(group) > 1:
                notes.setdefault(number, []).append(
                    f"{name} moves with {', '.join(n for n in group if n != name)}: they call each other")
            for caller in graph[name]:
                if caller not in group:
                    notes.setdefault(number, []).append(f"{name} after {caller}: {needs[name][caller]}")
    placed = [replace(p, wave=wave_of[p.name]) if p.name in wave_of else
              replace(p, held_by=held_by[p.name]) if p.name in held_by else p for p in plans]
    return placed, [Wave(n, sorted(waves[n]), sorted(set(notes.get(n, [])))) for n in sorted(waves)]


def _levels(graph: dict[str, list[str]]) -> list[tuple[list[str], int]]:
    """Strongly connected groups of `graph` (node -> the nodes it waits for) with their
    wave: 1 for a group that waits for nobody, else one more than the latest it waits for."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; graphs here are a few hundred nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    level: dict[str, int] = {}
    out = []
    for group in groups:  # Tarjan emits a group after every group it waits for
        wave = 1 + max((level[n] for member in group for n in graph[member] if n not in group), default=0)
        for member in group:
            level[member] = wave
        out.append((group, wave))
    return out
