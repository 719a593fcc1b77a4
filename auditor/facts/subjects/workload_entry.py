"""Facts of a WorkloadEntry (a VM or other non-Kubernetes workload): its waypoint labels."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.waypoint import legacy_reference
from auditor.model.snapshot import K8sObject

KINDS = (k.WORKLOAD_ENTRY,)


def build(ctx: Context, obj: K8sObject) -> dict:
    return {
        "waypoint": ctx.binding(obj).to_facts(),
        **legacy_reference(obj.labels, obj.annotations),
    }
