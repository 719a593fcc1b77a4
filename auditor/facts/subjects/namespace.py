"""Facts of a Namespace: its data plane labels, waypoint and workloads."""

from __future__ import annotations

import auditor.facts.mode as m
from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.maturity import alpha_features
from auditor.facts.waypoint import legacy_reference
from auditor.model.snapshot import K8sObject

KINDS = (k.NAMESPACE,)
NETWORK = "topology.istio.io/network"


def build(ctx: Context, obj: K8sObject) -> dict:
    labels = obj.labels
    return {
        "ambient": m.namespace_in_ambient(labels),
        "dataplane_mode": labels.get(m.DATAPLANE_MODE),
        "injection": labels.get(m.NS_INJECTION),
        "revision": labels.get(m.REV),
        "waypoint": ctx.binding(obj).to_facts(),
        **legacy_reference(obj.labels, obj.annotations),
        "workloads": ctx.mode_counts(ctx.index.in_namespace(obj.name)),
        "cni_excluded": obj.name in ctx.installation.cni_excluded_namespaces,
        "network": labels.get(NETWORK),
        "alpha_features": alpha_features(ctx.installation.istio_version,
                                         [("multi-network", f"{NETWORK}={labels[NETWORK]}")]
                                         if NETWORK in labels and ctx.ambient_in_use() and ctx.topology is None else []),
    }
