"""Facts: Istio's answers about a snapshot, as plain data for rules.

`Facts(snapshot)` resolves every workload's mode once and indexes workloads by label;
`for_object(obj)` then builds (and caches) the facts one object's rules read, and
`mesh` holds the cluster-wide ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.facts import mode as m
from auditor.facts import policy as pol
from auditor.facts.authz import authorization_facts
from auditor.facts.labels import LabelIndex
from auditor.facts.mesh import MeshSettings, read_mesh_settings
from auditor.facts.netpol import NETWORK_POLICY, NetworkPolicies, is_ingress_policy, lists_ports
from auditor.facts.routes import (
    ROUTE_GKS,
    RouteIndex,
    applies_to_mesh,
    host_targets,
    is_waypoint_gateway,
    parent_refs,
    route_destinations,
)
from auditor.facts.services import SERVICE_ENTRY, ServiceIndex, qualify_host, service_fqdn
from auditor.facts.waypoint import (
    USE_WAYPOINT,
    GATEWAY,
    HBONE_PORT,
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
DESTINATION_RULE = "networking.istio.io/DestinationRule"
CLUSTER = "mesh-audit.io/Cluster"
MODES = ("ambient", "sidecar", "none")
EXAMPLES = 5
INGRESS_USE_WAYPOINT = "istio.io/ingress-use-waypoint"
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
# Policies that make a waypoint do L7 work for the services behind it.
L7_POLICY_GKS = (pol.AUTHORIZATION_POLICY, pol.REQUEST_AUTHENTICATION, pol.WASM_PLUGIN)
# Ports Istio treats as TCP without sniffing; names that suggest a server-first protocol.
SERVER_FIRST_SAFE_PORTS = frozenset({25, 53, 3306, 27017})
SERVER_FIRST_HINTS = ("mysql", "mariadb", "mongo", "smtp", "ftp", "imap", "pop3", "nats")
DECLARED_PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web", "mongo", "mysql", "redis", "tcp", "tls", "udp")
V1_25 = Version(1, 25)
V1_27 = Version(1, 27)
K8S_NATIVE_SIDECARS = Version(1, 29)


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


class Facts:
    def __init__(self, snapshot: Snapshot, istio_version: Version | None = None, options: AuditOptions | None = None):
        self.snapshot = snapshot
        self.options = options or AuditOptions()
        self.settings: MeshSettings = read_mesh_settings(snapshot, istio_version)
        self.namespace_labels = {ns.name: ns.labels for ns in snapshot.of("Namespace")}
        self.workloads, replicas = collect_workloads(snapshot)
        self.index = LabelIndex()
        self._workload_of: dict[tuple, Workload] = dict(replicas)
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
        self._routes: RouteIndex | None = None
        self._netpols: NetworkPolicies | None = None
        self._services_of: dict[int, list[K8sObject]] | None = None
        self._policies_by_target: dict[tuple, list[K8sObject]] | None = None
        self._waypoint_users: dict[tuple, list[str]] | None = None
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
        """Running pods and pod templates by mode (a workload counts its replicas)."""
        counts = dict.fromkeys(MODES, 0)
        for i in ids:
            w = self.workloads[i]
            if w.role == "app":
                counts[w.mode] += w.count
        return counts

    def for_object(self, obj: K8sObject) -> dict | None:
        """Facts for one object; None when rules have nothing to say about it."""
        if obj.key not in self._cache:
            builder = _BUILDERS.get(obj.gk)
            facts = builder(self, obj) if builder else {}
            if facts is not None:
                facts.setdefault("observed", obj.observed)
                facts.setdefault("namespace", obj.namespace)
                facts.setdefault("labels", obj.labels)
                facts.setdefault("annotations", obj.annotations)
                facts.setdefault("namespace_ambient", m.namespace_in_ambient(self.ns_labels(obj.namespace)))
            self._cache[obj.key] = facts
        return self._cache[obj.key]

    def egress_routes_by_host(self) -> dict[str, list[str]]:
        """Hosts that mesh VirtualServices steer to an egress gateway, and those VirtualServices."""
        if self._egress_routes is None:
            self._egress_routes = {}
            for vs in self.snapshot.of(VIRTUAL_SERVICE):
                if applies_to_mesh(vs) and _routes_to_egress_gateway(self, vs):
                    for host in as_list(vs.spec.get("hosts")):
                        self._egress_routes.setdefault(qualify_host(str(host), vs.namespace or ""), []).append(vs.ref())
        return self._egress_routes

    @property
    def routes(self) -> RouteIndex:
        if self._routes is None:
            self._routes = RouteIndex(self.snapshot, self.services)
        return self._routes

    @property
    def netpols(self) -> NetworkPolicies:
        if self._netpols is None:
            self._netpols = NetworkPolicies(self.snapshot.of(NETWORK_POLICY), self.index)
        return self._netpols

    def services_of(self, workload_id: int) -> list[K8sObject]:
        """Services that select a workload (the reverse of ServiceIndex.selected_workloads)."""
        if self._services_of is None:
            self._services_of = {}
            for svc in self.snapshot.of("Service"):
                for i in self.services.selected_workloads(svc):
                    self._services_of.setdefault(i, []).append(svc)
        return self._services_of.get(workload_id, [])

    def policies_targeting(self, gk: str, namespace: str, name: str) -> list[K8sObject]:
        """L7 policies whose targetRefs name this Service, ServiceEntry, Gateway or GatewayClass."""
        if self._policies_by_target is None:
            self._policies_by_target = {}
            for policy in self.snapshot.of(*L7_POLICY_GKS):
                for ref in pol.target_refs_of(policy.spec):
                    kind, group = str(ref.get("kind", "")), str(ref.get("group", ""))
                    if kind in ("Gateway", "GatewayClass"):
                        group = group or "gateway.networking.k8s.io"
                    ref_gk = "Service" if kind == "Service" else (SERVICE_ENTRY if kind == "ServiceEntry" else f"{group}/{kind}")
                    ns = None if kind == "GatewayClass" else policy.namespace
                    self._policies_by_target.setdefault((ref_gk, ns, str(ref.get("name", ""))), []).append(policy)
        return self._policies_by_target.get((gk, namespace, name), [])

    def waypoint_policies(self, target: K8sObject, binding: Binding) -> list[str]:
        """L7 policies a waypoint applies to traffic for `target`: those naming the target,
        the waypoint's Gateway, or (from the root namespace) the waypoint's class."""
        if not binding.waypoint:
            return []
        found = list(self.policies_targeting(target.gk, target.namespace, target.name))
        wp_ns, wp_name = binding.waypoint
        found += self.policies_targeting(GATEWAY, wp_ns, wp_name)
        gateway = self.snapshot.get(GATEWAY, wp_ns, wp_name)
        if gateway is not None:
            cls = str(gateway.spec.get("gatewayClassName", ""))
            found += [p for p in self.policies_targeting("gateway.networking.k8s.io/GatewayClass", None, cls)
                      if p.namespace == self.settings.root_namespace]
        return sorted({p.ref() for p in found})

    def waypoint_users(self, gateway: K8sObject) -> list[str]:
        """Objects whose labels ask for this Gateway as their waypoint."""
        if self._waypoint_users is None:
            users: dict[tuple, list[str]] = {}
            subjects = [*self.snapshot.of("Namespace", "Service", SERVICE_ENTRY)]
            for obj in subjects:
                b = self.binding(obj)
                if b.requested:
                    users.setdefault(b.requested, []).append(obj.ref())
            for w in self.workloads:
                if USE_WAYPOINT not in w.labels:  # only a workload's own label binds it directly
                    continue
                b = self.binding(w.obj)
                if b.requested and b.source == "object":
                    users.setdefault(b.requested, []).append(_subject_ref(w))
            self._waypoint_users = {k: sorted(set(v)) for k, v in users.items()}
        return self._waypoint_users.get((gateway.namespace, gateway.name), [])

    def version_at_least(self, version: Version) -> bool:
        """True when the Istio version in force is at least `version`, or unknown."""
        v = self.settings.istio_version
        return v is None or v >= version

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
            # major*10000 + minor*100 + patch, so rules can compare versions; 0 when unknown.
            "istio_version_number": _version_number(s.istio_version),
            "strict_maturity": self.options.strict_maturity,
            "live": self.options.collected is not None,
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
        "kind": obj.kind,
        "is_template": w.is_template,
        "labels": w.labels,
        "annotations": w.annotations,
        "namespace_labels": facts.ns_labels(w.namespace),
        "runs_to_completion": _runs_to_completion(obj, w),
        "mode_drift": _mode_drift(w),
        "sidecar_is_native": _sidecar_is_native(facts, w),
    }


def _mode_drift(w: Workload) -> str | None:
    """For a running pod whose mode differs from what its labels would give a new pod: how."""
    if w.observed_mode is None or w.observed_mode == w.predicted_mode:
        return None
    return f"runs in {w.observed_mode} mode, but a pod created now would run in {w.predicted_mode} mode"


def _runs_to_completion(obj: K8sObject, w: Workload) -> bool:
    """A Job, a CronJob, or a pod a Job runs."""
    if obj.kind in ("Job", "CronJob"):
        return True
    return obj.kind == "Pod" and any(
        isinstance(r, dict) and r.get("kind") == "Job" for r in as_list(obj.metadata.get("ownerReferences"))
    )


def _sidecar_is_native(facts: Facts, w: Workload) -> bool:
    """Whether the workload's istio-proxy is (or will be) a native sidecar: an init container
    with restartPolicy Always. The injector makes it one from Istio 1.27 on Kubernetes 1.29+,
    or when the pod asks with the sidecar.istio.io/nativeSidecar annotation."""
    if w.sidecar:
        return w.native_sidecar
    asked = w.annotations.get(NATIVE_SIDECAR)
    if asked in ("true", "false"):
        return asked == "true"
    istio, kube = facts.settings.istio_version, facts.options.kubernetes_version
    return istio is not None and istio >= V1_27 and (kube is None or kube >= K8S_NATIVE_SIDECARS)


def _version_number(v: Version | None) -> int:
    return v.major * 10000 + v.minor * 100 + v.patch if v else 0


def _namespace_facts(facts: Facts, obj: K8sObject) -> dict:
    labels = obj.labels
    return {
        "ambient": m.namespace_in_ambient(labels),
        "dataplane_mode": labels.get(m.DATAPLANE_MODE),
        "injection": labels.get(m.NS_INJECTION),
        "revision": labels.get(m.REV),
        "waypoint": facts.binding(obj).to_facts(),
        "workloads": facts.mode_counts(facts.index.in_namespace(obj.name)),
        "cni_excluded": obj.name in facts.settings.cni_excluded_namespaces,
    }


def _service_facts(facts: Facts, obj: K8sObject) -> dict:
    selected = facts.services.selected_workloads(obj)
    counts = facts.mode_counts(selected)
    binding = facts.binding(obj)
    return {
        "workloads": counts,
        "has_ambient_workloads": counts["ambient"] > 0,
        "has_sidecar_workloads": counts["sidecar"] > 0,
        "waypoint": binding.to_facts(),
        "waypoint_policies": facts.waypoint_policies(obj, binding),
        "ingress_routes": sorted(set(facts.routes.ingress_routes.get(obj.key, ()))),
        "ingress_use_waypoint": _ingress_use_waypoint(facts, obj),
        "server_first_ports": _server_first_ports(facts, obj, selected) if counts["sidecar"] else [],
    }


def _parse_bool(value: str | None) -> bool | None:
    """Go's strconv.ParseBool, which Istio uses for boolean labels."""
    if value is None:
        return None
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _ingress_use_waypoint(facts: Facts, obj: K8sObject) -> bool:
    """The Service's label, else (1.25+) its namespace's: whether ingress gateways send
    traffic for this Service through its waypoint."""
    own = _parse_bool(obj.labels.get(INGRESS_USE_WAYPOINT))
    if own is not None:
        return own
    if facts.version_at_least(V1_25):
        return bool(_parse_bool(facts.ns_labels(obj.namespace).get(INGRESS_USE_WAYPOINT)))
    return False


def _declares_protocol(port: dict) -> bool:
    if port.get("appProtocol"):
        return True
    name = str(port.get("name") or "").lower()
    return any(name == p or name.startswith(p + "-") for p in DECLARED_PROTOCOLS)


def _server_first_ports(facts: Facts, svc: K8sObject, selected: list[int]) -> list[str]:
    """Ports of a sidecar-backed Service that Istio will sniff although the server speaks first."""
    images, container_ports = [], {}
    for i in selected:
        w = facts.workloads[i]
        if w.mode != "sidecar":
            continue
        for c in as_list(w.pod_spec.get("containers")):
            if not isinstance(c, dict) or c.get("name") == m.PROXY_CONTAINER:
                continue
            images.append(str(c.get("image") or "").lower())
            for p in as_list(c.get("ports")):
                if isinstance(p, dict) and p.get("name"):
                    container_ports[str(p["name"])] = p.get("containerPort")
    out = []
    for port in as_list(svc.spec.get("ports")):
        if not isinstance(port, dict) or _declares_protocol(port):
            continue
        number = port.get("port")
        if number in SERVER_FIRST_SAFE_PORTS:
            continue
        target = port.get("targetPort")
        words = [str(port.get("name") or "").lower(), str(target).lower() if isinstance(target, str) else ""]
        hints = [h for h in SERVER_FIRST_HINTS if any(h in w for w in words if w)]
        hints += [h for h in SERVER_FIRST_HINTS if h not in hints and any(h in image.rsplit("/", 1)[-1] for image in images)]
        if hints:
            label = str(port.get("name") or number)
            out.append(f"{label} ({number}/{port.get('protocol') or 'TCP'}, looks like {hints[0]})")
    return out


def _service_entry_facts(facts: Facts, obj: K8sObject) -> dict:
    by_host = facts.egress_routes_by_host()
    routed = sorted({ref for h in as_list(obj.spec.get("hosts")) for ref in by_host.get(str(h).lower(), ())})
    hosts = [str(h) for h in as_list(obj.spec.get("hosts"))]
    return {
        "waypoint": facts.binding(obj).to_facts(),
        "egress_gateway_routes": routed,
        "wildcard_hosts": [h for h in hosts if h.startswith("*")],
        "resolution": str(obj.spec.get("resolution") or "NONE"),
    }


def _routes_to_egress_gateway(facts: Facts, vs: K8sObject) -> bool:
    return any(qualify_host(h, vs.namespace or "") in facts.egress_gateway_hosts for h in route_destinations(vs))


def _virtual_service_facts(facts: Facts, obj: K8sObject) -> dict:
    hosts = []
    for host in as_list(obj.spec.get("hosts")):
        for target in facts.services.resolve_host(str(host), obj.namespace or ""):
            binding = facts.binding(target)
            counts = facts.mode_counts(facts.services.selected_workloads(target)) if target.gk == "Service" else None
            hosts.append({
                "key": target.key,
                "host": str(host),
                "target": target.ref(),
                "waypoint": binding.waypoint and f"{binding.waypoint[0]}/{binding.waypoint[1]}",
                "waypoint_reason": binding.reason,
                "ambient_workloads": counts["ambient"] if counts else 0,
            })
    mesh_parents = facts.routes.mesh_route_parents
    conflicts = sorted({f"{h['target']} (also routed by {', '.join(sorted(set(mesh_parents[k])))})"
                        for h, k in ((h, h["key"]) for h in hosts) if k in mesh_parents})
    for h in hosts:
        del h["key"]
    return {
        "applies_to_mesh": applies_to_mesh(obj),
        "hosts": hosts,
        "ambient_hosts_without_waypoint": [h["target"] for h in hosts if h["ambient_workloads"] and not h["waypoint"]],
        "hosts_with_waypoint": [h["target"] for h in hosts if h["waypoint"]],
        "hosts_without_waypoint": [h["target"] for h in hosts if not h["waypoint"]],
        "routes_to_egress_gateway": _routes_to_egress_gateway(facts, obj),
        "httproute_conflicts": conflicts if applies_to_mesh(obj) else [],
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
            if target.gk == "Service":
                out["sidecar_workloads"] = facts.mode_counts(facts.services.selected_workloads(target))["sidecar"]
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
    out["selector_and_target_refs"] = out["has_selector"] and bool(pol.target_refs_of(spec))
    if scope == "targetRefs":
        refs = [_target_ref(facts, obj, r) for r in pol.target_refs_of(spec)]
        enforcers = {"waypoint" if r["status"] == "waypoint" else "gateway" for r in refs if r["status"] in ("waypoint", "gateway")}
        ids: list[int] = []
        out["target_refs"] = refs
        out["unbound_targets"] = [r["detail"] for r in refs if r["status"] in ("unbound", "missing")]
        out["invalid_targets"] = [r["detail"] for r in refs if r["status"] == "invalid"]
        out["waypoint_targets"] = [f"{r['kind']} {ns}/{r['name']}" for r in refs if r["status"] == "waypoint"]
        out["sidecar_targets"] = [f"{r['kind']} {ns}/{r['name']} ({r['sidecar_workloads']} sidecar workloads)"
                                  for r in refs if r.get("sidecar_workloads")]
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
        out["invalid_targets"] = []
        out["waypoint_targets"] = []
        out["sidecar_targets"] = []
    enforcers.discard("nobody")
    out["enforced_by"] = sorted(enforcers)
    out["selected"] = facts.mode_counts(ids)
    out["ambient_examples"] = _examples(facts, ambient_ids(facts, ids))
    if obj.gk == pol.AUTHORIZATION_POLICY:
        out.update(authorization_facts(spec))
        out["dry_run"] = obj.annotations.get("istio.io/dry-run") == "true"
        out["identity_behind_waypoint"] = _services_with_waypoint(facts, ambient_ids(facts, ids))
    if obj.gk == pol.PEER_AUTHENTICATION:
        modes = [str(as_dict(spec.get("mtls")).get("mode") or "UNSET")]
        modes += [str(as_dict(v).get("mode") or "UNSET") for v in as_dict(spec.get("portLevelMtls")).values()]
        out["mtls_modes"] = sorted(set(modes))
    if obj.gk == pol.ENVOY_FILTER:
        out["waypoint_context"] = any(
            as_dict(as_dict(patch).get("match")).get("context") == "WAYPOINT" for patch in as_list(spec.get("configPatches"))
        )
    if obj.gk == pol.SIDECAR:
        otp = spec.get("outboundTrafficPolicy")
        out["outbound_traffic_policy"] = str(otp.get("mode")) if isinstance(otp, dict) and otp.get("mode") else None
    return out


def ambient_ids(facts: Facts, ids) -> list[int]:
    return [i for i in ids if facts.workloads[i].mode == "ambient" and facts.workloads[i].role == "app"]


def _examples(facts: Facts, ids) -> list[str]:
    return sorted({_subject_ref(facts.workloads[i]) for i in ids})[:EXAMPLES]


def _services_with_waypoint(facts: Facts, ids: list[int]) -> list[str]:
    """Services bound to a waypoint that select any of these workloads."""
    found = set()
    for i in ids:
        for svc in facts.services_of(i):
            binding = facts.binding(svc)
            if binding.waypoint:
                found.add(f"{svc.ref()} (waypoint {binding.waypoint[0]}/{binding.waypoint[1]})")
    return sorted(found)[:EXAMPLES]


def _subject_ref(w: Workload) -> str:
    if w.owner is not None:
        return f"{w.owner.kind} {w.owner.namespace}/{w.owner.name}"
    return w.obj.ref()


def _gateway_facts(facts: Facts, obj: K8sObject) -> dict:
    listeners = [lst for lst in as_list(obj.spec.get("listeners")) if isinstance(lst, dict)]
    users = facts.waypoint_users(obj)
    readiness, why = "unknown", ""  # a manifest says nothing about readiness
    if obj.observed:
        status = as_dict(obj.raw.get("status"))
        programmed = [c for c in as_list(status.get("conditions")) if isinstance(c, dict) and c.get("type") == "Programmed"]
        if not status.get("addresses"):
            readiness, why = "not-ready", "it has no status.addresses"
        elif programmed and programmed[0].get("status") != "True":
            readiness = "not-ready"
            why = f"its Programmed condition is {programmed[0].get('status')} ({programmed[0].get('reason', 'no reason')})"
        else:
            readiness = "ready"
    return {
        "is_waypoint": is_waypoint_gateway(obj),
        "waypoint_for": facts.waypoints.traffic_type(obj),
        "hbone_listener": any(lst.get("port") == HBONE_PORT and lst.get("protocol") == "HBONE" for lst in listeners),
        "users": users[:EXAMPLES],
        "user_count": len(users),
        "readiness": readiness,
        "not_ready_reason": why,
    }


def _route_facts(facts: Facts, obj: K8sObject) -> dict:
    parents = []
    for p in parent_refs(obj):
        entry = {"parent": str(p), "kind": p.gk.rpartition("/")[2], "exists": False, "waypoint": None,
                 "ambient_workloads": 0, "waypoint_reason": None}
        target = facts.snapshot.get(p.gk, p.namespace, p.name)
        if target is not None:
            entry["exists"] = True
            if p.gk in ("Service", SERVICE_ENTRY):
                binding = facts.binding(target)
                entry["waypoint"] = binding.waypoint and f"{binding.waypoint[0]}/{binding.waypoint[1]}"
                entry["waypoint_reason"] = binding.detail
                if p.gk == "Service":
                    entry["ambient_workloads"] = facts.mode_counts(facts.services.selected_workloads(target))["ambient"]
            elif is_waypoint_gateway(target):
                entry["waypoint"] = f"{p.namespace}/{p.name}"
        parents.append(entry)
    mesh_parents = [e for e in parents if e["kind"] in ("Service", "ServiceEntry") and e["exists"]]
    return {
        "parents": parents,
        "unbound_ambient_parents": [
            f"{e['parent']}: {e['waypoint_reason']}" for e in mesh_parents
            if not e["waypoint"] and (e["ambient_workloads"] > 0 or (e["kind"] == "ServiceEntry" and facts.mesh["has_ambient"]))
        ],
        "waypoint_parents": [e["parent"] for e in parents if e["waypoint"]],
    }


def _destination_rule_facts(facts: Facts, obj: K8sObject) -> dict:
    spec = obj.spec
    policy = bool(spec.get("trafficPolicy")) or any(as_dict(s).get("trafficPolicy") for s in as_list(spec.get("subsets")))
    unbound = []
    for target in host_targets(facts.services, [spec.get("host")], obj.namespace or ""):
        if target.gk != "Service" or facts.binding(target).waypoint:
            continue
        if facts.mode_counts(facts.services.selected_workloads(target))["ambient"]:
            unbound.append(target.ref())
    return {"has_traffic_policy": policy, "ambient_hosts_without_waypoint": unbound}


def _network_policy_facts(facts: Facts, obj: K8sObject) -> dict:
    ids = facts.netpols.selected.get(obj.key, [])
    ambient = ambient_ids(facts, ids)
    return {
        "ingress": is_ingress_policy(obj.spec),
        "lists_ports": lists_ports(obj.spec),
        "selected": facts.mode_counts(ids),
        "ambient_examples": _examples(facts, ambient),
        "hbone_blocked": _examples(facts, facts.netpols.hbone_blocked(obj, ambient)),
        "probes_blocked": _examples(facts, facts.netpols.probes_blocked(ambient)),
    }


def _cluster_facts(facts: Facts, obj: K8sObject) -> dict:
    collected = facts.options.collected or frozenset()
    daemonsets = [d for d in facts.snapshot.of("apps/DaemonSet")]
    crds = {c.name for c in facts.snapshot.of("apiextensions.k8s.io/CustomResourceDefinition")}
    uses_waypoints = bool(facts.snapshot.of(GATEWAY)) or any(
        "istio.io/use-waypoint" in o.labels for o in facts.snapshot.of("Namespace", "Service", SERVICE_ENTRY)
    )
    sidecar_services = sum(
        1 for svc in facts.snapshot.of("Service") if facts.mode_counts(facts.services.selected_workloads(svc))["sidecar"]
    )
    return {
        "daemonsets_collected": "daemonsets.apps" in collected,
        "crds_collected": "customresourcedefinitions.apiextensions.k8s.io" in collected,
        "ztunnel": any(d.name == "ztunnel" or d.labels.get("app") == "ztunnel" for d in daemonsets),
        "istio_cni": any(d.name == "istio-cni-node" or "istio-cni-node" in (d.labels.get("k8s-app"), d.labels.get("app"))
                         for d in daemonsets),
        "ambient_in_use": facts.mesh["has_ambient"] or bool(facts.mesh["ambient_namespaces"]),
        "gateway_api_crds": "gateways.gateway.networking.k8s.io" in crds,
        "uses_waypoints": uses_waypoints,
        "sidecar_services": sidecar_services,
        "sidecar_scope_threshold": facts.options.sidecar_scope_threshold,
        "egress_scoped_sidecars": sorted(s.ref() for s in facts.snapshot.of(pol.SIDECAR) if as_list(s.spec.get("egress"))),
    }


_BUILDERS = {
    **{gk: _workload_facts for gk in WORKLOAD_GKS},
    "Namespace": _namespace_facts,
    "Service": _service_facts,
    SERVICE_ENTRY: _service_entry_facts,
    VIRTUAL_SERVICE: _virtual_service_facts,
    "ConfigMap": _config_map_facts,
    GATEWAY: _gateway_facts,
    DESTINATION_RULE: _destination_rule_facts,
    NETWORK_POLICY: _network_policy_facts,
    CLUSTER: _cluster_facts,
    **{gk: _route_facts for gk in ROUTE_GKS},
    **{gk: _policy_facts for gk in pol.POLICY_GKS},
}
