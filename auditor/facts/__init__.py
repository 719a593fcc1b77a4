"""Facts: Istio's answers about a snapshot, as plain data for rules.

`Facts(snapshot)` resolves every workload's mode once and indexes workloads by label;
`for_object(obj)` then builds (and caches) the facts one object's rules read, and
`mesh` holds the cluster-wide ones.
"""

from __future__ import annotations

from collections import Counter

from auditor.facts import mode as m
from auditor.facts import policy as pol
from auditor.facts.authz import authorization_facts
from auditor.facts.labels import LabelIndex
from auditor.facts.mesh import MeshSettings, read_mesh_settings
from auditor.facts.services import SERVICE_ENTRY, ServiceIndex, qualify_host, service_fqdn
from auditor.facts.waypoint import (
    GATEWAY,
    NAMESPACE,
    SERVICE_TRAFFIC,
    WORKLOAD_TRAFFIC,
    Binding,
    WaypointResolver,
    exempt_service,
)
from auditor.facts.workloads import WORKLOAD_GKS, Workload, collect_workloads
from auditor.snapshot import K8sObject, Snapshot, as_dict, as_list
from auditor.versions import Version

VIRTUAL_SERVICE = "networking.istio.io/VirtualService"
MODES = ("ambient", "sidecar", "none")
EXAMPLES = 5


class Facts:
    def __init__(self, snapshot: Snapshot, istio_version: Version | None = None):
        self.snapshot = snapshot
        self.settings: MeshSettings = read_mesh_settings(snapshot, istio_version)
        self.namespace_labels = {ns.name: ns.labels for ns in snapshot.of("Namespace")}
        self.workloads: list[Workload] = collect_workloads(snapshot)
        self.index = LabelIndex()
        self._workload_of: dict[tuple, Workload] = {}
        for w in self.workloads:
            w.resolve_mode(self.ns_labels(w.namespace), self.settings)
            self.index.add(w.id, w.namespace, w.labels)
            self._workload_of[w.obj.key] = w
        self.services = ServiceIndex(snapshot, self.index)
        self.waypoints = WaypointResolver(snapshot, self.namespace_labels, self.settings.istio_version)
        self._cache: dict[tuple, dict | None] = {}
        self._service_bindings: dict[tuple, Binding] = {}
        self._egress_routes: dict[str, list[str]] | None = None
        self.egress_gateway_hosts = self._egress_gateway_hosts()
        self.mesh = self._mesh_facts()

    # -- lookups ---------------------------------------------------------------------------

    def ns_labels(self, namespace: str | None) -> dict:
        return self.namespace_labels.get(namespace or "", {})

    def workload(self, obj: K8sObject) -> Workload | None:
        return self._workload_of.get(obj.key)

    def binding(self, obj: K8sObject) -> Binding:
        """Waypoint binding of a Service, ServiceEntry, Namespace or workload object."""
        if obj.gk in ("Service", SERVICE_ENTRY):
            cached = self._service_bindings.get(obj.key)
            if cached is None:
                cached = self.waypoints.resolve(SERVICE_TRAFFIC, obj.namespace or "", obj.labels, exempt=exempt_service(obj))
                self._service_bindings[obj.key] = cached
            return cached
        if obj.gk == "Namespace":
            return self.waypoints.resolve(NAMESPACE, obj.name, obj.labels)
        w = self.workload(obj)
        labels = w.labels if w is not None else obj.labels
        return self.waypoints.resolve(WORKLOAD_TRAFFIC, obj.namespace or "", labels, exempt=w is not None and w.role == "waypoint")

    def mode_counts(self, ids) -> dict:
        counts = Counter(self.workloads[i].mode for i in ids if self.workloads[i].role == "app")
        return {mode: counts.get(mode, 0) for mode in MODES}

    def for_object(self, obj: K8sObject) -> dict | None:
        """Facts for one object; None when rules have nothing to say about it."""
        if obj.key not in self._cache:
            builder = _BUILDERS.get(obj.gk)
            facts = builder(self, obj) if builder else {}
            if facts is not None:
                facts.setdefault("observed", obj.observed)
                facts.setdefault("namespace_ambient", m.namespace_in_ambient(self.ns_labels(obj.namespace)))
            self._cache[obj.key] = facts
        return self._cache[obj.key]

    def egress_routes_by_host(self) -> dict[str, list[str]]:
        """Hosts that mesh VirtualServices steer to an egress gateway, and those VirtualServices."""
        if self._egress_routes is None:
            self._egress_routes = {}
            for vs in self.snapshot.of(VIRTUAL_SERVICE):
                if _applies_to_mesh(vs) and _routes_to_egress_gateway(self, vs):
                    for host in as_list(vs.spec.get("hosts")):
                        self._egress_routes.setdefault(qualify_host(str(host), vs.namespace or ""), []).append(vs.ref())
        return self._egress_routes

    # -- cluster-wide ----------------------------------------------------------------------

    def _egress_gateway_hosts(self) -> set[str]:
        hosts = set()
        for svc in self.snapshot.of("Service"):
            selector = svc.spec.get("selector") if isinstance(svc.spec.get("selector"), dict) else {}
            if "egressgateway" in svc.name or selector.get("istio") == "egressgateway":
                hosts.add(service_fqdn(svc.name, svc.namespace or ""))
        return hosts

    def _mesh_facts(self) -> dict:
        s = self.settings
        counts = self.mode_counts(range(len(self.workloads)))
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
        }


# -- per-kind builders -------------------------------------------------------------------------


def _workload_facts(facts: Facts, obj: K8sObject) -> dict | None:
    w = facts.workload(obj)
    if w is None:
        return None  # a ReplicaSet/Job run by its owner, or a finished pod
    return {
        "role": w.role,
        "mode": w.mode,
        "predicted_mode": w.predicted_mode,
        "observed_mode": w.observed_mode,
        "intends_ambient": w.intent.intends,
        "ambient_reason": w.intent.reason,
        "ambient_blocked_by": w.blocked_by,
        "sidecar_predicted": w.injection.inject,
        "injection_reason": w.injection.reason,
        "revision": w.injection.revision,
        "has_sidecar": w.sidecar,
        "native_sidecar": w.native_sidecar,
        "redirection": w.redirection,
        "host_network": w.host_network,
        "owner": f"{w.owner.kind} {w.owner.namespace}/{w.owner.name}" if w.owner else None,
        "waypoint": facts.binding(obj).to_facts(),
    }


def _namespace_facts(facts: Facts, obj: K8sObject) -> dict:
    labels = obj.labels
    return {
        "ambient": m.namespace_in_ambient(labels),
        "dataplane_mode": labels.get(m.DATAPLANE_MODE),
        "injection": labels.get(m.NS_INJECTION),
        "revision": labels.get(m.REV),
        "waypoint": facts.binding(obj).to_facts(),
        "workloads": facts.mode_counts(facts.index.in_namespace(obj.name)),
    }


def _service_facts(facts: Facts, obj: K8sObject) -> dict:
    counts = facts.mode_counts(facts.services.selected_workloads(obj))
    return {
        "workloads": counts,
        "has_ambient_workloads": counts["ambient"] > 0,
        "has_sidecar_workloads": counts["sidecar"] > 0,
        "waypoint": facts.binding(obj).to_facts(),
    }


def _service_entry_facts(facts: Facts, obj: K8sObject) -> dict:
    by_host = facts.egress_routes_by_host()
    routed = sorted({ref for h in as_list(obj.spec.get("hosts")) for ref in by_host.get(str(h).lower(), ())})
    return {
        "waypoint": facts.binding(obj).to_facts(),
        "egress_gateway_routes": routed,
    }


def _applies_to_mesh(vs: K8sObject) -> bool:
    gateways = as_list(vs.spec.get("gateways"))
    return not gateways or "mesh" in gateways


def _route_destinations(vs: K8sObject) -> list[str]:
    hosts = []
    for section in ("http", "tcp", "tls"):
        for route in as_list(vs.spec.get(section)):
            for dest in as_list(as_dict(route).get("route")):
                if isinstance(dest, dict) and isinstance(dest.get("destination"), dict):
                    hosts.append(str(dest["destination"].get("host", "")))
    return hosts


def _routes_to_egress_gateway(facts: Facts, vs: K8sObject) -> bool:
    return any(qualify_host(h, vs.namespace or "") in facts.egress_gateway_hosts for h in _route_destinations(vs))


def _virtual_service_facts(facts: Facts, obj: K8sObject) -> dict:
    hosts = []
    for host in as_list(obj.spec.get("hosts")):
        for target in facts.services.resolve_host(str(host), obj.namespace or ""):
            binding = facts.binding(target)
            counts = facts.mode_counts(facts.services.selected_workloads(target)) if target.gk == "Service" else None
            hosts.append({
                "host": str(host),
                "target": target.ref(),
                "waypoint": binding.waypoint and f"{binding.waypoint[0]}/{binding.waypoint[1]}",
                "waypoint_reason": binding.reason,
                "ambient_workloads": counts["ambient"] if counts else 0,
            })
    return {
        "applies_to_mesh": _applies_to_mesh(obj),
        "hosts": hosts,
        "ambient_hosts_without_waypoint": [h["target"] for h in hosts if h["ambient_workloads"] and not h["waypoint"]],
        "hosts_with_waypoint": [h["target"] for h in hosts if h["waypoint"]],
        "routes_to_egress_gateway": _routes_to_egress_gateway(facts, obj),
    }


def _config_map_facts(facts: Facts, obj: K8sObject) -> dict:
    is_mesh = facts.settings.mesh_config_object is obj
    return {
        "is_mesh_config": is_mesh,
        "outbound_traffic_policy": facts.settings.outbound_traffic_policy if is_mesh else None,
    }


def _target_ref(facts: Facts, policy: K8sObject, ref: dict) -> dict:
    group, kind, name = str(ref.get("group", "")), str(ref.get("kind", "")), str(ref.get("name", ""))
    ns = policy.namespace or ""
    out = {"group": group, "kind": kind, "name": name, "status": "invalid", "waypoint": None, "detail": ""}
    if (group, kind) not in pol.TARGET_KINDS:
        out["detail"] = f"{kind} is not a kind policies can target"
    elif ref.get("namespace") and ref.get("namespace") != ns:
        out["detail"] = "targets another namespace, which never matches"
    elif kind in ("Service", "ServiceEntry"):
        gk = "Service" if kind == "Service" else SERVICE_ENTRY
        target = facts.snapshot.get(gk, ns, name)
        if target is None:
            out.update(status="missing", detail=f"{kind} {ns}/{name} does not exist")
        else:
            binding = facts.binding(target)
            if binding.waypoint:
                out.update(status="waypoint", waypoint=f"{binding.waypoint[0]}/{binding.waypoint[1]}", detail=binding.detail)
            else:
                out.update(status="unbound", detail=f"{kind} {ns}/{name} has no waypoint: {binding.detail}")
    elif kind == "Gateway":
        gateway = facts.snapshot.get(GATEWAY, ns, name)
        if gateway is None:
            out.update(status="missing", detail=f"Gateway {ns}/{name} does not exist")
        else:
            waypoint = str(gateway.spec.get("gatewayClassName", "")).endswith("waypoint")
            out.update(status="waypoint" if waypoint else "gateway", waypoint=f"{ns}/{name}" if waypoint else None)
    else:  # GatewayClass: every waypoint of the class, from the root namespace only
        if ns == facts.settings.root_namespace:
            out.update(status="waypoint", detail=f"all waypoints of class {name}")
        else:
            out["detail"] = f"a GatewayClass target only works from the root namespace {facts.settings.root_namespace}"
    return out


def _policy_facts(facts: Facts, obj: K8sObject) -> dict:
    spec = obj.spec
    ns = obj.namespace or ""
    root = facts.settings.root_namespace
    scope = pol.scope_of(obj.gk, spec, ns, root)
    out: dict = {"scope": scope, "has_selector": pol.selector_of(obj.gk, spec) is not None}
    if scope == "targetRefs":
        refs = [_target_ref(facts, obj, r) for r in pol.target_refs_of(spec)]
        enforcers = {"waypoint" if r["status"] == "waypoint" else "gateway" for r in refs if r["status"] in ("waypoint", "gateway")}
        ids: list[int] = []
        out["target_refs"] = refs
        out["unbound_targets"] = [r["detail"] for r in refs if r["status"] in ("unbound", "missing")]
    else:
        if scope == "selector":
            ids = facts.index.select(None if ns == root and pol.mesh_wide_selector(obj.gk) else ns, pol.selector_of(obj.gk, spec))
        elif scope == "mesh":
            ids = facts.index.all()
        else:
            ids = facts.index.in_namespace(ns)
        enforcers = {pol.enforcer(obj.gk, facts.workloads[i].role, facts.workloads[i].mode) for i in ids}
        out["target_refs"] = []
        out["unbound_targets"] = []
    enforcers.discard("nobody")
    out["enforced_by"] = sorted(enforcers)
    out["selected"] = facts.mode_counts(ids)
    ambient = [facts.workloads[i] for i in ids if facts.workloads[i].mode == "ambient" and facts.workloads[i].role == "app"]
    out["ambient_examples"] = sorted({_subject_ref(w) for w in ambient})[:EXAMPLES]
    if obj.gk == pol.AUTHORIZATION_POLICY:
        out.update(authorization_facts(spec))
        out["dry_run"] = obj.annotations.get("istio.io/dry-run") == "true"
    if obj.gk == pol.SIDECAR:
        otp = spec.get("outboundTrafficPolicy")
        out["outbound_traffic_policy"] = str(otp.get("mode")) if isinstance(otp, dict) and otp.get("mode") else None
    return out


def _subject_ref(w: Workload) -> str:
    if w.owner is not None:
        return f"{w.owner.kind} {w.owner.namespace}/{w.owner.name}"
    return w.obj.ref()


_BUILDERS = {
    **{gk: _workload_facts for gk in WORKLOAD_GKS},
    "Namespace": _namespace_facts,
    "Service": _service_facts,
    SERVICE_ENTRY: _service_entry_facts,
    VIRTUAL_SERVICE: _virtual_service_facts,
    "ConfigMap": _config_map_facts,
    **{gk: _policy_facts for gk in pol.POLICY_GKS},
}
