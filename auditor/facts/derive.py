"""What-if copies of a Context: the context of a snapshot with a few objects changed,
sharing what the change cannot touch (`derive`). A plan asks for one per namespace it
moves, twice; building each from scratch would cost a full Context every time.

This module builds a Context from its parts, so it reads Context's internals: the one
place outside context.py that does.
"""

from __future__ import annotations

from typing import Iterable

from auditor.core import kinds as k
from auditor.model.components import is_istiod
from auditor.facts.context import Context
from auditor.facts.egress import egress_gateway_hosts
from auditor.facts.mesh import VERSION_ASKED
from auditor.facts.waypoint import WaypointResolver
from auditor.facts.workloads import Workload, collect_workloads
from auditor.model.snapshot import K8sObject, Snapshot

# Kinds the mesh settings are read from: a what-if that changes one starts from scratch.
SETTINGS_GKS = frozenset({k.CONFIG_MAP, k.DAEMON_SET, k.MUTATING_WEBHOOK})
# What each index built on first use is made of: a what-if keeps the index unless one changed.
LAZY_INPUTS = {
    "routes": frozenset({k.VIRTUAL_SERVICE, k.SERVICE, k.SERVICE_ENTRY, k.GATEWAY, *k.ROUTE_GKS}),
    "netpols": frozenset({k.NETWORK_POLICY}),
    "egress": frozenset({k.VIRTUAL_SERVICE, k.SERVICE, k.SERVICE_ENTRY}),
    "services_of": frozenset({k.SERVICE}),
    "services_by_namespace": frozenset({k.SERVICE}),
    "policy_targets": frozenset(k.POLICY_GKS),
    "workload_keys": frozenset(),  # the same workload objects, or no derived copy at all
}


def derive(base: Context, put: Iterable[K8sObject] = (), remove: Iterable[tuple] = (),
           snapshot: Snapshot | None = None) -> Context:
    """The context of `base`'s snapshot with objects replaced or added (`put`) and keys
    removed, sharing what the change cannot touch. Workloads of the namespaces that changed are resolved again under the
    new labels; when a change reaches the mesh settings, adds or removes a workload or
    relabels one, the copy is built from scratch instead (the same answers, slower).
    `snapshot`: the changed snapshot when the caller has made it (with its own input
    problems and source lines); by default `base.snapshot.changed(put, remove)`."""
    put, remove = list(put), set(remove)
    snapshot = snapshot if snapshot is not None else base.snapshot.changed(put, remove)
    changed = put + [o for o in (base.snapshot._by_key.get(key) for key in remove) if o is not None]
    gks = {o.gk for o in changed}
    workloads_added = any(o.gk in k.WORKLOAD_GKS and (o.key in remove or o.key not in base.snapshot._by_key)
                          for o in changed)
    if base.settings.version_source != VERSION_ASKED and any(
            o.gk in (k.DEPLOYMENT, k.POD) and is_istiod(o.name, o.metadata.get("labels")) for o in changed):
        return Context(snapshot, None, base.options)  # a detected version follows istiod: detect it again
    if gks & SETTINGS_GKS or workloads_added or any(o.namespace == base.settings.root_namespace for o in changed):
        return Context(snapshot, base.settings.istio_version, base.options)
    namespaces = {o.name if o.gk == k.NAMESPACE else o.namespace for o in changed}
    workloads = _rederive_workloads(base, snapshot, namespaces - {None})
    if workloads is None:
        return Context(snapshot, base.settings.istio_version, base.options)
    out = Context.__new__(Context)
    out.snapshot, out.options, out.settings, out.index = snapshot, base.options, base.settings, base.index
    out.namespace_labels = dict(base.namespace_labels)
    for o in changed:
        if o.gk == k.NAMESPACE:
            out.namespace_labels.pop(o.name, None)
    out.namespace_labels.update((ns.name, ns.labels) for ns in put if ns.gk == k.NAMESPACE)
    out.workloads, out._workload_of = workloads
    for w in out.workloads:
        if w.namespace in namespaces:
            w.resolve_mode(out.ns_labels(w.namespace), out.settings)
    out.services = base.services.with_changes(put, remove) if gks & {k.SERVICE, k.SERVICE_ENTRY} else base.services
    out.waypoints = WaypointResolver(snapshot, out.namespace_labels, out.settings.istio_version)
    out.egress_gateway_hosts = base.egress_gateway_hosts
    out.facts_cache, out._service_bindings, out.attachments = {}, {}, {}
    out.topology = base.topology
    out._lazy = {name: index for name, index in base._lazy.items()
                 if name in LAZY_INPUTS and not gks & LAZY_INPUTS[name]}
    _carry_over(base, out, put, namespaces, gks)
    out.mesh = out._mesh_facts(_mode_totals(base, workloads[0], namespaces))
    return out

def _carry_over(base: Context, out: Context, put: list[K8sObject], namespaces: set, gks: set) -> None:
    """Indices a what-if copy can take over with a few entries patched."""
    lazy, mine = out._lazy, base._lazy
    if "callers_by_namespace" in mine:  # the workloads of the changed namespaces are new objects
        callers = lazy["callers_by_namespace"] = dict(mine["callers_by_namespace"])
        for ns in namespaces & callers.keys():
            callers[ns] = [(out.workloads[w.id], account) for w, account in callers[ns]]  # same ids
    for name in ("sidecar_services", "use_waypoint_labels"):  # per namespace: redone where something changed
        if name in mine:
            lazy[name] = {ns: n for ns, n in mine[name].items() if ns not in namespaces}
    services = {o.key: o for o in put if o.gk == k.SERVICE}
    if k.SERVICE in gks and services and all(
            base.snapshot.get(*key) is not None and base.snapshot.get(*key).spec == o.spec
            for key, o in services.items()):  # relabelled only: the same selections
        if "services_of" in mine:  # a Service selects workloads of its own namespace only
            lazy["services_of"] = reverse = dict(mine["services_of"])
            for i in (i for ns in namespaces for i in base.index.in_namespace(ns) if i in reverse):
                reverse[i] = [services.get(s.key, s) for s in reverse[i]]
        if "services_by_namespace" in mine:
            lazy["services_by_namespace"] = by_ns = dict(mine["services_by_namespace"])
            for ns in namespaces & by_ns.keys():
                by_ns[ns] = [services.get(s.key, s) for s in by_ns[ns]]
        for name in ("routes", "egress"):  # by Service key and host: labels do not enter
            if name in mine and name not in lazy and not (gks - {k.SERVICE}) & LAZY_INPUTS[name]:
                lazy[name] = mine[name]
    elif k.SERVICE in gks:  # names and selectors decide which Services are egress gateways
        out.egress_gateway_hosts = egress_gateway_hosts(out.snapshot)
    if "waypoint_user_parts" in mine:  # redo only the namespaces that changed
        parts = {ns: part for ns, part in mine["waypoint_user_parts"].items() if ns not in namespaces}
        parts.update(out._waypoint_user_parts(namespaces))
        lazy["waypoint_user_parts"] = parts

def _mode_totals(base: Context, workloads: list[Workload], namespaces: set) -> dict:
    """The mesh's workloads by mode, from this context's totals and the changed namespaces."""
    totals = dict(base.mesh["workloads"])
    totals.pop("total", None)
    for ns in namespaces:
        for i in base.index.in_namespace(ns):
            for ws, sign in ((base.workloads, -1), (workloads, 1)):
                if ws[i].role == "app":
                    totals[ws[i].mode] += sign * ws[i].count
    return totals

def _rederive_workloads(base: Context, snapshot: Snapshot, namespaces: set[str]):
    """(workloads, object key -> workload) for `snapshot`, new Workloads (same ids) for
    the namespaces that changed and this context's elsewhere; None when a namespace's
    workloads do not group as before, with the same labels."""
    by_ns = base.once("workload_keys", lambda: _workload_keys(base))
    workloads, workload_of = list(base.workloads), dict(base._workload_of)
    for ns in namespaces:
        keys, ids = by_ns.get(ns, ([], []))
        objects = [snapshot.get(*key) for key in keys]
        fresh, replicas = collect_workloads(Snapshot(objects))
        if [(w.obj.key, w.labels, w.count) for w in fresh] != [(base.workloads[i].obj.key, base.workloads[i].labels,
                                                                 base.workloads[i].count) for i in ids]:
            return None
        for w, i in zip(fresh, ids):
            w.id = i
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
