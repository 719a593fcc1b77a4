"""Audits of what-if copies of the cluster, each one namespace's move away from today.

A plan audits the cluster once as it is, then once per namespace it could move (and
again with that namespace's change set). Rebuilding and re-auditing everything each
time would cost a full scan per namespace; instead each what-if re-audits only the
objects whose facts the move can change, and keeps today's findings for the rest:

- every object of the namespaces that changed (their workloads' modes changed);
- objects elsewhere that name them: routes and DestinationRules whose hosts or parents
  are their Services or ServiceEntries, AuthorizationPolicies that name their
  identities (or any identity, by wildcard);
- objects whose facts read the mesh as a whole in ways one namespace can change: the
  cluster itself, the root namespace, ConfigMaps, ServiceEntries and Gateways;
- when the move flips a mesh-wide fact rules read (ambient workloads exist, sidecar
  workloads exist, a namespace asks for ambient), the kinds whose findings follow it
  (Namespaces, Services, routes, DestinationRules, ServiceEntries, Sidecars). Their
  findings depend on the flip, not on which namespace caused it: they are audited once
  per state of those facts and reused.

tests/test_plan.py holds this to a full audit of each what-if on the demo and a
generated cluster: the same findings (rule, object, severity), worded alike where they
are new. (A finding both audits share may keep today's wording, counts included.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from auditor.core import kinds as k
from auditor.engine import cluster_object, evaluate
from auditor.facts.questions import Context, named_callers, share_with_what_ifs, traffic_targets, what_if
from auditor.model.report import Finding
from auditor.rulebook import Rule
from auditor.model.snapshot import K8sObject

# Kinds whose findings follow the mesh-wide facts a move can flip.
FLAG_KINDS = frozenset({k.NAMESPACE, k.SERVICE, k.VIRTUAL_SERVICE, k.DESTINATION_RULE, k.SERVICE_ENTRY, k.SIDECAR,
                        k.CONFIG_MAP, *k.ROUTE_GKS})
# Kinds always re-audited: few, and read mesh-wide state or other namespaces' objects.
ALWAYS_KINDS = (k.CONFIG_MAP, k.SERVICE_ENTRY, k.GATEWAY, k.GATEWAY_CLASS)


def finding_key(f: Finding) -> tuple:
    return f.object.key


def mesh_flags(ctx: Context) -> tuple:
    """The mesh-wide facts rules read that one namespace's move can flip."""
    mesh = ctx.mesh
    return mesh["has_ambient"], mesh["has_sidecar"], ctx.ambient_in_use()


class Scope:
    """Which objects each namespace's move can change the findings of (see the module)."""

    def __init__(self, ctx: Context):
        self.by_namespace: dict[str, list[tuple]] = {}
        for obj in ctx.snapshot:
            if obj.namespace is not None:
                self.by_namespace.setdefault(obj.namespace, []).append(obj.key)
        root = ctx.installation.root_namespace
        self.always = [o.key for o in ctx.snapshot.of(*ALWAYS_KINDS)] + self.by_namespace.get(root, [])
        self.flagged = [o.key for o in ctx.snapshot if o.gk in FLAG_KINDS]
        self.referrers: dict[str | None, list[tuple]] = {}  # namespace (None: any) -> objects naming it
        for obj in ctx.snapshot.of(k.VIRTUAL_SERVICE, k.DESTINATION_RULE, *k.ROUTE_GKS):
            for ns in {key[1] or "" for key in traffic_targets(ctx, obj)}:
                self.referrers.setdefault(ns, []).append(obj.key)
        for policy in ctx.snapshot.of(k.AUTHORIZATION_POLICY):
            for _, _, ns in named_callers(policy.spec):
                self.referrers.setdefault(ns, []).append(policy.key)

    def keys(self, namespaces: set[str]) -> set[tuple]:
        found = set(self.always) | set(self.referrers.get(None, ()))
        for ns in namespaces:
            found.update(self.by_namespace.get(ns, ()))
            found.update(self.referrers.get(ns, ()))
            found.add((k.NAMESPACE, None, ns))
        return found


@dataclass(frozen=True)
class Evaluated:
    """What one what-if audit evaluated again: objects by key, every object of `namespaces`,
    and the rule errors that met (the findings of everything else were kept)."""

    keys: set
    namespaces: frozenset
    errors: list

    def covers(self, key: tuple) -> bool:
        return key in self.keys or key[1] in self.namespaces or (key[0] == k.NAMESPACE and key[2] in self.namespaces)


class Audit(NamedTuple):
    """One what-if audit: the changed cluster's facts, its findings (what a full audit of it
    reports), and what was evaluated again to find them."""

    ctx: Context
    findings: list[Finding]
    evaluated: Evaluated


class WhatIf:
    """Today's audit, and audits of changed copies of it (`audit`)."""

    def __init__(self, ctx: Context, rules: list[Rule], findings: list[Finding]):
        self.ctx, self.rules, self.findings = ctx, rules, findings
        share_with_what_ifs(ctx)
        self.scope = Scope(ctx)
        self.flags = mesh_flags(ctx)
        self._today = {(f.identity(), f.severity) for f in findings}
        self._keyed = [(finding_key(f), f) for f in findings]
        self._flagged = frozenset(self.scope.flagged)
        # Mesh-wide facts -> (findings of the flag-following objects by key, the keys that
        # were audited with their own namespace moved, so are not reusable).
        self._by_flags: dict[tuple, tuple[dict[tuple, list[Finding]], set[tuple]]] = {}

    def audit(self, put: list[K8sObject], remove: set[tuple] = frozenset()) -> Audit:
        """Today's cluster with `put` objects replaced or added and `remove` keys gone,
        audited: its context, findings and what was evaluated again (see Audit)."""
        ctx = what_if(self.ctx, put, remove)
        namespaces = {o.name if o.gk == k.NAMESPACE else o.namespace for o in put} - {None}
        namespaces |= {key[2] if key[0] == k.NAMESPACE else key[1] for key in remove} - {None}
        keys = self.scope.keys(namespaces) | {o.key for o in put}
        flags = mesh_flags(ctx)
        reused: dict[tuple, list[Finding]] = {}
        first = False
        if flags != self.flags:
            if flags in self._by_flags:
                reused, unusable = self._by_flags[flags]
                keys |= unusable & self._flagged
            else:
                first = True
                keys |= self._flagged
        subjects = [o for o in (ctx.snapshot.get(*key) for key in keys) if o is not None]
        fresh_report = evaluate(ctx, self.rules, subjects=subjects, jobs=1)
        fresh, errors = fresh_report.findings, list(fresh_report.errors)
        if first:
            own = self.scope.keys(namespaces) | {o.key for o in put}
            by_key: dict[tuple, list[Finding]] = {}
            for f in fresh:
                if finding_key(f) not in own and f.object.namespace not in namespaces:
                    by_key.setdefault(finding_key(f), []).append(f)
            self._by_flags[flags] = (by_key, own | {key for key in self.scope.flagged
                                                   if key[1] in namespaces or key[0] == k.NAMESPACE and key[2] in namespaces})
        redone = keys | set(remove) | {cluster_object(ctx.options.cluster_name).key}
        if flags != self.flags:
            redone |= self._flagged
        kept = [f for key, f in self._keyed if key not in redone and f.object.namespace not in namespaces]
        again = [f for key, found in reused.items() if key not in keys and key not in remove for f in found]
        # A reused finding today's audit lacks is one the plan will show: word it for this copy.
        new = {finding_key(f) for f in again if (f.identity(), f.severity) not in self._today}
        if new:
            again = [f for f in again if finding_key(f) not in new]
            worded = evaluate(ctx, self.rules, subjects=[ctx.snapshot.get(*key) for key in new], cluster=False, jobs=1)
            again, errors = again + worded.findings, errors + worded.errors
        return Audit(ctx, sorted(kept + again + fresh, key=Finding.sort_key),
                     Evaluated(redone | new, frozenset(namespaces), errors))
