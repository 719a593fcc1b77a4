"""Facts of a ConfigMap: whether it is the mesh config Istio reads, and what it says."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.labels import parse_bool
from auditor.facts.maturity import alpha_features
from auditor.model.snapshot import K8sObject

KINDS = (k.CONFIG_MAP,)
CNI_CONFIG = "istio-cni-config"


def build(ctx: Context, obj: K8sObject) -> dict:
    is_mesh = ctx.installation.mesh_config_object is obj
    policy = ctx.installation.outbound_traffic_policy if is_mesh else None
    found: list[tuple[str, str]] = []
    if ctx.ambient_in_use():
        if is_mesh and ctx.installation.mesh_config.get("meshNetworks") and ctx.topology is None:
            found.append(("multi-network", "meshNetworks in the mesh config"))
        if obj.name == CNI_CONFIG:
            data = obj.raw.get("data") if isinstance(obj.raw.get("data"), dict) else {}
            found += [(feature, f"{key}=true") for key, feature in (("AMBIENT_DNS_CAPTURE", "dns-proxying"),
                                                                     ("AMBIENT_IPV6", "dual-stack"))
                      if parse_bool(str(data.get(key))) is True]
    return {
        "is_mesh_config": is_mesh,
        "outbound_traffic_policy": policy,
        # Egress control ambient workloads do not follow before Istio 1.24.
        "egress_control": "outboundTrafficPolicy is REGISTRY_ONLY" if policy == "REGISTRY_ONLY" else None,
        "alpha_features": alpha_features(ctx.installation.istio_version, found),
    }
