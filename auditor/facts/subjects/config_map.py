"""Facts of a ConfigMap: whether it is the mesh config Istio reads, and what it says."""

from __future__ import annotations

from auditor import kinds as k
from auditor.facts.context import Context
from auditor.snapshot import K8sObject

KINDS = (k.CONFIG_MAP,)


def build(ctx: Context, obj: K8sObject) -> dict:
    is_mesh = ctx.settings.mesh_config_object is obj
    policy = ctx.settings.outbound_traffic_policy if is_mesh else None
    return {
        "is_mesh_config": is_mesh,
        "outbound_traffic_policy": policy,
        # Egress control ambient workloads do not follow before Istio 1.24.
        "egress_control": "outboundTrafficPolicy is REGISTRY_ONLY" if policy == "REGISTRY_ONLY" else None,
    }
