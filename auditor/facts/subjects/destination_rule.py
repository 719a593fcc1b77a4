"""Facts of a DestinationRule: whether it sets traffic policy, and for which ambient
services without a waypoint (where nothing applies it)."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.maturity import alpha_features
from auditor.facts.reach import unbound_for_ambient
from auditor.facts.routes import host_targets
from auditor.model.snapshot import K8sObject, as_dict, as_list

KINDS = (k.DESTINATION_RULE,)
# Traffic policy settings, in the words messages use; portLevelSettings hold the same kinds.
SETTINGS = {"loadBalancer": "load balancing", "connectionPool": "connection pool", "outlierDetection": "outlier detection",
            "tls": "TLS", "tunnel": "tunnel", "proxyProtocol": "PROXY protocol"}


def settings_of(spec: dict) -> list[str]:
    """The traffic policy settings a DestinationRule sets (its own, its subsets', per port)."""
    policies = [as_dict(spec.get("trafficPolicy"))] + [as_dict(as_dict(s).get("trafficPolicy")) for s in as_list(spec.get("subsets"))]
    policies += [as_dict(p) for policy in list(policies) for p in as_list(policy.get("portLevelSettings"))]
    return [words for key, words in SETTINGS.items() if any(policy.get(key) for policy in policies)]


def build(ctx: Context, obj: K8sObject) -> dict:
    spec = obj.spec
    policy = bool(spec.get("trafficPolicy")) or any(as_dict(s).get("trafficPolicy") for s in as_list(spec.get("subsets")))
    targets = host_targets(ctx.services, [spec.get("host")], obj.namespace or "")
    unbound = [d for d in (unbound_for_ambient(ctx, t) for t in targets) if d is not None]
    at_waypoint = [t.ref() for t in targets if ctx.binding(t).waypoint]
    return {"has_traffic_policy": policy, "traffic_policy_settings": settings_of(spec),
            "ambient_hosts_without_waypoint": unbound,
            "alpha_features": alpha_features(ctx.installation.istio_version,
                                             [("destinationrule-at-waypoint", ", ".join(at_waypoint))] if at_waypoint else [])}
