"""What-if copies of a Context (auditor.facts.derive, Context.derived): a copy answers as
a Context built from scratch for the changed snapshot would, and keeps exactly the indices
whose declared kinds the change does not touch."""

from __future__ import annotations

import pytest

from auditor.engine import cluster_object
from auditor.facts.context import Context
from auditor.facts.derive import derive
from auditor.facts.subjects import facts_for
from auditor.model.snapshot import K8sObject
from conftest import DEMO, load_snapshot



def relabelled(obj: K8sObject, **labels) -> K8sObject:
    return obj.rewritten({**obj.raw, "metadata": {**obj.metadata, "labels": {**obj.labels, **labels}}})


@pytest.fixture(scope="module")
def base() -> Context:
    ctx = Context(load_snapshot(DEMO))
    ctx.warm()
    return ctx


def everything(ctx: Context) -> dict:
    """The facts of every object and of the cluster as a whole."""
    whole = cluster_object(ctx.options.cluster_name)
    return {o.key: facts_for(ctx, o) for o in [*ctx.snapshot, whole]}


@pytest.mark.parametrize("namespace, labels", [
    ("billing", {"istio.io/dataplane-mode": "ambient", "istio-injection": "disabled"}),
    ("storefront", {"istio.io/use-waypoint": "elsewhere"}),  # its waypoint loses its users
    ("legacy", {"istio.io/dataplane-mode": "ambient", "istio-injection": "disabled"}),  # one sidecar Service fewer
    ("catalog", {"istio-injection": "enabled"}),  # one more
    ("orders", {"mesh-audit.test/changed": "yes"}),
    ("orders", {"istio.io/use-waypoint": "storefront-waypoint", "istio.io/use-waypoint-namespace": "storefront"}),
])
def test_a_copy_answers_as_a_fresh_context(base, namespace, labels):
    changed = relabelled(base.snapshot.get("Namespace", None, namespace), **labels)
    copy = derive(base, [changed])
    fresh = Context(base.snapshot.changed([changed], set()), None, base.options)
    assert copy is not None and copy.snapshot.get("Namespace", None, namespace).labels == changed.labels
    assert copy.mesh == fresh.mesh
    assert everything(copy) == everything(fresh)


def test_a_copy_has_every_attribute_a_fresh_context_has(base):
    """Context makes its own copies: an attribute added to __init__ and not to derived()
    would otherwise reach only what-if audits (the plan), silently."""
    changed = relabelled(base.snapshot.get("Namespace", None, "billing"), changed="yes")
    copy = derive(base, [changed])
    assert type(copy) is Context and copy is not base
    assert set(vars(copy)) == set(vars(base))


def test_a_copy_keeps_the_indices_its_change_cannot_reach(base):
    policy = next(o for o in base.snapshot if o.kind == "AuthorizationPolicy")
    route = next(o for o in base.snapshot if o.kind == "VirtualService")
    by_policy = derive(base, [relabelled(policy, changed="yes")])
    assert by_policy.routes is base.routes  # routes read no policies
    assert by_policy.netpols is base.netpols
    by_route = derive(base, [relabelled(route, changed="yes")])
    assert by_route.routes is not base.routes  # a VirtualService is what routes are made of
    assert by_route.netpols is base.netpols


def test_a_relabelled_service_keeps_routes_but_a_changed_one_does_not(base):
    service = next(o for o in base.snapshot if o.kind == "Service" and o.namespace == "catalog")
    relabel = derive(base, [relabelled(service, changed="yes")])
    assert relabel.routes is base.routes  # routes are by Service key and host: labels do not enter
    respec = service.rewritten({**service.raw, "spec": {**service.spec, "ports": [{"port": 9999}]}})
    assert derive(base, [respec]).routes is not base.routes


def test_a_change_to_the_mesh_settings_builds_from_scratch(base):
    config = next(o for o in base.snapshot if o.kind == "ConfigMap")
    copy = derive(base, [relabelled(config, changed="yes")])
    assert copy.routes is not base.routes and copy.netpols is not base.netpols
