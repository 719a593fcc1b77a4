"""What-if copies of a Context: the context of a snapshot with a few objects changed,
sharing what the change cannot touch (`derive`). A plan asks for one per namespace it
moves, twice; building each from scratch would cost a full Context every time.

This module decides whether a copy can be made and re-resolves the workloads of the
namespaces that changed; Context makes the copy (`Context.derived`), keeping each index
whose declared kinds the change does not touch.
"""

from __future__ import annotations

from typing import Iterable

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.indexes import Change, Index
from auditor.facts.egress import egress_gateway_hosts
from auditor.facts.mesh import VERSION_ASKED
from auditor.facts.workloads import collect_workloads
from auditor.model.components import is_istiod
from auditor.model.snapshot import K8sObject, Snapshot

# Kinds the installation is read from: a what-if that changes one starts from scratch.
INSTALLATION_GKS = frozenset({k.CONFIG_MAP, k.DAEMON_SET, k.MUTATING_WEBHOOK})
WORKLOAD_KEYS = Index("workload_keys", frozenset())  # the same workload objects, or no derived copy at all


def derive(base: Context, put: Iterable[K8sObject] = (), remove: Iterable[tuple] = (),
           snapshot: Snapshot | None = None) -> Context:
    """The context of `base`'s snapshot with objects replaced or added (`put`) and keys
    removed, sharing what the change cannot touch. Workloads of the namespaces that changed
    are resolved again under the new labels; when a change reaches the installation, adds
    or removes a workload or relabels one, the copy is built from scratch instead (the same
    answers, slower). `snapshot`: the changed snapshot when the caller has made it (with its
    own input problems and source lines); by default `base.snapshot.changed(put, remove)`."""
    put, remove = list(put), set(remove)
    snapshot = snapshot if snapshot is not None else base.snapshot.changed(put, remove)
    changed = put + [o for o in (base.snapshot.get(*key) for key in remove) if o is not None]
    gks = {o.gk for o in changed}
    workloads_added = any(o.gk in k.WORKLOAD_GKS and (o.key in remove or base.snapshot.get(*o.key) is None)
                          for o in changed)
    if base.installation.version_source != VERSION_ASKED and any(
            o.gk in (k.DEPLOYMENT, k.POD) and is_istiod(o.name, o.metadata.get("labels")) for o in changed):
        return Context(snapshot, None, base.options)  # a detected version follows istiod: detect it again
    if gks & INSTALLATION_GKS or workloads_added or any(o.namespace == base.installation.root_namespace for o in changed):
        return Context(snapshot, base.installation.istio_version, base.options)
    namespaces = {o.name if o.gk == k.NAMESPACE else o.namespace for o in changed} - {None}
    workloads = _rederive_workloads(base, snapshot, namespaces)
    if workloads is None:
        return Context(snapshot, base.installation.istio_version, base.options)
    services = {o.key: o for o in put if o.gk == k.SERVICE}
    relabelled = k.SERVICE in gks and bool(services) and all(
        base.snapshot.get(*key) is not None and base.snapshot.get(*key).spec == o.spec for key, o in services.items())
    change = Change(tuple(put), tuple(changed), frozenset(gks), frozenset(namespaces), services if relabelled else None)
    service_index = base.services.with_changes(put, remove) if gks & {k.SERVICE, k.SERVICE_ENTRY} else base.services
    # Names and selectors decide which Services are egress gateways; labels alone do not.
    egress_hosts = egress_gateway_hosts(snapshot) if k.SERVICE in gks and not relabelled else base.egress_gateway_hosts
    return base.derived(snapshot, change, *workloads, service_index, egress_hosts)

def _rederive_workloads(base: Context, snapshot: Snapshot, namespaces: set[str]):
    """(workloads, object key -> workload) for `snapshot`, new Workloads (same ids) for
    the namespaces that changed and this context's elsewhere; None when a namespace's
    workloads do not group as before, with the same labels."""
    by_ns = base.once(WORKLOAD_KEYS, lambda: _workload_keys(base))
    workloads, workload_of = list(base.workloads), base.workloads_by_key()
    for ns in namespaces:
        keys, ids = by_ns.get(ns, ([], []))
        objects = [snapshot.get(*key) for key in keys]
        fresh, replicas = collect_workloads(Snapshot(objects))
        if [(w.obj.key, w.labels, w.count) for w in fresh] != [(base.workloads[i].obj.key, base.workloads[i].labels,
                                                                 base.workloads[i].count) for i in ids]:
            return None
        for w, i in zip(fresh, ids):
            w.renumber(i)
            workloads[i] = w
            workload_of[w.obj.key] = w
        workload_of.update(replicas)
    return workloads, workload_of

def _workload_keys(base: Context) -> dict[str, tuple[list, list]]:
    """Namespace -> (keys of its workload objects in snapshot order, its workload ids)."""
    out: dict[str, tuple[list, list]] = {}
    for obj in base.snapshot.of(*k.WORKLOAD_GKS):
        out.setdefault(obj.namespace or "", ([], []))[0].append(obj.key)
    for w in base.workloads:
        out.setdefault(w.namespace, ([], []))[1].append(w.id)
    return out
