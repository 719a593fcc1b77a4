"""One collection run: discovery, every resource type the audit reads (several at a time),
then Istio's ConfigMaps by name."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Callable

import orjson

from auditor.collect import gc_paused
from auditor.collect.cluster.kubeconfig import ClusterError, Connection
from auditor.collect.cluster.http import (
    Deadline,
    Http,
    RetryPolicy,
    Unavailable,
    is_loopback,
)
from auditor.collect.cluster.lister import Lister
from auditor.collect.cluster.progress import Progress
from auditor.collect.cluster.resources import (
    CNI_CONFIGMAP,
    CONFIGMAPS,
    CRDS,
    DEFAULT_ISTIO_NAMESPACE,
    ISTIO_CONFIGMAPS,
    METADATA_ONLY,
    NAMESPACES,
    NODES,
    WEBHOOKS,
    WORKLOAD_TYPES,
)
from auditor.collect.cluster.spool import Spool
from auditor.collect.collection import Collection
from auditor.model.components import CNI_NODE, is_injector_webhook, is_istiod
from auditor.model.snapshot import as_dict, as_list

WORKERS = 4
LOOPBACK_WORKERS = 2
PROBE_ATTEMPTS = 3


def _istio_namespaces(webhooks: list[dict], objects: list[dict]) -> tuple[list[str], list[str]]:
    """Namespaces that hold Istio's control plane or CNI, and the revisions installed."""
    namespaces = {DEFAULT_ISTIO_NAMESPACE}
    revisions: set[str] = set()
    for mwc in webhooks:
        rev = as_dict(as_dict(mwc.get("metadata")).get("labels")).get("istio.io/rev")
        if isinstance(rev, str) and rev and rev != "default":
            revisions.add(rev)
        for hook in as_list(mwc.get("webhooks")):
            service = as_dict(as_dict(as_dict(hook).get("clientConfig")).get("service"))
            if isinstance(service.get("namespace"), str) and service["namespace"]:
                namespaces.add(service["namespace"])
    for obj in objects:
        meta = as_dict(obj.get("metadata"))
        name, labels = str(meta.get("name", "")), as_dict(meta.get("labels"))
        if obj.get("kind") in ("Deployment", "DaemonSet") and (is_istiod(name, labels) or name == CNI_NODE):
            if isinstance(meta.get("namespace"), str) and meta["namespace"]:
                namespaces.add(meta["namespace"])
            rev = labels.get("istio.io/rev")
            if isinstance(rev, str) and rev and rev != "default":
                revisions.add(rev)
    return sorted(namespaces), sorted(revisions)


def collect(
    connection: Connection,
    namespaces: list[str] | None = None,
    timeout: float = 300.0,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    compress: bool | None = None,
    projected: bool = False,
    spool: Spool | None = None,
) -> Collection:
    """Read what the audit needs. Raises ClusterError when the cluster cannot be read at
    all; anything less ends up in `not_collected` and the scan goes on. `projected` keeps
    only what a scan reads of running Pods and ReplicaSets (a snapshot keeps them whole).
    With a `spool`, the workload and Istio lists go there as they arrive, not into
    `objects` (see Spool)."""
    if workers is None:
        # Over a network, requests mostly wait: four at a time hide the latency. On this
        # machine's own loopback the server competes for the same cores; two is faster.
        workers = LOOPBACK_WORKERS if is_loopback(connection.server or "") else WORKERS
    http = Http(connection, time.monotonic() + timeout, retry or RetryPolicy(), compress, workers)
    ahead = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect-ahead")
    collected_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    result = Collection(context=connection.context, server=connection.server, collected_at=collected_at,
                        server_version=_server_version(http), namespaces=sorted(set(namespaces)) if namespaces else None,
                        spool=spool)
    collector = Lister(http, progress, projected, ahead, spool, result)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect")
    try:
        with gc_paused():
            webhooks, objects = _collect_all(collector, pool, result.namespaces)
    except BaseException:
        # Ctrl-C or a fatal error: do not wait for requests still in flight.
        pool.shutdown(wait=False, cancel_futures=True)
        ahead.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    ahead.shutdown(wait=True)
    if progress is not None:
        progress.done()
    result.finish(webhooks + objects)
    return result


def _collect_all(collector: Lister, pool: ThreadPoolExecutor, namespaces: list[str] | None) -> tuple[list, list]:
    """Discovery, the injector webhooks, every resource type, then Istio's ConfigMaps by name."""
    istio_types = collector.discover(pool)
    webhooks = [w for w in collector.list(WEBHOOKS) if is_injector_webhook(w)]
    istio_ns, _ = _istio_namespaces(webhooks, [])
    scope = None if namespaces is None else sorted(set(namespaces) | set(istio_ns))

    tasks: list[Callable[[], list[dict]]] = []
    if scope is None:
        tasks.append(lambda: collector.list(NAMESPACES))
    else:
        for ns in scope:
            tasks.append(lambda ns=ns: [o] if (o := collector.get(NAMESPACES, None, ns)) else [])
    tasks.append(lambda: [project_crd(i) for i in collector.list(CRDS, accept=METADATA_ONLY)])
    tasks.append(lambda: [project_node(i) for i in collector.list(NODES, accept=METADATA_ONLY)])
    for rtype in (*WORKLOAD_TYPES, *istio_types):
        if rtype.namespaced and scope is not None:
            tasks.extend(lambda rtype=rtype, ns=ns: collector.list(rtype, ns, spooled=True) for ns in scope)
        else:
            tasks.append(lambda rtype=rtype: collector.list(rtype, spooled=True))
    objects = [obj for batch in pool.map(lambda task: task(), tasks) for obj in batch]

    config_maps = _config_map_names(webhooks, objects + collector.stubs)
    fetched = pool.map(lambda nn: collector.get(CONFIGMAPS, nn[0], nn[1]), config_maps)
    objects.extend(o for o in fetched if o is not None)
    return webhooks, objects


def _config_map_names(webhooks: list[dict], objects: list[dict]) -> list[tuple[str, str]]:
    namespaces, revisions = _istio_namespaces(webhooks, objects)
    names = [n for base in ISTIO_CONFIGMAPS for n in (base, *(f"{base}-{r}" for r in revisions))] + [CNI_CONFIGMAP]
    return [(ns, name) for ns in namespaces for name in names]


def project_crd(item: dict) -> dict:
    """A CRD as the audit keeps it: its name and labels, not its (large) schemas."""
    return {"apiVersion": CRDS.api_version, "kind": CRDS.kind, "metadata": item.get("metadata") or {}}


def project_node(item: dict) -> dict:
    """A Node as the audit keeps it: its name and labels (zone, instance type)."""
    meta = item.get("metadata") or {}
    return {"apiVersion": NODES.api_version, "kind": NODES.kind,
            "metadata": {k: meta[k] for k in ("name", "uid", "labels") if k in meta}}


def _server_version(http: Http) -> str | None:
    """The first request: it tells unreachable clusters and rejected credentials apart.
    Few retries: a user who typed the wrong context wants to know in seconds."""
    try:
        resp = http.get("/version", attempts=PROBE_ATTEMPTS)
    except Deadline:
        raise ClusterError(f"timed out connecting to {http.shown}") from None
    except Unavailable as err:
        raise ClusterError(f"cluster at {http.shown} is unreachable: {err}") from None
    if resp.status == 401:
        raise ClusterError(f"the API server at {http.shown} rejected the credentials (401 Unauthorized)")
    if resp.status != 200:
        return None
    try:
        version = resp.json().get("gitVersion")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(version) if version else None
