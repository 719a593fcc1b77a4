"""serve's rounds after a full audit: the objects a change can reach audited again, the
findings of the rest kept.

A full audit (the base) keeps its context and the engine's findings in a
plan.whatif.WhatIf, the machinery a plan audits its what-if copies with. A later round
hands it every object put or removed since the base: WhatIf derives the context
(facts.derive) and re-audits the objects of the namespaces those objects sit in, the
objects elsewhere that name them (routes, DestinationRules, AuthorizationPolicies by
identity), the kinds that read the mesh as a whole, and, when a mesh-wide fact rules read
flips, the kinds that follow it.

Where that reach is not proven, a round audits everything and becomes the new base:
after a relist; for a change to a cluster-scoped object other than a Namespace, to
anything in Istio's root namespace, to the installation (ConfigMaps, DaemonSets,
webhooks), to a Gateway, or to a proxy that is not an application's (istiod, gateways,
waypoints, whose reach crosses namespaces); and once more than REBASE objects changed
since the base. `tests/test_serve_incremental.py` holds each round to a full audit of the
same objects.
"""

from __future__ import annotations

import ctypes
import gc
from dataclasses import dataclass, replace

from auditor.collect import gc_paused
from auditor.core import kinds as k
from auditor.engine import cluster_object, error_order
from auditor.facts.context import Context
from auditor.facts.derive import INSTALLATION_GKS
from auditor.facts.workloads import Workload
from auditor.gate.finish import finish, repository_root
from auditor.model.components import is_istiod
from auditor.model.report import Report
from auditor.model.snapshot import K8sObject, Snapshot
from auditor.pipeline import context_of, findings_of
from auditor.plan.whatif import WhatIf

REBASE = 500  # objects changed since the base past which a full audit is cheaper than the reach
# Kinds whose reach WhatIf does not follow across namespaces: a change to one audits everything.
FULL_KINDS = frozenset({*INSTALLATION_GKS, k.GATEWAY, k.GATEWAY_CLASS, k.CRD})


@dataclass
class _Base:
    whatif: WhatIf
    engine: Report  # the engine's report of the base, before the gate finished it
    objects: dict  # key -> K8sObject, as the base audited them


class Auditor:
    """Audits the objects `serve` keeps, round after round (`audit`)."""

    def __init__(self, settings) -> None:
        # api.Settings, resolved; where the repository is, looked up once, not every round.
        self.settings = replace(settings, repo_root=settings.repo_root or repository_root())
        self.base: _Base | None = None
        self.full_rounds = self.incremental_rounds = 0

    def audit(self, objects: dict, collection: dict, relisted: bool = False) -> Report:
        """The finished report of `objects` (key -> K8sObject); `collection`: the record of
        the collection they started from."""
        if self.base is not None and not relisted:
            put, removed = self._since_base(objects)
            if len(put) + len(removed) <= REBASE and self._reachable(put, removed):
                self.incremental_rounds += 1
                ctx, findings, evaluated = self.base.whatif.audit(put, removed)
                engine = replace(self.base.engine, findings=findings, objects=len(ctx.snapshot),
                                 errors=self._errors(evaluated))
                return finish(engine, ctx.snapshot, self.settings)
        return self._full(objects, collection)

    def _full(self, objects: dict, collection: dict) -> Report:
        """Everything audited, as the new base. The old base goes first; the new one keeps
        its indices but not its per-object facts, and is frozen out of the garbage
        collector's scans. The collector is on after the first base (a long-lived process:
        each round's garbage is collected, the base is not rescanned for it)."""
        self.full_rounds += 1
        if self.base is not None:
            self.base = None
            gc.unfreeze()
            gc.collect()  # the old base, and whatever cycles the rounds on it left
        with gc_paused():
            snapshot = Snapshot(objects.values(), collection=collection)
            ctx = context_of(snapshot, self.settings)
            engine = findings_of(ctx, self.settings)
            report = finish(engine, snapshot, self.settings)
            self.base = _Base(WhatIf(ctx, self.settings.rules, engine.findings), engine, dict(objects))
            ctx.forget_facts()
        gc.freeze()
        _trim()
        gc.enable()  # from here on each round's garbage is collected; the base is not rescanned for it
        return report

    def _errors(self, evaluated) -> list[dict]:
        """The base's rule errors on objects not evaluated again, and this round's."""
        kept = self.base.engine.errors
        if kept:  # usually none: then no walk over the base's objects
            again = {obj.ref() for key, obj in self.base.objects.items() if evaluated.covers(key)}
            again.add(cluster_object(self.base.whatif.ctx.options.cluster_name).ref())
            kept = [e for e in kept if e["object"] not in again]
        return sorted(kept + evaluated.errors, key=error_order)

    def _since_base(self, objects: dict) -> tuple[list[K8sObject], set[tuple]]:
        base = self.base.objects
        put = [obj for key, obj in objects.items() if base.get(key) is not obj]
        return put, base.keys() - objects.keys()

    def _reachable(self, put: list[K8sObject], removed: set[tuple]) -> bool:
        """Whether every change is one WhatIf follows (see the module)."""
        ctx: Context = self.base.whatif.ctx
        root = ctx.installation.root_namespace
        changed = put + [self.base.objects[key] for key in removed]
        for obj in changed:
            if obj.gk in FULL_KINDS or obj.namespace == root or (obj.namespace is None and obj.gk != k.NAMESPACE):
                return False
            if obj.gk in k.WORKLOAD_GKS and (is_istiod(obj.name, obj.metadata.get("labels")) or
                                              not _application(ctx, obj)):
                return False
        return True


def _application(ctx: Context, obj: K8sObject) -> bool:
    """An application's pod or template, before and after the change (not a gateway's,
    a waypoint's or the control plane's)."""
    before = ctx.workload(obj)
    if before is not None and before.role != "app":
        return False
    return Workload(-1, obj, None).role == "app"


def _trim() -> None:
    """Hand the C heap's free pages back to the system after a full audit (glibc's
    malloc_trim; elsewhere nothing): a full audit's peak would otherwise stay in serve's
    RSS until the next one."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
