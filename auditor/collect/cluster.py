"""Read a live cluster: only GET requests, only the kinds the audit needs, never Secrets.

The official `kubernetes` client does what it is good at: kubeconfig and contexts,
in-cluster service accounts, client certificates, exec credential plugins, TLS and
proxies. The bulk LISTs bypass its typed models (about 40x slower on big lists): pages
of `limit=500` are fetched as raw JSON over the client's connection pool and parsed with
orjson, several resource types at a time, with the garbage collector paused.

Every resource type ends up either collected or named in `Collection.not_collected`
with the reason, so a partial view of the cluster is never mistaken for a clean one.
This module is the only one that imports the kubernetes client (over a second of
import time that scans of files and snapshots must not pay).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from ipaddress import ip_address
from pathlib import Path
from typing import Callable, Iterator, TextIO
from urllib.parse import quote, urlencode, urlsplit

import orjson

from auditor import __version__
from auditor.collect import gc_paused
from auditor.errors import UsageError
from auditor.facts.mesh import is_injector_webhook
from auditor.report import describe_gap
from auditor.snapshot import project

PAGE_SIZE = 500
PROBE_ATTEMPTS = 3
WORKERS = 4
LOOPBACK_WORKERS = 2
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
JSON = "application/json"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
# Where a pod finds its service account (kubernetes' in-cluster config reads the same files).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ISTIO_GROUPS = (
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
    "gateway.networking.k8s.io",
)
DEFAULT_ISTIO_NAMESPACE = "istio-system"
# ConfigMaps read by name in each Istio namespace (plus `<name>-<revision>` for revisions).
ISTIO_CONFIGMAPS = ("istio", "istio-sidecar-injector")
CNI_CONFIGMAP = "istio-cni-config"


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """`plural` or `plural.group`, as kubectl and RBAC name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return base + (f"/{quote(name, safe='')}" if name is not None else "")


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False)
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", True)
WEBHOOKS = ResourceType("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False)
CRDS = ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False)
WORKLOAD_TYPES = (
    ResourceType("", "v1", "pods", "Pod", True),
    ResourceType("", "v1", "services", "Service", True),
    ResourceType("apps", "v1", "deployments", "Deployment", True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True),
    ResourceType("batch", "v1", "jobs", "Job", True),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
)


class ClusterError(Exception):
    """The cluster cannot be read at all: unreachable, credentials rejected, TLS failure."""


@dataclass
class Gap:
    """Something that was not collected, and why."""

    resource: str
    reason: str
    namespace: str | None = None
    name: str | None = None
    status: int | None = None

    def __str__(self) -> str:
        return describe_gap(self.to_dict())

    def to_dict(self) -> dict:
        return {"resource": self.resource, "namespace": self.namespace, "name": self.name,
                "status": self.status, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> "Gap":
        return cls(str(d["resource"]), str(d["reason"]), d.get("namespace"), d.get("name"), d.get("status"))


@dataclass
class Collection:
    """What one collection run read: the objects and the record of how it went."""

    objects: list[dict] = field(default_factory=list)
    context: str | None = None
    server: str | None = None
    server_version: str | None = None
    collected_at: str | None = None
    namespaces: list[str] | None = None  # the scope asked for; None means all
    counts: dict[str, int] = field(default_factory=dict)  # resource -> objects collected
    not_collected: list[Gap] = field(default_factory=list)
    not_installed: list[str] = field(default_factory=list)  # API groups or resources the server lacks
    # For a snapshot: the large lists, already serialized page by page (see Spool).
    spool: "Spool | None" = None

    @property
    def complete(self) -> bool:
        return not self.not_collected

    @property
    def object_count(self) -> int:
        return len(self.objects) + (self.spool.count if self.spool is not None else 0)

    def describe(self) -> dict:
        """Everything but the objects: what the report and the snapshot header carry."""
        return {
            "context": self.context,
            "server": self.server,
            "server_version": self.server_version,
            "collected_at": self.collected_at,
            "namespaces": self.namespaces,
            "counts": dict(sorted(self.counts.items())),
            "not_collected": [g.to_dict() for g in self.not_collected],
            "not_installed": sorted(self.not_installed),
        }


@dataclass
class RetryPolicy:
    """Bounded exponential backoff for 429, 5xx and dropped connections."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * (2 ** attempt))


@dataclass
class Connection:
    config: object  # kubernetes.client.Configuration
    context: str | None
    server: str


# -- connecting -------------------------------------------------------------------------

def connect(kubeconfig: str | None = None, context: str | None = None, environ=None) -> Connection:
    """Build the client configuration the way kubectl would pick it.

    `--kubeconfig`, else `$KUBECONFIG` (read now, not when the client was imported), else
    `~/.kube/config`; with none of them, the pod's service account when running in a pod.
    Anything the client prints while loading goes to stderr, never into a report on stdout.
    """
    environ = os.environ if environ is None else environ
    with contextlib.redirect_stdout(sys.stderr):
        from kubernetes.client import Configuration
        from kubernetes.config.config_exception import ConfigException

        config = Configuration()
        paths = kubeconfig or environ.get("KUBECONFIG")
        if not paths:
            default = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
            paths = str(default) if default.exists() else None
        if paths is None:
            if not environ.get("KUBERNETES_SERVICE_HOST"):
                raise ClusterError(
                    "no cluster to scan: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running "
                    "in a pod; pass -f or --snapshot to scan files"
                )
            return _in_cluster(config, environ, ConfigException)
        files = [p for p in paths.split(os.pathsep) if p]
        missing = [p for p in files if not Path(p).exists()]
        if kubeconfig and missing:
            raise UsageError("kubeconfig not found", missing[0])
        try:
            from kubernetes.config import kube_config

            loader = kube_config._get_kube_config_loader(filename=paths, active_context=context, persist_config=False)
            loader.load_and_set(config)
            current = loader.current_context.get("name") if loader.current_context else context
        except ConfigException as err:
            raise UsageError(f"kubeconfig: {_first_line(err)}", files[0] if len(files) == 1 else paths) from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise UsageError(f"kubeconfig could not be read: {_first_line(err)}", files[0] if len(files) == 1 else paths) from None
        except Exception as err:  # exec plugins and auth providers raise their own types
            raise ClusterError(f"credentials for context {context or '(current)'}: {_first_line(err)}") from None
    return Connection(config, current, config.host)


def _in_cluster(config, environ, config_exception) -> Connection:
    from kubernetes.config.incluster_config import InClusterConfigLoader

    try:
        InClusterConfigLoader(
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            environ=environ,
        ).load_and_set(config)
    except config_exception as err:
        raise ClusterError(f"in-cluster configuration: {_first_line(err)}") from None
    return Connection(config, "in-cluster", config.host)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


# -- HTTP ---------------------------------------------------------------------------------

class _Deadline(Exception):
    pass


class _Unavailable(Exception):
    """Retries exhausted: the reason and the last HTTP status, if any."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.status = status


@dataclass
class _Response:
    status: int
    body: bytes
    reason: str

    def json(self):
        return orjson.loads(self.body)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class _Http:
    """GETs with the client's TLS, proxy and auth settings, and our own retry policy."""

    def __init__(self, connection: Connection, deadline: float, retry: RetryPolicy, compress: bool | None, workers: int):
        from kubernetes.client import rest

        config = connection.config
        config.retries = False  # the retry policy below is the only one
        config.connection_pool_maxsize = 2 * max(workers, 1) + 1  # each list may have its next page in flight
        self.config = config
        self.pool = rest.RESTClientObject(config).pool_manager
        self.host = config.host.rstrip("/")
        self.deadline = deadline
        self.retry = retry
        # Cluster JSON compresses ~13x: worth it over a network, not over loopback.
        self.compress = (not _is_loopback(self.host)) if compress is None else compress
        self._auth_lock = threading.Lock()

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": f"mesh-audit/{__version__}"}
        if self.compress:
            headers["Accept-Encoding"] = "gzip"
        with self._auth_lock:  # exec plugins refresh tokens here; run them once, not per thread
            for setting in self.config.auth_settings().values():
                if setting.get("value"):
                    headers[setting["key"]] = setting["value"]
            if "authorization" not in headers and (self.config.username or self.config.password):
                headers["authorization"] = self.config.get_basic_auth_token()
        return headers

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def get(self, path: str, query: dict | None = None, accept: str = JSON, attempts: int | None = None) -> _Response:
        import urllib3

        attempts = min(attempts or self.retry.attempts, self.retry.attempts)
        url = self.host + path + (f"?{urlencode(query)}" if query else "")
        last = "no attempt"
        last_status = None
        for attempt in range(attempts):
            left = self.remaining()
            if left <= 0:
                raise _Deadline()
            try:
                resp = self.pool.request(
                    "GET", url, headers=self._headers(accept), retries=False, preload_content=True,
                    timeout=urllib3.Timeout(connect=min(10.0, left), read=min(60.0, left)),
                )
            except urllib3.exceptions.SSLError as err:
                raise ClusterError(f"TLS handshake with {self.host} failed: {_ssl_reason(err)}") from None
            except (urllib3.exceptions.HTTPError, OSError) as err:
                last, last_status = _connection_reason(err), None
                if attempt + 1 < attempts:
                    self._sleep(self.retry.delay(attempt))
                continue
            status = resp.status
            if status == 429 or status >= 500:
                last, last_status = f"HTTP {status} {resp.reason or ''}".strip(), status
                wait = self.retry.delay(attempt)
                if status == 429:
                    wait = _retry_after(resp.headers.get("Retry-After"), wait, self.retry.max_retry_after)
                if attempt + 1 < attempts:
                    self._sleep(wait)
                continue
            return _Response(status, resp.data, resp.reason or "")
        raise _Unavailable(f"{last} (gave up after {attempts} attempts)", last_status)

    def _sleep(self, seconds: float) -> None:
        left = self.remaining()
        if seconds >= left:
            raise _Deadline()
        time.sleep(seconds)


def _retry_after(value: str | None, default: float, cap: float) -> float:
    try:
        return min(max(float(value), 0.0), cap) if value is not None else default
    except ValueError:
        return default


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _connection_reason(err: BaseException) -> str:
    import urllib3

    timeouts = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)
    # NewConnectionError subclasses ConnectTimeoutError, but "connection refused" is no timeout.
    if isinstance(err, timeouts) and not isinstance(err, urllib3.exceptions.NewConnectionError):
        return "timed out"
    if isinstance(err, urllib3.exceptions.ProtocolError):
        return "connection dropped by the server"
    m = _ERRNO.search(str(err))
    return f"cannot connect: {m.group(1).strip()}" if m else f"cannot connect: {_first_line(err)}"


def _ssl_reason(err: BaseException) -> str:
    text = str(err)
    m = re.search(r"certificate verify failed: ([^(]+)", text)
    return f"certificate verify failed: {m.group(1).strip()}" if m else _first_line(err)


def _status_reason(resp: _Response) -> str:
    try:
        doc = resp.json()
        message = doc.get("message") if isinstance(doc, dict) else None
    except orjson.JSONDecodeError:
        message = None
    label = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(resp.status, f"HTTP {resp.status}")
    return f"{label} ({resp.status}): {message}" if message else f"{label} ({resp.status})"


# -- progress -----------------------------------------------------------------------------

class Progress:
    """`collecting: pods (12,345 objects)` on one refreshed stderr line, when it is a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = 0
        self._lock = threading.Lock()
        self._width = 0

    def add(self, resource: str, count: int) -> None:
        with self._lock:
            self.total += count
            if self.enabled:
                self._write(f"collecting: {resource} ({self.total:,} objects)")

    def done(self) -> None:
        if self.enabled and self._width:
            with self._lock:
                self._write("")
                self.stream.write("\r")
                self.stream.flush()

    def _write(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)


# -- collecting ---------------------------------------------------------------------------

def _slim(item: dict, rtype: ResourceType, projected: bool = False) -> dict:
    """Restore kind/apiVersion (list items of built-in kinds lack them), then slim_object;
    running Pods and ReplicaSets are projected when the objects feed a scan directly."""
    item["apiVersion"] = rtype.api_version
    item["kind"] = rtype.kind
    if projected and rtype.kind in ("Pod", "ReplicaSet"):
        return project(item)
    return slim_object(item)


def slim_object(item: dict) -> dict:
    """Drop what the audit never reads and that can dwarf the object: managedFields and
    the last-applied-configuration annotation."""
    meta = item.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return item


class Spool:
    """The pages of a collection's large lists, serialized as they arrive, for a snapshot:
    JSON lines, each page a gzip member when the snapshot is compressed (compressing in
    the list's own thread, where zlib runs without the GIL). Kept as bytes, a 50,000-pod
    cluster takes about 200 MB (15 MB compressed) instead of over 1 GB of objects. Lists
    come out in a fixed order (by resource, then namespace), whatever order they finished in."""

    def __init__(self, compress: bool = False):
        self.compress = compress
        self.count = 0
        self._pages: dict[tuple[str, str], list[tuple[bytes, int]]] = {}
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str], items: list[dict]) -> None:
        data = b"".join(orjson.dumps(i, option=orjson.OPT_APPEND_NEWLINE) for i in items)
        if self.compress:
            data = gzip.compress(data, compresslevel=6, mtime=0)
        with self._lock:
            self._pages.setdefault(key, []).append((data, len(items)))
            self.count += len(items)

    def restart(self, key: tuple[str, str]) -> None:
        """Forget a list's pages: it is being read again from the start."""
        with self._lock:
            self.count -= sum(n for _, n in self._pages.pop(key, ()))

    def chunks(self) -> Iterator[bytes]:
        for key in sorted(self._pages):
            for data, _ in self._pages[key]:
                yield data


class _Collector:
    def __init__(self, http: _Http, progress: Progress | None, projected: bool = False,
                 ahead: ThreadPoolExecutor | None = None, spool: Spool | None = None):
        self.projected = projected
        self.spool = spool
        # With a spool, what _config_map_names needs of the spooled Deployments and DaemonSets.
        self.stubs: list[dict] = []
        self.http = http
        self.ahead = ahead  # requests the next page of a list while this one is parsed
        self.progress = progress
        self.result = Collection()
        self._lock = threading.Lock()

    def gap(self, rtype_key: str, reason: str, namespace=None, name=None, status=None) -> None:
        with self._lock:
            self.result.not_collected.append(Gap(rtype_key, reason, namespace, name, status))

    def missing(self, what: str) -> None:
        with self._lock:
            if what not in self.result.not_installed:
                self.result.not_installed.append(what)

    def list(self, rtype: ResourceType, namespace: str | None = None, accept: str = JSON, spooled: bool = False) -> list[dict]:
        """All pages of one LIST; [] with a gap or a not-installed note when it fails.
        `spooled` (with a spool) sends the pages to the spool and returns []."""
        spool = self.spool if spooled else None
        try:
            items, count = self._pages(rtype, namespace, accept, spool)
        except (_Deadline, _Unavailable, _StatusError) as err:
            if spool is not None:  # a list that failed part way is not collected: none of it is kept
                spool.restart(_list_key(rtype, namespace))
            if isinstance(err, _Deadline):
                self.gap(rtype.key, "timed out (--timeout)", namespace)
            elif isinstance(err, _Unavailable):
                self.gap(rtype.key, str(err), namespace, status=err.status)
            elif err.response.status == 404:
                self.missing(rtype.key)
            else:
                self.gap(rtype.key, _status_reason(err.response), namespace, status=err.response.status)
            return []
        self._count(rtype.key, count)
        return items

    def _count(self, key: str, n: int) -> None:
        with self._lock:
            self.result.counts[key] = self.result.counts.get(key, 0) + n

    def _fetch(self, what: str, path: str, namespace=None, name=None, prefix: str = "") -> _Response | None:
        """One GET; a timeout or exhausted retries become a gap and None."""
        try:
            return self.http.get(path)
        except _Deadline:
            self.gap(what, "timed out (--timeout)", namespace, name)
        except _Unavailable as err:
            self.gap(what, prefix + str(err), namespace, name, err.status)
        return None

    def _pages(self, rtype: ResourceType, namespace: str | None, accept: str,
               spool: Spool | None = None) -> tuple[list[dict], int]:
        """Every page of a LIST. The next page is requested as soon as this one's continue
        token is seen (ListMeta comes before the items), so the server works on it while
        this page is parsed and slimmed: a 50,000-pod list is a hundred pages in a row."""
        items: list[dict] = []
        count = 0
        key = _list_key(rtype, namespace)
        token = None
        restarts = 0
        path = rtype.path(namespace)
        ahead = None  # (token, future) of the page requested early
        while True:
            if ahead is not None and ahead[0] == token:
                resp = ahead[1].result()
            else:
                resp = self.http.get(path, _page_query(token), accept)
            ahead = None
            if resp.status == 410 and token and restarts < 3:
                # The continue token expired (etcd compacted): start this list again.
                items, count, token, restarts = [], 0, None, restarts + 1
                if spool is not None:
                    spool.restart(key)
                continue
            if resp.status != 200:
                raise _StatusError(resp)
            early = _continue_token(resp.body) if self.ahead is not None else None
            if early:
                ahead = (early, self.ahead.submit(self.http.get, path, _page_query(early), accept))
            try:
                doc = resp.json()
                page = doc.get("items") or []
                token = (doc.get("metadata") or {}).get("continue")
            except (orjson.JSONDecodeError, AttributeError):
                raise _Unavailable("the API server sent a list that is not JSON") from None
            slimmed = [_slim(i, rtype, self.projected) for i in page if isinstance(i, dict)]
            count += len(slimmed)
            if spool is None:
                items.extend(slimmed)
            else:
                spool.add(key, slimmed)
                if rtype.kind in ("Deployment", "DaemonSet"):
                    self._keep_stubs(slimmed)
            if self.progress is not None:
                self.progress.add(rtype.key, len(page))
            if not token:
                return items, count

    def _keep_stubs(self, objects: list[dict]) -> None:
        stubs = [{"kind": o.get("kind"), "metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}}
                 for o in objects if isinstance(meta := o.get("metadata"), dict)]
        with self._lock:
            self.stubs.extend(stubs)


    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        """One object by name; None when it does not exist (or could not be read: a gap)."""
        resp = self._fetch(rtype.key, rtype.path(namespace, name), namespace, name)
        if resp is None or resp.status == 404:
            return None
        if resp.status != 200:
            self.gap(rtype.key, _status_reason(resp), namespace, name, resp.status)
            return None
        try:
            obj = resp.json()
        except orjson.JSONDecodeError:
            self.gap(rtype.key, "the API server sent an object that is not JSON", namespace, name)
            return None
        self._count(rtype.key, 1)
        return _slim(obj, rtype) if isinstance(obj, dict) else None

    def discover(self, pool: ThreadPoolExecutor) -> list[ResourceType]:
        """Every served kind of the Istio and Gateway API groups, each at the most preferred
        version that serves it (EnvoyFilter, for one, exists only as v1alpha3)."""
        doc = self._discovery_get("/apis")
        if doc is None:
            return []
        groups = {g.get("name"): g for g in doc.get("groups") or [] if isinstance(g, dict)}
        for builtin in (WEBHOOKS, CRDS, *WORKLOAD_TYPES):
            if builtin.group and builtin.group not in groups:
                self.missing(builtin.group)
        plan = []
        for name in ISTIO_GROUPS:
            group = groups.get(name)
            if group is None:
                self.missing(name)
                continue
            preferred = (group.get("preferredVersion") or {}).get("version")
            versions = [v.get("version") for v in group.get("versions", []) if isinstance(v, dict)]
            ordered = ([preferred] if preferred in versions else []) + [v for v in versions if v != preferred]
            plan.extend((name, v) for v in ordered)
        pages = list(pool.map(lambda gv: self._discovery_get(f"/apis/{gv[0]}/{gv[1]}"), plan))
        found: dict[tuple[str, str], ResourceType] = {}
        for (group, version), page in zip(plan, pages):
            if page is None:
                continue
            for r in page.get("resources") or []:
                if not isinstance(r, dict):
                    continue
                name = str(r.get("name", ""))
                if "/" in name or "list" not in (r.get("verbs") or []):
                    continue
                found.setdefault((group, str(r.get("kind"))), ResourceType(group, version, name, str(r.get("kind")), bool(r.get("namespaced"))))
        return list(found.values())

    def _discovery_get(self, path: str) -> dict | None:
        resp = self._fetch(path, path, prefix="discovery failed: ")
        if resp is None:
            return None
        if resp.status == 404:
            self.missing(path.removeprefix("/apis/"))
            return None
        if resp.status != 200:
            self.gap(path, f"discovery failed: {_status_reason(resp)}", status=resp.status)
            return None
        try:
            doc = resp.json()
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            self.gap(path, "discovery failed: the API server sent a document that is not a JSON object")
            return None
        return doc


def _list_key(rtype: ResourceType, namespace: str | None) -> tuple[str, str]:
    return rtype.key, namespace or ""


def _page_query(token: str | None) -> dict:
    return {"limit": PAGE_SIZE, "continue": token} if token else {"limit": PAGE_SIZE}


_CONTINUE = re.compile(rb'"continue"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _continue_token(body: bytes) -> str | None:
    """The continue token of a list response, read from the bytes before its items (where
    ListMeta is) without parsing the page; None when it is not there."""
    end = body.find(b'"items"')
    match = _CONTINUE.search(body, 0, end) if end > 0 else None
    if match is None:
        return None
    try:
        token = orjson.loads(b'"' + match.group(1) + b'"')
    except orjson.JSONDecodeError:
        return None
    return token or None


class _StatusError(Exception):
    def __init__(self, response: _Response):
        super().__init__(response.status)
        self.response = response


def _istio_namespaces(webhooks: list[dict], objects: list[dict]) -> tuple[list[str], list[str]]:
    """Namespaces that hold Istio's control plane or CNI, and the revisions installed."""
    namespaces = {DEFAULT_ISTIO_NAMESPACE}
    revisions: set[str] = set()
    for mwc in webhooks:
        rev = ((mwc.get("metadata") or {}).get("labels") or {}).get("istio.io/rev")
        if rev and rev != "default":
            revisions.add(rev)
        for hook in mwc.get("webhooks") or []:
            service = ((hook or {}).get("clientConfig") or {}).get("service") or {}
            if service.get("namespace"):
                namespaces.add(service["namespace"])
    for obj in objects:
        meta = obj.get("metadata") or {}
        name, labels = str(meta.get("name", "")), meta.get("labels") or {}
        if obj.get("kind") in ("Deployment", "DaemonSet") and (
            name == "istiod" or name.startswith("istiod-") or name == "istio-cni-node" or labels.get("app") == "istiod"
        ):
            if meta.get("namespace"):
                namespaces.add(meta["namespace"])
            rev = labels.get("istio.io/rev")
            if rev and rev != "default":
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
        workers = LOOPBACK_WORKERS if _is_loopback(connection.server or "") else WORKERS
    http = _Http(connection, time.monotonic() + timeout, retry or RetryPolicy(), compress, workers)
    ahead = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect-ahead")
    collector = _Collector(http, progress, projected, ahead, spool)
    result = collector.result
    result.spool = spool
    result.context, result.server = connection.context, connection.server
    result.namespaces = sorted(set(namespaces)) if namespaces else None
    result.collected_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    result.server_version = _server_version(http)
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
    result.objects = webhooks + objects
    result.not_collected.sort(key=lambda g: (g.resource, g.namespace or "", g.name or ""))
    return result


def _collect_all(collector: _Collector, pool: ThreadPoolExecutor, namespaces: list[str] | None) -> tuple[list, list]:
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
    tasks.append(lambda: [_crd_stub(i) for i in collector.list(CRDS, accept=METADATA_ONLY)])
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


def _crd_stub(item: dict) -> dict:
    """A CRD as the audit keeps it: its name and labels, not its (large) schemas."""
    return {"apiVersion": CRDS.api_version, "kind": CRDS.kind, "metadata": item.get("metadata") or {}}


def _server_version(http: _Http) -> str | None:
    """The first request: it tells unreachable clusters and rejected credentials apart.
    Few retries: a user who typed the wrong context wants to know in seconds."""
    try:
        resp = http.get("/version", attempts=PROBE_ATTEMPTS)
    except _Deadline:
        raise ClusterError(f"timed out connecting to {http.host}") from None
    except _Unavailable as err:
        raise ClusterError(f"cluster at {http.host} is unreachable: {err}") from None
    if resp.status == 401:
        raise ClusterError(f"the API server at {http.host} rejected the credentials (401 Unauthorized)")
    if resp.status != 200:
        return None
    try:
        version = resp.json().get("gitVersion")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(version) if version else None
