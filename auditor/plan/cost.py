"""What moving to ambient saves and adds, in requested CPU and memory.

Saved: the requests of the sidecars of the namespaces that move. A running pod's are
read from its istio-proxy container; a declared workload's come from its
`sidecar.istio.io/proxyCPU` / `proxyMemory` annotations, else the injector's
`global.proxy.resources.requests`, else Istio's chart default (100m, 128Mi), times its
replicas. Added: ztunnel on every node (its DaemonSet's requests when installed, else the
ztunnel chart default of 200m and 512Mi) and each waypoint the plan creates (one replica
with the proxy's requests). Requests, not usage: they are what the scheduler reserves.
"""

from __future__ import annotations

import re
from dataclasses import replace

import orjson

from auditor.core import kinds as k
from auditor.core.istio import PROXY_CONTAINER
from auditor.facts.questions import Context
from auditor.plan.model import BLOCKED, Cost, NamespacePlan, Resources
from auditor.model.snapshot import as_dict, as_list

PROXY_DEFAULT = Resources(100, 128 * 2**20)  # global.proxy.resources.requests
ZTUNNEL_DEFAULT = Resources(200, 512 * 2**20)  # the ztunnel chart's resources.requests
_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "": 1}
_QUANTITY = re.compile(r"^([0-9]*\.?[0-9]+)(?:[eE]([-+]?[0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def cpu_millis(value) -> int | None:
    """A Kubernetes CPU quantity in millicores ("250m", "0.5", "2"); None if unreadable."""
    parsed = _quantity(value)
    if parsed is None:
        return None
    number, suffix = parsed
    return round(number if suffix == "m" else number * 1000 * _SUFFIX.get(suffix, 1))


def memory_bytes(value) -> int | None:
    """A Kubernetes memory quantity in bytes ("128Mi", "1G", "134217728"); None if unreadable."""
    parsed = _quantity(value)
    if parsed is None:
        return None
    number, suffix = parsed
    return round(number / 1000 if suffix == "m" else number * _SUFFIX[suffix])


def _quantity(value) -> tuple[float, str] | None:
    if isinstance(value, bool) or value is None:
        return None
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number = float(match.group(1)) * (10 ** int(match.group(2)) if match.group(2) else 1)
    return number, match.group(3) or ""


def requests_of(resources) -> Resources | None:
    requests = as_dict(as_dict(resources).get("requests"))
    if not requests:
        return None
    return Resources(cpu_millis(requests.get("cpu")) or 0, memory_bytes(requests.get("memory")) or 0)


def proxy_default(ctx: Context) -> tuple[Resources, str]:
    """The sidecar (and waypoint) requests the injector's values set, else Istio's default."""
    for cm in ctx.snapshot.of(k.CONFIG_MAP):
        if cm.name != "istio-sidecar-injector":
            continue
        text = as_dict(cm.raw.get("data")).get("values")
        try:
            values = orjson.loads(text) if isinstance(text, str) else {}
        except orjson.JSONDecodeError:
            continue
        found = requests_of(as_dict(as_dict(as_dict(values).get("global")).get("proxy")).get("resources"))
        if found is not None:
            return found, f"{cm.ref()} global.proxy.resources"
    return PROXY_DEFAULT, "Istio's default proxy requests (100m, 128Mi)"


def sidecar_requests(ctx: Context, namespace: str, default: Resources) -> Resources:
    """What the sidecars of a namespace request today: running pods where there are any,
    pod templates (times replicas) where nothing runs."""
    total = Resources()
    running = {(w.owner.kind, w.owner.name) for w in ctx.workloads
               if w.namespace == namespace and w.observed and w.owner is not None}
    for w in ctx.workloads:
        if w.namespace != namespace or w.role != "app" or w.mode != "sidecar":
            continue
        if w.observed:
            total += _pod_proxy(w.pod_spec, default).times(w.count)
        elif (w.obj.kind, w.obj.name) not in running and w.obj.kind not in ("ReplicaSet", "Job"):
            total += _template_proxy(w.annotations, default).times(replicas(ctx, w.obj))
    return total


def _pod_proxy(pod_spec: dict, default: Resources) -> Resources:
    for key in ("containers", "initContainers"):
        for c in as_list(pod_spec.get(key)):
            if isinstance(c, dict) and c.get("name") == PROXY_CONTAINER:
                return requests_of(c.get("resources")) or Resources()
    return default


def _template_proxy(annotations: dict, default: Resources) -> Resources:
    cpu = cpu_millis(annotations.get("sidecar.istio.io/proxyCPU"))
    memory = memory_bytes(annotations.get("sidecar.istio.io/proxyMemory"))
    return Resources(default.cpu_millis if cpu is None else cpu, default.memory_bytes if memory is None else memory)


def replicas(ctx: Context, obj) -> int:
    """The pods a controller asks for (a DaemonSet: one per node)."""
    if obj.kind == "DaemonSet":
        return len(ctx.snapshot.of(k.NODE)) or 1
    replicas = obj.spec.get("replicas")
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 0 else 1


def estimate(ctx: Context, plans: list[NamespacePlan], nodes: int | None) -> tuple[list[NamespacePlan], Cost]:
    """The plans, each with what its sidecars request and what its new waypoint would, and
    the cost in total for the namespaces that can move."""
    default, source = proxy_default(ctx)
    priced = []
    sidecars, waypoints = Resources(), Resources()
    for p in plans:
        p = replace(p, sidecars=sidecar_requests(ctx, p.name, default),
                    waypoint=default if p.changes and p.changes.new_waypoint else Resources())
        priced.append(p)
        if p.verdict != BLOCKED and not p.held_by:
            sidecars += p.sidecars
            waypoints += p.waypoint
    listed = len(ctx.snapshot.of(k.NODE))
    count, count_source = (nodes, "--nodes") if nodes is not None else (
        (listed, "the cluster's Node list") if listed else (None, "unknown: pass --nodes"))
    ztunnel = [d for d in ctx.snapshot.of(k.DAEMON_SET) if d.name == "ztunnel" or d.labels.get("app") == "ztunnel"]
    per_node, ztunnel_source = ZTUNNEL_DEFAULT, "the ztunnel chart's default requests (200m, 512Mi)"
    if ztunnel:
        template = as_dict(as_dict(ztunnel[0].spec.get("template")).get("spec"))
        found = [requests_of(as_dict(c).get("resources")) for c in as_list(template.get("containers"))]
        if found and found[0] is not None:
            per_node, ztunnel_source = found[0], f"{ztunnel[0].ref()}"
    notes = [f"sidecar and waypoint requests: {source}"]
    if ztunnel:
        notes.append("ztunnel already runs on every node: moving adds no ztunnel cost")
    elif count is None:
        notes.append("the node count is unknown (no Node objects in the input): pass --nodes to cost ztunnel")
    return priced, Cost(sidecars=sidecars, ztunnel=per_node.times(count or 0), ztunnel_per_node=per_node,
                        ztunnel_installed=bool(ztunnel), ztunnel_source=ztunnel_source, nodes=count,
                        nodes_source=count_source, waypoints=waypoints, notes=notes)
