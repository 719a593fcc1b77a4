"""Facts of a NetworkPolicy: the ambient workloads it selects, and whether it lets HBONE
and kubelet probes (redirected by ambient mode) through."""

from __future__ import annotations

from auditor.core import kinds as k
from auditor.facts.context import Context
from auditor.facts.netpol import is_ingress_policy, lists_ports
from auditor.model.snapshot import K8sObject

KINDS = (k.NETWORK_POLICY,)


def build(ctx: Context, obj: K8sObject) -> dict:
    ids = ctx.netpols.selected.get(obj.key, [])
    ambient = ctx.ambient_ids(ids)
    return {
        "ingress": is_ingress_policy(obj.spec),
        "lists_ports": lists_ports(obj.spec),
        "selected": ctx.mode_counts(ids),
        "ambient_examples": ctx.examples(ambient),
        "hbone_blocked": ctx.examples(ctx.netpols.hbone_blocked(obj, ambient)),
        "probes_blocked": ctx.examples(ctx.netpols.probes_blocked(ambient)),
    }
