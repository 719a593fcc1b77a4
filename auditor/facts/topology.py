"""The mesh across clusters, for an audit of several: each cluster's network, trust
domain, mesh ID and control plane, and every Service as each cluster declares it.

Istio treats a namespace/name as one service across the clusters of a mesh (namespace
sameness), so the copies of a Service must agree: on their ports and type (istioctl's
IST0170), and in ambient mode on their waypoint (every cluster needs an identically named
one). Ambient's support for several clusters depends on the version (evidence Section D
and AMB-MULTICLUSTER-LIMITS): multi-cluster and multi-network rows in facts.maturity;
primary-remote, headless Services and direct pod addressing are not supported.

A single-cluster audit has no topology; its facts say `size: 1` and no rule here fires.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from auditor.core.istio import DEFAULT_TRUST_DOMAIN
from auditor.facts.mode import namespace_in_ambient
from auditor.core import kinds as k
from auditor.model.components import is_istiod
from auditor.facts.maturity import status
from auditor.facts.mesh import DEFAULT_ROOT_NAMESPACE
from auditor.model.snapshot import K8sObject, as_dict, as_list
from auditor.core.versions import Version

NETWORK = "topology.istio.io/network"
# Set on a remote cluster's istio-system by a primary-remote install: who controls it.
CONTROL_PLANE_CLUSTERS = "topology.istio.io/controlPlaneClusters"
SINGLE = {"size": 1}


@dataclass(frozen=True)
class ServiceCopy:
    """One cluster's declaration of a Service: what must agree across clusters."""

    cluster: str
    headless: bool
    type: str
    ports: tuple  # (name, port, protocol, appProtocol, targetPort), sorted
    waypoint: str | None  # the waypoint its traffic goes through, namespace/name
    ambient: bool  # its namespace or workloads are in ambient mode

    def shape(self) -> tuple:
        return self.headless, self.type, self.ports


@dataclass
class Member:
    """One cluster of the mesh, as its objects show it."""

    name: str
    version: Version | None
    network: str  # "" when the control plane's namespace carries no network label
    trust_domain: str | None  # None when the mesh config was not in the input
    aliases: tuple[str, ...]
    mesh_id: str | None
    istiod: bool | None  # runs a control plane; None when that cannot be told
    controllers: tuple[str, ...]  # the clusters a remote names as its control plane
    ambient: bool
    services: dict[tuple, ServiceCopy]


def member(name: str, ctx) -> Member:
    """What the audit needs to know of one cluster (its facts.context.Context)."""
    snapshot, installation = ctx.snapshot, ctx.installation
    root = snapshot.get(k.NAMESPACE, None, installation.root_namespace) or snapshot.get(k.NAMESPACE, None, DEFAULT_ROOT_NAMESPACE)
    mesh = installation.mesh_config
    found = installation.mesh_config_object is not None
    trust_domain = str(mesh.get("trustDomain") or DEFAULT_TRUST_DOMAIN) if found else None
    mesh_id = as_dict(mesh.get("defaultConfig")).get("meshId")
    return Member(
        name=name,
        version=installation.istio_version,
        network=str(root.labels.get(NETWORK, "")) if root is not None else "",
        trust_domain=trust_domain,
        aliases=tuple(str(a) for a in as_list(mesh.get("trustDomainAliases"))),
        # Istio uses the trust domain as the mesh ID when none is set.
        mesh_id=str(mesh_id) if mesh_id else trust_domain,
        istiod=_runs_istiod(ctx, root),
        controllers=tuple(c.strip() for c in (root.annotations.get(CONTROL_PLANE_CLUSTERS, "") if root is not None else "")
                          .split(",") if c.strip()),
        ambient=ctx.ambient_in_use(),
        services={(s.namespace, s.name): _copy(name, ctx, s) for s in snapshot.of(k.SERVICE)},
    )


def _runs_istiod(ctx, root: K8sObject | None) -> bool | None:
    if any(is_istiod(d.name, d.labels) for d in ctx.snapshot.of(k.DEPLOYMENT)):
        return True
    if root is not None and root.annotations.get(CONTROL_PLANE_CLUSTERS):
        return False
    collected = ctx.options.collected
    return False if collected is not None and "deployments.apps" in collected else None


def _copy(cluster: str, ctx, svc: K8sObject) -> ServiceCopy:
    spec = svc.spec
    ports = sorted((str(p.get("name") or ""), p.get("port"), str(p.get("protocol") or "TCP"),
                    str(p.get("appProtocol") or ""), str(p.get("targetPort") if "targetPort" in p else p.get("port")))
                   for p in as_list(spec.get("ports")) if isinstance(p, dict))
    counts = ctx.mode_counts(ctx.services.selected_workloads(svc))
    ambient = counts["ambient"] > 0 or namespace_in_ambient(ctx.ns_labels(svc.namespace))
    return ServiceCopy(cluster, spec.get("clusterIP") == "None", str(spec.get("type") or "ClusterIP"),
                       tuple(ports), ctx.binding(svc).to_facts()["name"], ambient)


class Topology:
    """The clusters of one audit, in the order they were given."""

    def __init__(self, members: list[Member]):
        self.members = {each.name: each for each in members}
        self.networks = sorted({each.network for each in members})
        self._by_service: dict[tuple, list[ServiceCopy]] = {}
        for each in members:
            for key, copy in each.services.items():
                self._by_service.setdefault(key, []).append(copy)

    def mesh_facts(self) -> dict:
        return {"clusters": len(self.members), "cluster_names": list(self.members),
                "networks": self.networks, "multi_network": len(self.networks) > 1}

    def cluster_facts(self, name: str) -> dict:
        """What rules on one cluster (the mesh-audit.io/Cluster subject) read as `facts.multicluster`."""
        me = self.members[name]
        members = list(self.members.values())
        return {
            "size": len(members),
            "ambient": me.ambient,
            "network": me.network or "(unlabelled)",
            "networks": {m.name: m.network or "(unlabelled)" for m in members},
            "multi_network": len(self.networks) > 1,
            # Maturity in this cluster's version (facts.maturity), "unknown" when it varies.
            "status": status("multi-cluster", me.version) or "unknown",
            "network_status": status("multi-network", me.version) or "unknown",
            "istiod": me.istiod,
            "remote": me.istiod is False,
            "primaries": [m.name for m in members if m.istiod],
            "controllers": list(me.controllers),
            "ambient_clusters": [m.name for m in members if m.ambient],
            "identity_conflicts": self._identity_conflicts(me),
        }

    def _identity_conflicts(self, me: Member) -> list[dict]:
        """How this cluster's trust domain and mesh ID differ from the rest of the mesh's
        (the value most clusters share; on a tie, the first cluster's). Trust domains
        that list each other as aliases agree."""
        out = []
        known = [m for m in self.members.values() if m.trust_domain is not None]
        if me.trust_domain is None or len(known) < 2:
            return out
        for what, value in (("trust domain", lambda m: m.trust_domain), ("mesh ID", lambda m: m.mesh_id)):
            reference, holders = _reference([(m.name, value(m)) for m in known])
            mine = value(me)
            if mine == reference or (what == "trust domain" and (reference in me.aliases or _aliased(known, mine, reference))):
                continue
            out.append({"what": what, "value": mine, "expected": reference, "clusters": holders,
                        "severity": "error" if what == "trust domain" else "warning"})
        return out

    def service_facts(self, name: str, svc: K8sObject) -> dict:
        """What rules on one cluster's copy of a Service read as `facts.multicluster`."""
        copies = self._by_service.get((svc.namespace, svc.name), [])
        mine = next((c for c in copies if c.cluster == name), None)
        others = [c for c in copies if c.cluster != name]
        if mine is None or not others:
            return {"size": len(self.members), "elsewhere": []}
        return {
            "size": len(self.members),
            "elsewhere": [c.cluster for c in others],
            "ambient": mine.ambient or any(c.ambient for c in others),
            "headless": mine.headless,
            "conflicts": _conflicts(mine, copies),
            "waypoint": _waypoint_mismatch(mine, copies) or {},
        }


def _reference(values: list[tuple[str, object]]) -> tuple[object, list[str]]:
    """The value most clusters hold (ties: the first cluster's), and who holds it."""
    counts = Counter(v for _, v in values)
    first = {}
    for i, (_, v) in enumerate(values):
        first.setdefault(v, i)
    best = max(counts, key=lambda v: (counts[v], -first[v]))
    return best, [n for n, v in values if v == best]


def _aliased(members: list[Member], mine: str, reference: str) -> bool:
    return any(m.trust_domain == reference and mine in m.aliases for m in members)


def _conflicts(mine: ServiceCopy, copies: list[ServiceCopy]) -> list[str]:
    """How this copy differs from the shape most clusters declare."""
    reference, holders = _reference([(c.cluster, c.shape()) for c in copies])
    if mine.shape() == reference:
        return []
    headless, kind, ports = reference
    where = ", ".join(holders)
    out = []
    if mine.headless != headless:
        out.append(f"{'headless' if mine.headless else 'has a cluster IP'} here, "
                   f"{'headless' if headless else 'a cluster IP'} in {where}")
    if mine.type != kind:
        out.append(f"type {mine.type} here, {kind} in {where}")
    if mine.ports != ports:
        out.append(f"ports {_ports(mine.ports)} here, {_ports(ports)} in {where}")
    return out


def _ports(ports: tuple) -> str:
    """`http 80/TCP (http) -> 8080, grpc 9090/TCP`, or `none`."""
    out = []
    for name, port, protocol, app, target in ports:
        text = f"{name or '-'} {port}/{protocol}" + (f" ({app})" if app else "")
        out.append(text + (f" -> {target}" if str(target) != str(port) else ""))
    return ", ".join(out) or "none"


def _waypoint_mismatch(mine: ServiceCopy, copies: list[ServiceCopy]) -> dict | None:
    """When the copies of an ambient Service go through differently named waypoints (or
    some through none): this copy's waypoint ("" for none) and the one most clusters
    use (a named one wins a tie with none)."""
    ambient = [c for c in copies if c.ambient]
    if mine not in ambient or len({c.waypoint for c in ambient}) < 2:
        return None
    named = [(c.cluster, c.waypoint) for c in ambient if c.waypoint is not None]
    reference, holders = _reference(named)
    if mine.waypoint == reference:
        return None
    return {"here": mine.waypoint or "", "expected": reference, "clusters": holders}
