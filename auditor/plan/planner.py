"""Which namespaces can move to ambient, why the rest cannot, and in what order.

For each candidate namespace (sidecar mode today, or not in the mesh when asked), the
plan audits two what-if copies of the cluster against today's audit:

1. the namespace moved and nothing else: the findings this introduces are the reasons,
   each graded by its rule's `migration` class (needs-waypoint, blocked, change, ...);
2. the namespace moved with its change set (auditor.plan.changes): whatever this still
   introduces, but for notices and ordering, is something the change set cannot fix.

The verdict: `blocked` when a reason is of class blocked or survives the change set;
else `needs-waypoint` when the change set adds a waypoint for L7 features; else `ready`.
Then callers order the moves (auditor.plan.waves) and the cost is estimated
(auditor.plan.cost).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from auditor.core import istio, kinds as k
from auditor.core.istio import INJECTION_IGNORED_NAMESPACES
from auditor.engine import evaluate
from auditor.core.errors import UsageError
from auditor.facts.questions import MODES, Context, in_ambient, policy_reach, served, subject_ref
from auditor.plan import changes as change_sets
from auditor.plan import cost, waves
from auditor.plan.model import BLOCKED, NEEDS_WAYPOINT, READY, NamespacePlan, Plan, Reason, WorkloadPlan, blocking
from auditor.plan.moves import enrolls_pods, moved_namespace, restarted_pods
from auditor.plan.whatif import WhatIf, finding_key
from auditor.model.report import Finding
from auditor.model.snapshot import Snapshot
from auditor.gate.suppress import apply_suppressions
from auditor.core.workers import auto_jobs, map_shares, split

RANK = {READY: 0, NEEDS_WAYPOINT: 1, BLOCKED: 2}
# Below this many objects, forking to plan namespaces in parallel costs more than it saves.
PARALLEL_MIN_OBJECTS = 4000
NOT_REASONS = ("notice", "order")  # what may remain after the change set without blocking
FIXABLE = ("change", "needs-waypoint")  # what a change set may answer


@dataclass(frozen=True)
class PlanOptions:
    namespaces: tuple[str, ...] = ()  # only these (default: every candidate)
    include_unmeshed: bool = False  # also namespaces not in the mesh today
    nodes: int | None = None  # node count for ztunnel's cost (default: the Node objects in the input)


def make_plan(snapshot: Snapshot, settings, options: PlanOptions, ctx: Context) -> tuple[Plan, WhatIf]:
    """The plan, and the what-if auditor it was made with (verification reuses it).
    `settings` are api.Settings, resolved."""
    rules = {r.id: r for r in settings.rules}
    today = evaluate(ctx, settings.rules, jobs=settings.jobs)
    whatif = WhatIf(ctx, settings.rules, today.findings)
    names, skipped = candidates(ctx, options)
    enrolled = enrolls_pods(ctx)

    def share(names_here):
        return [_plan_namespace(ctx, whatif, name, rules, enrolled, snapshot, settings) for name in names_here]

    jobs = (settings.jobs or auto_jobs()) if len(snapshot) >= PARALLEL_MIN_OBJECTS and len(names) > 1 else 1
    weights = [len(whatif.scope.by_namespace.get(name, ())) + 1 for name in names]
    planned = [replace(p, callers=waves.callers(ctx, p))
               for part in map_shares(share, [names[r.start:r.stop] for r in split(weights, jobs)]) for p in part]
    cited = {}
    for r in (r for p in planned for r in p.reasons):
        rule = rules[r.rule]
        cited[r.rule] = {"title": rule.title, "migration": rule.migration, "rationale": " ".join(rule.rationale.split()),
                         "remediation": " ".join(rule.remediation.split()), "reference": rule.help_uri}
    planned, in_waves = waves.order(planned, sidecar_namespaces(ctx))
    planned, total = cost.estimate(ctx, planned, options.nodes)
    plan = Plan(istio_version=today.istio_version, version_source=today.version_source, namespaces=planned,
                skipped=skipped, waves=in_waves, cost=total, collection=snapshot.collection,
                errors=[e.to_dict() for e in snapshot.errors],
                warnings=[w.to_dict() for w in snapshot.warnings] + today.warnings, rules=cited)
    return plan, whatif


def sidecar_namespaces(ctx: Context) -> set[str]:
    return {w.namespace for w in ctx.workloads if w.role == "app" and w.mode == "sidecar"}


def candidates(ctx: Context, options: PlanOptions) -> tuple[list[str], list[dict]]:
    """Namespaces to plan, and those left out with why."""
    modes: dict[str, dict[str, int]] = {}
    for w in ctx.workloads:
        if w.role == "app":
            counts = modes.setdefault(w.namespace, dict.fromkeys(MODES, 0))
            counts[w.mode] += w.count
    known = set(modes) | set(ctx.namespace_labels)
    for name in options.namespaces:
        if name not in known:
            raise UsageError(f"-n {name}: no such namespace in the input")
    wanted = set(options.namespaces) or known
    picked, skipped = [], []
    for name in sorted(known):
        if name not in wanted:
            continue
        why = _not_a_candidate(ctx, name, modes.get(name, {}), options.include_unmeshed)
        if why:
            skipped.append({"namespace": name, "why": why})
        else:
            picked.append(name)
    return picked, skipped


def _not_a_candidate(ctx: Context, name: str, counts: dict, include_unmeshed: bool) -> str | None:
    labels = ctx.ns_labels(name)
    if name == ctx.installation.root_namespace:
        return "Istio's root namespace"
    if name in INJECTION_IGNORED_NAMESPACES:
        return "a Kubernetes system namespace"
    if counts.get("sidecar"):
        return None
    if in_ambient(labels):
        return "already in ambient mode"
    if labels.get(istio.NS_INJECTION) == "enabled" or labels.get(istio.REV):
        return None  # asks for sidecars; nothing runs yet
    if not counts:
        return "no application workloads"
    if include_unmeshed and not counts.get("ambient"):
        return None
    if counts.get("ambient"):
        return "already in ambient mode"
    return "not in the mesh (pass --include-unmeshed to plan it)"


def today_mode(ctx: Context, name: str) -> str:
    counts = ctx.mode_counts(i for i in ctx.index.in_namespace(name))
    present = [f"{counts[mode]} {mode}" for mode in ("sidecar", "ambient", "none") if counts[mode]]
    if counts["sidecar"] and not counts["ambient"] and not counts["none"]:
        return "sidecar"
    if not counts["sidecar"] and not counts["ambient"]:
        return "sidecar (nothing running)" if not counts["none"] else "not in the mesh"
    return "mixed (" + ", ".join(present) + ")"


def _plan_namespace(ctx: Context, whatif: WhatIf, name: str, rules: dict, enrolled: bool, snapshot: Snapshot,
                    settings) -> NamespacePlan:
    ns_obj = moved_namespace(ctx, name)
    moved, found, _ = whatif.audit([ns_obj, *restarted_pods(ctx, name, ns_obj.labels, enrolled)])
    introduced, resolved = diff(whatif.findings, found)
    introduced = accepted(introduced, moved.snapshot, settings)
    cs = change_sets.build(ctx, moved, name, introduced, rules)
    after_ctx, remaining = _after(ctx, whatif, cs, enrolled, rules, settings)
    if any(rules[f.rule].migration in FIXABLE for f in remaining):
        # What only the change set brings out (a NetworkPolicy once a relabelled template
        # makes its pods ambient) is a reason too: one more round, built from both.
        introduced = introduced + [f for f in remaining if rules[f.rule].migration in FIXABLE]
        cs = change_sets.build(ctx, moved, name, introduced, rules)
        after_ctx, remaining = _after(ctx, whatif, cs, enrolled, rules, settings)
    reasons = [_reason(moved, f, rules, "move") for f in introduced]
    reasons += [_reason(after_ctx, f, rules, "after-changes") for f in remaining
                if f.identity() not in {i.identity() for i in introduced} or rules[f.rule].migration != "blocked"]
    return NamespacePlan(name, today_mode(ctx, name), verdict=_verdict(reasons, cs),
                         workloads=_workloads(ctx, name, reasons), reasons=reasons, changes=cs,
                         resolved=[{"rule": f.rule, "severity": f.severity, "object": str(f.object)} for f in resolved])


def _after(ctx: Context, whatif: WhatIf, cs, enrolled: bool, rules: dict, settings) -> tuple[Context, list[Finding]]:
    """The namespace moved with its change set, and what that still introduces (but for
    notices and ordering)."""
    after_ctx, after, _ = whatif.audit(after_state(ctx, cs, enrolled), cs.remove())
    remaining, _ = diff(whatif.findings, after)
    return after_ctx, [f for f in accepted(remaining, after_ctx.snapshot, settings) if rules[f.rule].migration not in NOT_REASONS]


def after_state(ctx: Context, cs, enrolled: bool) -> list:
    """The objects of a namespace moved with its change set: the change set's manifests
    and the namespace's pods as they restart under them."""
    put = cs.put()
    namespace = next(o for o in put if o.gk == k.NAMESPACE and o.name == cs.namespace)
    return put + restarted_pods(ctx, cs.namespace, namespace.labels, enrolled, cs.template_labels)


def diff(before: list[Finding], after: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(findings `after` adds or makes more severe, findings it no longer has)."""
    known = {f.identity(): f for f in before}
    now = {f.identity() for f in after}
    rank = {"error": 0, "warning": 1, "info": 2}
    added = [f for f in after if f.identity() not in known or rank[f.severity] < rank[known[f.identity()].severity]]
    gone = [f for f in before if f.identity() not in now]
    return added, gone


def accepted(findings: list[Finding], snapshot: Snapshot, settings) -> list[Finding]:
    """The findings no annotation, exemption or --ignore suppresses (as `scan` would)."""
    copies = [replace(f, suppressions=[]) for f in findings]
    judged = apply_suppressions(copies, snapshot, settings.exemptions, settings.names, settings.today or date.today())
    return [f for f in judged.findings if not f.suppressed]


def _reason(ctx: Context, f: Finding, rules: dict, stage: str) -> Reason:
    ids = concerned(ctx, f)
    return Reason(f.rule, rules[f.rule].migration, f.severity, str(f.object), f.message, stage,
                  sorted({subject_ref(ctx.workloads[i]) for i in ids}))


def concerned(ctx: Context, f: Finding) -> list[int]:
    """Application workloads of the finding's namespace a finding is about."""
    obj = ctx.snapshot.get(finding_key(f)[0], f.object.namespace, f.object.name)
    namespace = f.object.namespace
    everyone = [i for i in ctx.index.in_namespace(namespace or "") if ctx.workloads[i].role == "app"]
    if obj is None:
        return everyone
    if obj.gk in k.WORKLOAD_GKS:
        w = ctx.workload(obj)
        return [w.id] if w is not None else [i for i in everyone if _owned_by(ctx.workloads[i], obj)]
    if obj.gk in k.POLICY_GKS and not (reach := policy_reach(ctx, obj)).targeted:
        return [i for i in reach.workloads if ctx.workloads[i].role == "app"]
    if obj.gk == k.NETWORK_POLICY:
        return ctx.netpols.selected.get(obj.key, [])
    targets = served(ctx, obj)
    if targets or obj.gk in (k.SERVICE, k.SERVICE_ENTRY, k.VIRTUAL_SERVICE, k.DESTINATION_RULE, *k.ROUTE_GKS):
        return sorted({i for s in targets if s.gk == k.SERVICE for i in ctx.services.selected_workloads(s)})
    return everyone


def _owned_by(w, obj) -> bool:
    return w.owner is not None and (w.owner.kind, w.owner.name) == (obj.kind, obj.name)


def _verdict(reasons: list[Reason], cs) -> str:
    if blocking(reasons):
        return BLOCKED
    if (cs and cs.waypoint) or any(r.migration == "needs-waypoint" for r in reasons):
        return NEEDS_WAYPOINT
    return READY


def _workloads(ctx: Context, namespace: str, reasons: list[Reason]) -> list[WorkloadPlan]:
    """Each workload (by top owner) with its pods: running ones, else the replicas asked
    for; and the rules whose reasons name it, with the verdict they give it."""
    pods: dict[str, int] = {}
    modes: dict[str, str] = {}
    running: set[str] = set()
    for i in ctx.index.in_namespace(namespace):
        w = ctx.workloads[i]
        if w.role != "app":
            continue
        ref = subject_ref(w)
        modes.setdefault(ref, w.mode)
        if w.observed:  # what runs, rather than what its template would give
            pods[ref] = pods.get(ref, 0) + w.count if ref in running else w.count
            modes[ref] = w.mode
            running.add(ref)
        elif ref not in running:
            pods[ref] = cost.replicas(ctx, w.obj)
    cited: dict[str, set[str]] = {ref: set() for ref in modes}
    verdicts = dict.fromkeys(modes, READY)
    for r in reasons:
        grade = BLOCKED if r.migration == "blocked" or r.stage == "after-changes" else \
            NEEDS_WAYPOINT if r.migration == "needs-waypoint" else READY
        for ref in (ref for ref in r.workloads if ref in modes):
            cited[ref].add(r.rule)
            if RANK[grade] > RANK[verdicts[ref]]:
                verdicts[ref] = grade
    return sorted((WorkloadPlan(ref, pods.get(ref, 0), modes[ref], verdicts[ref], sorted(cited[ref])) for ref in modes),
                  key=lambda w: w.name)
