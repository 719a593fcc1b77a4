"""Facts of the cluster as a whole (the synthetic `mesh-audit.io/v1 Cluster` subject):
installed components and CRDs, and what the whole mesh uses."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.maturity import alpha_features
from auditor.facts.topology import SINGLE
from auditor.model.snapshot import K8sObject, as_list
from auditor.core.words import plural

KINDS = (k.CLUSTER,)


def build(ctx: Context, obj: K8sObject) -> dict:
    collected = ctx.options.collected or frozenset()
    daemonsets = ctx.snapshot.of(k.DAEMON_SET)
    crds = {c.name for c in ctx.snapshot.of(k.CRD)}
    uses_waypoints = bool(ctx.snapshot.of(k.GATEWAY)) or ctx.asks_for_waypoints()
    sidecar_services = ctx.sidecar_services()
    return {
        "daemonsets_collected": "daemonsets.apps" in collected,
        "crds_collected": "customresourcedefinitions.apiextensions.k8s.io" in collected,
        "ztunnel": any(d.name == "ztunnel" or d.labels.get("app") == "ztunnel" for d in daemonsets),
        "istio_cni": any(d.name == "istio-cni-node" or "istio-cni-node" in (d.labels.get("k8s-app"), d.labels.get("app"))
                         for d in daemonsets),
        "ambient_in_use": ctx.ambient_in_use(),
        "gateway_api_crds": "gateways.gateway.networking.k8s.io" in crds,
        "uses_waypoints": uses_waypoints,
        "sidecar_services": sidecar_services,
        "sidecar_scope_threshold": ctx.options.sidecar_scope_threshold,
        "egress_scoped_sidecars": sorted(s.ref() for s in ctx.snapshot.of(k.SIDECAR) if as_list(s.spec.get("egress"))),
        "alpha_features": alpha_features(ctx.installation.istio_version, _interoperability(ctx)),
        "multicluster": ctx.topology.cluster_facts(ctx.options.member) if ctx.topology is not None else SINGLE,
    }


def _interoperability(ctx: Context) -> list[tuple[str, str]]:
    """Sidecar and ambient workloads in one mesh, which reach each other over HBONE."""
    counts = ctx.mesh["workloads"]
    if not (counts["sidecar"] and counts["ambient"]):
        return []
    return [("sidecar-interoperability", f"{plural(counts['sidecar'], 'sidecar workload')} and "
                                         f"{plural(counts['ambient'], 'ambient workload')} in the mesh")]
