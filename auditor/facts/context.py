"""The context: a snapshot indexed the way Istio's questions need it.

`Context(snapshot)` resolves every workload's mode once, indexes workloads by label and
Services by host, and sets up the waypoint resolver; route, NetworkPolicy and policy
target indices are built on first use. It answers lookups (which workload a pod is,
which waypoint an object is bound to, how a policy attaches) and holds `mesh`, the
cluster-wide facts rules see as `mesh`. What rules see as `facts` for one object is
built from it by `auditor.facts.subjects`.
"""

from __future__ import annotations

from dataclasses import dataclass

import auditor.facts.mode as m
from auditor.core import kinds as k
from auditor.facts.indexes import Change, Index
from auditor.facts.egress import (
    egress_gateway_hosts,
    egress_routes_by_host,
    routes_to_egress_gateway,
)
from auditor.facts.labels import LabelIndex
from auditor.facts.mesh import Installation, read_installation
from auditor.facts.netpol import NetworkPolicies
from auditor.facts.routes import RouteIndex
from auditor.facts.services import ServiceIndex
from auditor.facts.waypoint import (
    NAMESPACE,
    SERVICE_TRAFFIC,
    USE_WAYPOINT,
    WORKLOAD_TRAFFIC,
    Binding,
    WaypointResolver,
    exempt_service,
)
from auditor.facts.workloads import Workload, collect_workloads
from auditor.model.snapshot import K8sObject, Snapshot
from auditor.core.versions import V1_24, Version

MODES = ("ambient", "sidecar", "none")
EXAMPLES = 5  # objects named in a finding's examples


@dataclass(frozen=True)
class AuditOptions:
    """What the caller knows beyond the objects."""

    strict_maturity: bool = False  # upgrade-alpha-feature becomes a warning
    sidecar_scope_threshold: int = 50
    # For objects read from a cluster: the resource types collected completely. Rules
    # about what is *absent* from a cluster only judge types in this set.
    collected: frozenset | None = None
    kubernetes_version: Version | None = None
    cluster_name: str = "cluster"
    member: str | None = None  # in an audit of several clusters, this one's name (findings carry it)


def _per_namespace_elsewhere(old: dict, change: Change, ctx) -> dict:
    return {ns: value for ns, value in old.items() if ns not in change.namespaces}


def _relabelled(old: dict, entries, change: Change) -> dict:
    """A copy of a Service index whose `entries` hold the change's relabelled Services."""
    out = dict(old)
    for entry in entries:
        out[entry] = [change.relabelled_services.get(s.key, s) for s in out[entry]]
    return out


def _services_patched(old: dict, change: Change, ctx) -> dict | None:
    """A Service index by namespace: the changed namespaces' entries patched."""
    return _relabelled(old, change.namespaces & old.keys(), change) if change.relabelled_services else None


def _services_of_patched(old: dict, change: Change, ctx) -> dict | None:
    """Services by the workload they select: a Service selects workloads of its own
    namespace only, so the changed namespaces' workloads' entries are patched."""
    if not change.relabelled_services:
        return None
    return _relabelled(old, [i for ns in change.namespaces for i in ctx.index.in_namespace(ns) if i in old], change)


def _kept_when_relabelled(reads: frozenset):
    """For indices by Service key and host, which Service labels do not enter."""
    def carry(old, change: Change, ctx):
        return old if change.relabelled_services and not (change.gks - {k.SERVICE}) & reads else None
    return carry


def _user_parts_patched(old: dict, change: Change, ctx) -> dict:
    parts = _per_namespace_elsewhere(old, change, ctx)
    parts.update(ctx._waypoint_user_parts(set(change.namespaces)))
    return parts


_ROUTE_READS = frozenset({k.VIRTUAL_SERVICE, k.SERVICE, k.SERVICE_ENTRY, k.GATEWAY, *k.ROUTE_GKS})
_EGRESS_READS = frozenset({k.VIRTUAL_SERVICE, k.SERVICE, k.SERVICE_ENTRY})
ROUTES = Index("routes", _ROUTE_READS, _kept_when_relabelled(_ROUTE_READS))
NETPOLS = Index("netpols", frozenset({k.NETWORK_POLICY}))
EGRESS = Index("egress", _EGRESS_READS, _kept_when_relabelled(_EGRESS_READS))
SERVICES_OF = Index("services_of", frozenset({k.SERVICE}), _services_of_patched)
SERVICES_BY_NAMESPACE = Index("services_by_namespace", frozenset({k.SERVICE}), _services_patched)
USE_WAYPOINT_LABELS = Index("use_waypoint_labels", carry=_per_namespace_elsewhere)
SIDECAR_SERVICES = Index("sidecar_services", carry=_per_namespace_elsewhere)
WAYPOINT_USER_PARTS = Index("waypoint_user_parts", carry=_user_parts_patched)
WAYPOINT_USERS = Index("waypoint_users")


class Context:
    def __init__(self, snapshot: Snapshot, istio_version: Version | None = None, options: AuditOptions | None = None):
        self.snapshot = snapshot
        self.options = options or AuditOptions()
        self.installation: Installation = read_installation(snapshot, istio_version)
        self.namespace_labels = {ns.name: ns.labels for ns in snapshot.of(k.NAMESPACE)}
        self.workloads, replicas = collect_workloads(snapshot)
        self.index = LabelIndex()
        self._workload_of: dict[tuple, Workload] = dict(replicas)
        for w in self.workloads:
            w.resolve_mode(self.ns_labels(w.namespace), self.installation)
            self.index.add(w.id, w.namespace, w.labels)
            self._workload_of[w.obj.key] = w
        self.services = ServiceIndex(snapshot, self.index)
        self.waypoints = WaypointResolver(snapshot, self.namespace_labels, self.installation.istio_version)
        self.egress_gateway_hosts = egress_gateway_hosts(snapshot)
        # Per-object facts, filled by auditor.facts.subjects.facts_for.
        self.facts_cache: dict[tuple, dict | None] = {}
        self._service_bindings: dict[tuple, Binding] = {}
        # How each policy attaches, filled by auditor.facts.attachment.attachment_of.
        self.attachments: dict[tuple, object] = {}
        self._built: dict[str, tuple[Index, object]] = {}  # name -> (index, value), see once()
        self._pending: dict[str, tuple[Index, object]] = {}  # a what-if copy's indices to carry over
        self._change: Change | None = None
        # In an audit of several clusters, the mesh across them (facts.topology.Topology).
        self.topology = None
        self.mesh = self._mesh_facts()

    def forget_facts(self) -> None:
        """Drop the facts built per object (an audit's largest part): a context kept as the
        base of what-if copies needs its indices, not them (copies build their own)."""
        self.facts_cache.clear()

    def warm(self) -> None:
        """Build every index that is otherwise built on first use, so that what-if copies
        (auditor.facts.derive) share them instead of each building its own. (An audit that forked
        built them in its worker processes, not here.) The policy target index is built by
        auditor.facts.attachment.warm_targets."""
        self.routes, self.netpols, self.egress_routes_by_host(), self.services_of(-1), self.sidecar_services()
        self.asks_for_waypoints()
        self.once(WAYPOINT_USERS, self._build_waypoint_users)

    def derived(self, snapshot: Snapshot, change: Change, workloads: list[Workload], workload_of: dict,
                services: ServiceIndex, egress_hosts) -> "Context":
        """A what-if copy of this context for `snapshot` (auditor.facts.derive decides when one
        can be made, and re-resolves the workloads of the changed namespaces): it shares the
        label index, the installation and every index the change cannot reach."""
        out = Context.__new__(Context)
        out.snapshot, out.options, out.installation, out.index = snapshot, self.options, self.installation, self.index
        gone = {o.name for o in change.objects if o.gk == k.NAMESPACE}
        out.namespace_labels = {ns: labels for ns, labels in self.namespace_labels.items() if ns not in gone}
        out.namespace_labels.update((ns.name, ns.labels) for ns in change.put if ns.gk == k.NAMESPACE)
        out.workloads, out._workload_of = workloads, workload_of
        for w in out.workloads:
            if w.namespace in change.namespaces:
                w.resolve_mode(out.ns_labels(w.namespace), out.installation)
        out.services = services
        out.waypoints = WaypointResolver(snapshot, out.namespace_labels, out.installation.istio_version)
        out.egress_gateway_hosts = egress_hosts
        out.facts_cache, out._service_bindings, out.attachments = {}, {}, {}
        out._built = {name: built for name, built in self._built.items()
                      if built[0].reads is not None and not built[0].reads & change.gks}
        out._pending = {name: built for name, built in self._built.items() if name not in out._built and built[0].carry}
        out._change = change
        out.topology = self.topology
        out.mesh = out._mesh_facts(self._mode_totals(workloads, change.namespaces))
        return out

    def _mode_totals(self, workloads: list[Workload], namespaces) -> dict:
        """The mesh's workloads by mode with `workloads` in `namespaces` instead of these."""
        totals = dict(self.mesh["workloads"])
        totals.pop("total", None)
        for ns in namespaces:
            for i in self.index.in_namespace(ns):
                for ws, sign in ((self.workloads, -1), (workloads, 1)):
                    if ws[i].role == "app":
                        totals[ws[i].mode] += sign * ws[i].count
        return totals

    # -- lookups ---------------------------------------------------------------------------

    def ns_labels(self, namespace: str | None) -> dict:
        return self.namespace_labels.get(namespace or "", {})

    def workload(self, obj: K8sObject) -> Workload | None:
        return self._workload_of.get(obj.key)

    def workloads_by_key(self) -> dict[tuple, Workload]:
        """Object key -> its workload (replicas included): a copy."""
        return dict(self._workload_of)

    def binding(self, obj: K8sObject) -> Binding:
        """Waypoint binding of a Service, ServiceEntry, Namespace or workload object."""
        if obj.gk in (k.SERVICE, k.SERVICE_ENTRY):
            cached = self._service_bindings.get(obj.key)
            if cached is None:
                cached = self.waypoints.resolve(SERVICE_TRAFFIC, obj.namespace or "", obj.labels, exempt=exempt_service(obj))
                if obj.gk == k.SERVICE_ENTRY and not self.version_at_least(V1_24):
                    cached = Binding(None, cached.requested, cached.source, "unsupported",
                                     "ServiceEntries are bound to waypoints from Istio 1.24 on")
                self._service_bindings[obj.key] = cached
            return cached
        if obj.gk == k.NAMESPACE:
            return self.waypoints.resolve(NAMESPACE, obj.name, obj.labels)
        w = self.workload(obj)
        labels = w.labels if w is not None else obj.labels
        return self.waypoints.resolve(WORKLOAD_TRAFFIC, obj.namespace or "", labels, exempt=w is not None and w.role == "waypoint")

    def mode_counts(self, ids) -> dict:
        """Running pods and pod templates by mode (a workload counts its replicas)."""
        counts = dict.fromkeys(MODES, 0)
        for i in ids:
            w = self.workloads[i]
            if w.role == "app":
                counts[w.mode] += w.count
        return counts

    def ambient_ids(self, ids) -> list[int]:
        return [i for i in ids if self.workloads[i].mode == "ambient" and self.workloads[i].role == "app"]

    def examples(self, ids) -> list[str]:
        """A few of these workloads, named the way findings name them."""
        return sorted({subject_ref(self.workloads[i]) for i in ids})[:EXAMPLES]

    def ambient_in_use(self) -> bool:
        """Ambient workloads run, or a namespace asks for ambient mode."""
        return self.mesh["has_ambient"] or bool(self.mesh["ambient_namespaces"])

    def version_at_least(self, version: Version) -> bool:
        """True when the Istio version in force is at least `version`, or unknown."""
        v = self.installation.istio_version
        return v is None or v >= version

    # -- indices built on first use ----------------------------------------------------------

    def once(self, index: Index, build):
        """An index built on first use by `build()` (or carried over from the context this
        what-if copy was made from), then kept."""
        built = self._built.get(index.name)
        if built is None:
            value, pending = None, self._pending.pop(index.name, None)
            if pending is not None:
                value = pending[0].carry(pending[1], self._change, self)
            built = self._built[index.name] = (index, build() if value is None else value)
        return built[1]

    @property
    def routes(self) -> RouteIndex:
        return self.once(ROUTES, lambda: RouteIndex(self.snapshot, self.services))

    @property
    def netpols(self) -> NetworkPolicies:
        return self.once(NETPOLS, lambda: NetworkPolicies(self.snapshot.of(k.NETWORK_POLICY), self.index))

    def egress_routes_by_host(self) -> dict[str, list[str]]:
        return self.once(EGRESS, lambda: egress_routes_by_host(self.snapshot, self.egress_gateway_hosts))

    def routes_to_egress_gateway(self, vs: K8sObject) -> bool:
        return routes_to_egress_gateway(vs, self.egress_gateway_hosts)

    def services_of(self, workload_id: int) -> list[K8sObject]:
        """Services that select a workload (the reverse of ServiceIndex.selected_workloads)."""
        def build():
            reverse: dict[int, list[K8sObject]] = {}
            for svc in self.snapshot.of(k.SERVICE):
                for i in self.services.selected_workloads(svc):
                    reverse.setdefault(i, []).append(svc)
            return reverse
        return self.once(SERVICES_OF, build).get(workload_id, [])

    def asks_for_waypoints(self) -> bool:
        """Whether a Namespace, Service or ServiceEntry carries istio.io/use-waypoint (per
        namespace, so a what-if copy looks again only where something changed)."""
        found = self.once(USE_WAYPOINT_LABELS, dict)
        if len(found) < len(self.namespace_labels) or not found:
            by_ns = self.once(SERVICES_BY_NAMESPACE, self._services_by_namespace)
            entries: dict[str, list[K8sObject]] = {}
            for se in self.snapshot.of(k.SERVICE_ENTRY):
                entries.setdefault(se.namespace or "", []).append(se)
            for ns in set(self.namespace_labels) | set(by_ns) | set(entries):
                if ns not in found:
                    found[ns] = USE_WAYPOINT in self.ns_labels(ns) or any(
                        USE_WAYPOINT in o.labels for o in (*by_ns.get(ns, ()), *entries.get(ns, ())))
        return any(found.values())

    def sidecar_services(self) -> int:
        """How many Services select sidecar workloads (counted per namespace, so a what-if
        copy recounts only the namespaces that changed)."""
        counts = self.once(SIDECAR_SERVICES, dict)
        by_ns = self.once(SERVICES_BY_NAMESPACE, self._services_by_namespace)
        for ns, services in by_ns.items():
            if ns not in counts:
                counts[ns] = sum(1 for svc in services if self.mode_counts(self.services.selected_workloads(svc))["sidecar"])
        return sum(counts.values())

    def _services_by_namespace(self) -> dict[str, list[K8sObject]]:
        out: dict[str, list[K8sObject]] = {}
        for svc in self.snapshot.of(k.SERVICE):
            out.setdefault(svc.namespace or "", []).append(svc)
        return out

    def waypoint_users(self, gateway: K8sObject) -> list[str]:
        """Objects whose labels ask for this Gateway as their waypoint."""
        return self.once(WAYPOINT_USERS, self._build_waypoint_users).get((gateway.namespace, gateway.name), [])

    def _build_waypoint_users(self) -> dict[tuple, list[str]]:
        users: dict[tuple, list[str]] = {}
        for part in self.once(WAYPOINT_USER_PARTS, self._waypoint_user_parts).values():
            for requested, ref in part:
                users.setdefault(requested, []).append(ref)
        return {key: sorted(set(v)) for key, v in users.items()}

    def _waypoint_user_parts(self, namespaces: set[str] | None = None) -> dict[str, list[tuple]]:
        """Namespace -> (requested waypoint, who asks) of its Namespace, Services,
        ServiceEntries and workloads: kept per namespace so a what-if copy redoes only
        the namespaces that changed."""
        parts: dict[str, list[tuple]] = {}
        if namespaces is None:
            objects = self.snapshot.of(k.NAMESPACE, k.SERVICE, k.SERVICE_ENTRY)
        else:
            by_ns = self.once(SERVICES_BY_NAMESPACE, self._services_by_namespace)
            objects = [o for ns in namespaces for o in (self.snapshot.get(k.NAMESPACE, None, ns), *by_ns.get(ns, ()))
                       if o is not None] + [o for o in self.snapshot.of(k.SERVICE_ENTRY) if o.namespace in namespaces]
        for obj in objects:
            ns = obj.name if obj.gk == k.NAMESPACE else obj.namespace or ""
            if namespaces is None or ns in namespaces:
                b = self.binding(obj)
                if b.requested:
                    parts.setdefault(ns, []).append((b.requested, obj.ref()))
        for w in self.workloads if namespaces is None else (self.workloads[i] for ns in namespaces
                                                            for i in self.index.in_namespace(ns)):
            if USE_WAYPOINT not in w.labels:  # only a workload's own label binds it directly
                continue
            b = self.binding(w.obj)
            if b.requested and b.source == "object":
                parts.setdefault(w.namespace, []).append((b.requested, subject_ref(w)))
        return parts

    # -- cluster-wide ----------------------------------------------------------------------

    def _mesh_facts(self, counts: dict | None = None) -> dict:
        s = self.installation
        counts = counts if counts is not None else self.mode_counts(range(len(self.workloads)))
        return {
            "root_namespace": s.root_namespace,
            "istio_version": str(s.istio_version) if s.istio_version else None,
            "istio_minor": s.istio_version.minor_str if s.istio_version else None,
            "version_source": s.version_source,
            "outbound_traffic_policy": s.outbound_traffic_policy,
            "mesh_config_found": s.mesh_config_object is not None,
            "workloads": dict(counts, total=sum(counts.values())),
            "has_ambient": counts["ambient"] > 0,
            "has_sidecar": counts["sidecar"] > 0,
            "ambient_namespaces": sorted(n for n, labels in self.namespace_labels.items() if m.namespace_in_ambient(labels)),
            "cni_excluded_namespaces": sorted(s.cni_excluded_namespaces),
            # ztunnel's DNS capture: "on" or "off" as istio-cni-config says, "default" where it says nothing.
            "dns_capture": {True: "on", False: "off", None: "default"}[s.dns_capture],
            # major*10000 + minor*100 + patch, so rules can compare versions; 0 when unknown.
            "istio_version_number": version_number(s.istio_version),
            "strict_maturity": self.options.strict_maturity,
            "live": self.options.collected is not None,
            "clusters": 1,  # in an audit of several, their number (see join_mesh)
        }

    def join_mesh(self, topology) -> None:
        """Make this cluster's context part of an audit of several (facts.topology)."""
        self.topology = topology
        self.mesh = {**self.mesh, **topology.mesh_facts()}


def version_number(v: Version | None) -> int:
    return v.major * 10000 + v.minor * 100 + v.patch if v else 0


def subject_ref(w: Workload) -> str:
    """How findings name a workload: its top owner, else the object itself."""
    if w.owner is not None:
        return f"{w.owner.kind} {w.owner.namespace}/{w.owner.name}"
    return w.obj.ref()
