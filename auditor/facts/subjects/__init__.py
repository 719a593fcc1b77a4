"""What rules see as `facts` for each kind of subject, one module per kind.

Each module names the kinds it builds facts for (`KINDS`) and builds them (`build(ctx,
obj)`, returning None when rules have nothing to say about the object, such as a
ReplicaSet its Deployment speaks for). Every object's facts also carry a few common
keys (`observed`, `namespace`, `labels`, `annotations`, `namespace_ambient`); kinds with
no module get only those. To add facts for a kind: add a module here and list it below.
"""

from __future__ import annotations

import auditor.facts.mode as m
from auditor.facts.context import Context
from auditor.facts.subjects import (
    cluster,
    config_map,
    destination_rule,
    gateway,
    namespace,
    network_policy,
    policy,
    route,
    service,
    service_entry,
    virtual_service,
    workload,
    workload_entry,
)
from auditor.model.snapshot import K8sObject

# JSON Pointers of the fields rules name in `fields:` (a workload's are in its pod template).
POINTERS = {"labels": "/metadata/labels", "annotations": "/metadata/annotations", "spec": "/spec"}
MODULES = (workload, namespace, service, service_entry, workload_entry, virtual_service, config_map, gateway,
           destination_rule, network_policy, cluster, route, policy)
BUILDERS = {gk: module.build for module in MODULES for gk in module.KINDS}


def facts_for(ctx: Context, obj: K8sObject) -> dict | None:
    """The facts one object's rules read (built once per object, then cached in the context)."""
    cache = ctx.facts_cache
    if obj.key not in cache:
        builder = BUILDERS.get(obj.gk)
        facts = builder(ctx, obj) if builder else {}
        if facts is not None:
            facts.setdefault("observed", obj.observed)
            facts.setdefault("namespace", obj.namespace)
            facts.setdefault("labels", obj.labels)
            facts.setdefault("annotations", obj.annotations)
            facts.setdefault("namespace_ambient", m.namespace_in_ambient(ctx.ns_labels(obj.namespace)))
            facts.setdefault("at", POINTERS)
        cache[obj.key] = facts
    return cache[obj.key]
