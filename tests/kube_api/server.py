"""A Kubernetes API server for tests: fixture objects over HTTPS on 127.0.0.1.

It speaks the parts of the API a read-only client uses, the way a real API server
does: discovery (`/api`, `/apis`, group versions with `shortNames`, `/version`), LIST
cluster-wide and per namespace with `limit`/`continue`, GET by name, bearer-token
auth, metadata-only lists (`as=PartialObjectMetadataList`) and gzip. Custom resources
are served only where a fixture CustomResourceDefinition defines them, in every
version the CRD serves (objects are "converted" by rewriting `apiVersion`, as a CRD
with no conversion webhook is). Items of built-in lists carry no `kind`/`apiVersion`,
as the real server's do.

Faults are injected per resource (`pods`, `virtualservices.networking.istio.io`), or
per discovery path (`/apis/security.istio.io/v1`, status faults only):
an HTTP status (403, 404, 429 with Retry-After, 500), a dropped connection, a slow
response, 410 Gone on a `continue` token, a body of the test's choosing (odd JSON, not
JSON), a body cut short of its Content-Length, or a list that hands out the same
`continue` token forever. Every request is recorded so tests can assert what a client
did and did not ask for.

It also takes writes (POST create, PUT replace with resourceVersion checks, PATCH as a
JSON merge patch or a server-side apply, DELETE) and serves watches (`watch=1` from a
`resourceVersion`: ADDED/MODIFIED/DELETED events, BOOKMARK events when asked, an ERROR
event with 410 Expired when the version is older than the last `compact()`). Tests change
objects with `put_object` and `remove_object`, and cut open watches with `break_watches`.
A fault with `method=` applies to that method only (`WATCH` for watch requests); without
one, to GET lists and reads.
"""

from __future__ import annotations

import base64
import gzip
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import orjson
import yaml

TLS_DIR = Path(__file__).resolve().parent / "tls"
CA_FILE = TLS_DIR / "ca.pem"
SERVER_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.4", "platform": "linux/amd64"}
PARTIAL_METADATA = "as=PartialObjectMetadataList"


@dataclass
class Resource:
    group: str
    versions: list[str]  # served versions, most preferred first
    plural: str
    kind: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    builtin: bool = True

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTIN = [
    Resource("", ["v1"], "namespaces", "Namespace", False, ["ns"]),
    Resource("", ["v1"], "nodes", "Node", False, ["no"]),
    Resource("", ["v1"], "pods", "Pod", True, ["po"]),
    Resource("", ["v1"], "services", "Service", True, ["svc"]),
    Resource("", ["v1"], "endpoints", "Endpoints", True, ["ep"]),
    Resource("", ["v1"], "configmaps", "ConfigMap", True, ["cm"]),
    Resource("", ["v1"], "secrets", "Secret", True),
    Resource("", ["v1"], "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Resource("apps", ["v1"], "deployments", "Deployment", True, ["deploy"]),
    Resource("apps", ["v1"], "statefulsets", "StatefulSet", True, ["sts"]),
    Resource("apps", ["v1"], "daemonsets", "DaemonSet", True, ["ds"]),
    Resource("apps", ["v1"], "replicasets", "ReplicaSet", True, ["rs"]),
    Resource("batch", ["v1"], "jobs", "Job", True),
    Resource("batch", ["v1"], "cronjobs", "CronJob", True, ["cj"]),
    Resource("networking.k8s.io", ["v1"], "networkpolicies", "NetworkPolicy", True, ["netpol"]),
    Resource("networking.k8s.io", ["v1"], "ingresses", "Ingress", True, ["ing"]),
    Resource("admissionregistration.k8s.io", ["v1"], "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False),
    Resource("admissionregistration.k8s.io", ["v1"], "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False),
    Resource("apiextensions.k8s.io", ["v1"], "customresourcedefinitions", "CustomResourceDefinition", False, ["crd", "crds"]),
]

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple:
    """Sort key giving Kubernetes' version order: GA, then beta, then alpha, newest first;
    versions not of the form v1, v2beta1, ... come last, alphabetically."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, version)


@dataclass
class Fault:
    status: int | None = None  # answer with this HTTP status
    retry_after: int | None = None  # seconds, sent with 429
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to wait before answering
    gone_on_continue: bool = False  # 410 Gone when a continue token is presented
    body: bytes | None = None  # answer 200 with exactly this body
    truncate: bool = False  # send half the body, but the whole body's Content-Length
    repeat_continue: bool = False  # every page of a list names the same continue token
    trickle: float = 0.0  # send the answer a byte at a time, this many seconds apart
    times: int | None = None  # how many requests it applies to; None = all
    method: str = "GET"  # the requests it applies to: GET, WATCH, POST, PUT, PATCH or DELETE
    then: Callable[[], None] | None = None  # called as the fault answers (say, to change the store meanwhile)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


TRICKLE = "X-Test-Trickle"  # set on an answer the handler sends a byte at a time
WATCH = "X-Test-Watch"  # set on a watch's answer: its body is an iterator of event lines


def _merge(target: dict, patch: dict) -> dict:
    """A JSON merge patch (RFC 7386): null removes a key, objects merge, the rest replaces."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _trickled(answer: tuple, seconds: float) -> tuple:
    code, headers, body = answer
    return code, {**headers, TRICKLE: str(seconds)}, body


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _token(offset: int, rv: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "rv": rv})).decode()


def _untoken(token: str) -> int | None:
    try:
        return int(orjson.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


class ApiServer:
    """Start with `with ApiServer(objects) as api:`; `api.url`, `api.kubeconfig(path)`."""

    def __init__(self, objects: list[dict], token: str | None = "test-token", server_version: dict | None = None,
                 latency: float = 0.0):
        self.stopping = threading.Event()
        self.watch_epoch = 0  # break_watches() ends the streams opened before it
        self.version = 1000  # the last resourceVersion handed out
        self.events: list[tuple[int, str, str, dict]] = []  # (resourceVersion, resource key, type, object)
        self.compacted = 0  # watches from a resourceVersion below this get 410 Expired
        self.bookmark_interval = 0.2  # seconds between BOOKMARK events on a watch that asks for them
        self.token = token
        self.latency = latency  # seconds added to every answer: a network's round trip, for benchmarks
        self.server_version = server_version or SERVER_VERSION
        self.requests: list[Request] = []
        self.unserved: list[dict] = []  # fixture objects with no resource to serve them
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.resources: list[Resource] = list(BUILTIN)
        for crd in objects:
            if crd.get("kind") == "CustomResourceDefinition":
                resource = _crd_resource(crd)
                if resource is not None:
                    self.resources.append(resource)
        by_kind = {(r.group, r.kind): r for r in self.resources}
        self.store: dict[str, list[dict]] = {r.key: [] for r in self.resources}
        latest: dict[tuple, dict] = {}
        for obj in objects:  # a store holds one object per key: later fixture objects replace earlier ones
            meta = obj.get("metadata") or {}
            latest[(obj.get("apiVersion", "").rpartition("/")[0], obj.get("kind"), meta.get("namespace"), meta.get("name"))] = obj
        for obj in latest.values():
            group = obj.get("apiVersion", "").rpartition("/")[0] if "/" in obj.get("apiVersion", "") else ""
            resource = by_kind.get((group, obj.get("kind")))
            if resource is None:
                self.unserved.append(obj)
                continue
            self.store[resource.key].append(_as_stored(obj))
        for items in self.store.values():
            items.sort(key=lambda o: (o.get("metadata", {}).get("namespace") or "", o.get("metadata", {}).get("name") or ""))
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------
    def fault(self, resource: str, **kwargs) -> None:
        """Inject a fault for requests on `resource` (`pods`, `plural.group`)."""
        with self._lock:
            self._faults.setdefault(resource, []).append(Fault(**kwargs))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def put_object(self, obj: dict) -> dict:
        """Create or replace an object as a client's write would (a new resourceVersion, an
        ADDED or MODIFIED event for watches)."""
        resource = self._resource_of(obj)
        with self._changed:
            return self._store_object(resource, obj)

    def remove_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        resource = self._resource_of({"apiVersion": api_version, "kind": kind})
        with self._changed:
            return self._delete_object(resource, namespace, name) is not None

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        resource = self._resource_of({"apiVersion": api_version, "kind": kind})
        with self._lock:
            return self._find(resource, namespace, name)

    def objects(self, api_version: str, kind: str) -> list[dict]:
        resource = self._resource_of({"apiVersion": api_version, "kind": kind})
        with self._lock:
            return [dict(o) for o in self.store[resource.key]]

    def compact(self) -> None:
        """Forget every event so far, as etcd compaction does: watches from an older
        resourceVersion get 410 Expired."""
        with self._changed:
            self.compacted = self.version + 1
            self.events.clear()

    def break_watches(self) -> None:
        """Drop every open watch connection, as a restarting API server or load balancer does."""
        with self._changed:
            self.watch_epoch += 1
            self._changed.notify_all()

    def _resource_of(self, obj: dict) -> Resource:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        resource = next((r for r in self.resources if r.group == group and r.kind == obj.get("kind")), None)
        if resource is None:
            raise KeyError(f"the test server serves no {api_version} {obj.get('kind')}")
        return resource

    def _find(self, resource: Resource, namespace: str | None, name: str) -> dict | None:
        return next((o for o in self.store[resource.key] if (o.get("metadata") or {}).get("name") == name
                     and (o.get("metadata") or {}).get("namespace") == namespace), None)

    def _store_object(self, resource: Resource, obj: dict) -> dict:
        """Under the lock: store `obj`, with a new resourceVersion, and record the event."""
        meta = obj.get("metadata") or {}
        old = self._find(resource, meta.get("namespace"), meta.get("name"))
        self.version += 1
        stored = _as_stored({**obj, "metadata": {**meta, "resourceVersion": str(self.version)}})
        if old is not None:
            stored["metadata"]["uid"] = old["metadata"]["uid"]
            stored["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            self.store[resource.key] = [stored if o is old else o for o in self.store[resource.key]]
        else:
            self.store[resource.key].append(stored)
            self.store[resource.key].sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"].get("name") or ""))
        self.events.append((self.version, resource.key, "MODIFIED" if old is not None else "ADDED", stored))
        self._changed.notify_all()
        return stored

    def _delete_object(self, resource: Resource, namespace: str | None, name: str) -> dict | None:
        old = self._find(resource, namespace, name)
        if old is None:
            return None
        self.store[resource.key] = [o for o in self.store[resource.key] if o is not old]
        self.version += 1
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.version)}}
        self.events.append((self.version, resource.key, "DELETED", gone))
        self._changed.notify_all()
        return gone

    def start(self) -> "ApiServer":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server-key.pem")
        self._httpd = _Server(("127.0.0.1", 0), _Handler, context, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # a trickling answer stops, so no thread outlives the server
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def kubeconfig(self, path: Path, token: str | None = None, context: str = "test", user: dict | None = None) -> Path:
        """Write a kubeconfig whose current context points at this server."""
        ca = base64.b64encode(CA_FILE.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test-cluster", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "test-user", "user": user if user is not None else {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "test-cluster", "user": "test-user"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- what clients did ------------------------------------------------------------
    def methods(self) -> set[str]:
        return {r.method for r in self.requests}

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # -- request handling --------------------------------------------------------------
    def _take_fault(self, key: str, has_continue: bool, method: str = "GET") -> Fault | None:
        with self._lock:
            for fault in self._faults.get(key, []):
                if fault.method != method:
                    continue
                if fault.gone_on_continue and not has_continue:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes = b"") -> tuple | None:
        """(status, headers, body), or None to drop the connection; a watch's body is an
        iterator of event lines."""
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        with self._lock:
            self.requests.append(Request(method, split.path, query, headers))
        if self.token is not None and (headers.get("authorization") or "").lower() != f"bearer {self.token}".lower():
            return _json(401, _status(401, "Unauthorized", "Unauthorized"))
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            return _json(405, _status(405, "MethodNotAllowed", f"{method} is not supported by the test server"))
        path = split.path.rstrip("/")
        if path.startswith("/apis") and path.count("/") <= 3:  # discovery faults are keyed by path
            fault = self._take_fault(path, False)
            if fault is not None and fault.status is not None:
                return _json(fault.status, _status(fault.status, "Forbidden", f"{path} (injected)"))
        if path == "/version":
            fault = self._take_fault(path, False)
            answer = _json(200, self.server_version)
            return _trickled(answer, fault.trickle) if fault is not None and fault.trickle else answer
        if path == "/api":
            return _json(200, {"kind": "APIVersions", "versions": ["v1"],
                               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            return _json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in self._groups()]})
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            group = parts[1]
            if group not in self._groups():
                return _not_found(path)
            if len(parts) == 2:
                return _json(200, {"kind": "APIGroup", "apiVersion": "v1", **self._group(group)})
            version, rest = parts[2], parts[3:]
        else:
            return _not_found(path)
        served = [r for r in self.resources if r.group == group and version in r.versions]
        if not served:
            return _not_found(path)
        if not rest:
            return _json(200, self._resource_list(group, version, served))
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        resource = next((r for r in served if r.plural == rest[0]), None)
        if resource is None or len(rest) > 2 or (namespace is not None and not resource.namespaced):
            return _not_found(path)
        watching = method == "GET" and query.get("watch") in ("1", "true")
        if method != "GET" or watching:
            fault = self._take_fault(resource.key, False, "WATCH" if watching else method)
            if fault is not None and fault.drop:
                return None
            if fault is not None and fault.status is not None:
                reason = {409: "Conflict", 403: "Forbidden", 500: "InternalError"}.get(fault.status, "Error")
                return _json(fault.status, _status(fault.status, reason, f"{rest[0]}: {reason.lower()} (injected)"))
            api_version = f"{group}/{version}" if group else version
            if watching:
                return self._watch(resource, api_version, namespace, query)
            return self._write(method, resource, api_version, namespace, rest, body, headers, query)
        fault = self._take_fault(resource.key, "continue" in query)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                return None
            if fault.then is not None:
                fault.then()
            if fault.gone_on_continue:
                return _json(410, _status(410, "Expired", "The provided continue parameter is too old to display a consistent list result."))
            if fault.body is not None:
                return 200, {"Content-Type": "application/json"}, fault.body
            if fault.status is not None:
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                reason = {403: "Forbidden", 404: "NotFound", 429: "TooManyRequests", 500: "InternalError"}.get(fault.status, "Error")
                code, hdrs, body = _json(fault.status, _status(fault.status, reason, f'{rest[0]} is {reason.lower()} (injected)'))
                return code, {**hdrs, **extra}, body
        api_version = f"{group}/{version}" if group else version
        stored = self.store[resource.key]
        items = stored if namespace is None else [o for o in stored if o.get("metadata", {}).get("namespace") == namespace]
        if len(rest) == 2:
            obj = next((o for o in items if o.get("metadata", {}).get("name") == rest[1]), None)
            if obj is None:
                return _json(404, _status(404, "NotFound", f'{rest[0]} "{rest[1]}" not found'))
            return _json(200, {**obj, "apiVersion": api_version, "kind": resource.kind}, headers)
        code, out_headers, body = self._list(resource, api_version, items, query, headers)
        if fault is not None and fault.repeat_continue:
            doc = orjson.loads(gzip.decompress(body) if out_headers.get("Content-Encoding") == "gzip" else body)
            doc["metadata"]["continue"] = _token(0, "repeat")
            code, out_headers, body = _json(code, doc)
        if fault is not None and fault.truncate:
            out_headers = {**out_headers, "Content-Length": str(len(body))}
            body = body[: len(body) // 2]
        if fault is not None and fault.trickle:
            return _trickled((code, out_headers, body), fault.trickle)
        return code, out_headers, body

    def _list(self, resource: Resource, api_version: str, items: list[dict], query: dict, headers: dict):
        offset = 0
        if query.get("continue"):
            offset = _untoken(query["continue"])
            if offset is None:
                return _json(400, _status(400, "BadRequest", "invalid continue token"))
        limit = int(query.get("limit") or 0)
        page = items[offset: offset + limit] if limit > 0 else items[offset:]
        rv = str(self.version)
        meta = {"resourceVersion": rv}
        end = offset + len(page)
        if end < len(items):
            meta["continue"] = _token(end, rv)
            meta["remainingItemCount"] = len(items) - end
        if PARTIAL_METADATA in headers.get("accept", ""):
            out = [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})} for o in page]
            return _json(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": out}, headers)
        if resource.builtin:
            out = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        else:
            out = [{**o, "apiVersion": api_version} for o in page]
        return _json(200, {"kind": f"{resource.kind}List", "apiVersion": api_version, "metadata": meta, "items": out}, headers)

    def _write(self, method: str, resource: Resource, api_version: str, namespace: str | None, rest: list[str],
               body: bytes, headers: dict, query: dict):
        if len(rest) == 1 and method != "POST" or len(rest) == 2 and method == "POST":
            return _json(405, _status(405, "MethodNotAllowed", f"{method} on {'/'.join(rest)}"))
        name = rest[1] if len(rest) == 2 else None
        out = lambda code, obj: _json(code, {**obj, "apiVersion": api_version, "kind": resource.kind})  # noqa: E731
        with self._changed:
            current = self._find(resource, namespace, name) if name is not None else None
            if method == "DELETE":
                gone = self._delete_object(resource, namespace, name) if current is not None else None
                if gone is None:
                    return _json(404, _status(404, "NotFound", f'{rest[0]} "{name}" not found'))
                return out(200, gone)
            try:
                doc = yaml.safe_load(body.decode()) if "yaml" in headers.get("content-type", "") else orjson.loads(body)
            except (ValueError, yaml.YAMLError):
                return _json(400, _status(400, "BadRequest", "the body is not JSON"))
            if not isinstance(doc, dict):
                return _json(400, _status(400, "BadRequest", "the body is not an object"))
            meta = dict(doc.get("metadata") or {})
            if namespace is not None:
                meta["namespace"] = namespace
            if method == "POST":
                if self._find(resource, namespace, meta.get("name")) is not None:
                    return _json(409, _status(409, "AlreadyExists", f'{rest[0]} "{meta.get("name")}" already exists'))
                meta.pop("resourceVersion", None)
                return out(201, self._store_object(resource, {**doc, "metadata": meta}))
            if method == "PUT":
                if current is None:
                    return _json(404, _status(404, "NotFound", f'{rest[0]} "{name}" not found'))
                asked = meta.get("resourceVersion")
                if asked and asked != current["metadata"]["resourceVersion"]:
                    return _json(409, _status(409, "Conflict", f'Operation cannot be fulfilled on {rest[0]} "{name}": '
                                                                "the object has been modified; please apply your changes "
                                                                "to the latest version and try again"))
                return out(200, self._store_object(resource, {**doc, "metadata": meta}))
            # PATCH: server-side apply creates what is missing; a merge patch needs the object.
            apply = "apply-patch" in headers.get("content-type", "")
            if current is None and not apply:
                return _json(404, _status(404, "NotFound", f'{rest[0]} "{name}" not found'))
            merged = _merge(current or {}, {**doc, "metadata": {**meta, "name": name}}) if not apply else \
                {**doc, "metadata": {**(current or {}).get("metadata", {}), **meta, "name": name}}
            return out(200 if current is not None else 201, self._store_object(resource, merged))

    def _watch(self, resource: Resource, api_version: str, namespace: str | None, query: dict):
        try:
            since = int(query.get("resourceVersion") or self.version)
        except ValueError:
            return _json(400, _status(400, "BadRequest", "invalid resourceVersion"))
        timeout = float(query.get("timeoutSeconds") or 30)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        selector = query.get("fieldSelector") or ""
        if selector and not selector.startswith("metadata.name="):
            return _json(400, _status(400, "BadRequest", f"the test server selects by metadata.name only: {selector}"))
        only = selector.partition("=")[2] or None  # one object's events, by name
        epoch = self.watch_epoch

        def line(event_type: str, obj: dict) -> bytes:
            return orjson.dumps({"type": event_type, "object": obj}) + b"\n"

        def stream():
            if since < self.compacted:
                yield line("ERROR", _status(410, "Expired", f"too old resource version: {since} ({self.compacted})"))
                return
            seen, end = since, time.monotonic() + timeout
            last_mark = time.monotonic()
            while not self.stopping.is_set():
                with self._changed:
                    fresh = [(rv, t, o) for rv, key, t, o in self.events if key == resource.key and rv > seen
                             and (namespace is None or (o.get("metadata") or {}).get("namespace") == namespace)
                             and (only is None or (o.get("metadata") or {}).get("name") == only)]
                    # The version `fresh` covers, read before waiting: an event stored while this
                    # waits is newer, and a bookmark must not claim it (it comes next time round).
                    current = self.version
                    if not fresh and epoch == self.watch_epoch:
                        self._changed.wait(min(0.05, max(0.0, end - time.monotonic())))
                    broken = epoch != self.watch_epoch
                for rv, event_type, obj in fresh:
                    seen = rv
                    yield line(event_type, {**obj, "apiVersion": api_version, "kind": resource.kind})
                if broken:
                    yield None  # drop the connection
                    return
                if bookmarks and time.monotonic() - last_mark >= self.bookmark_interval:
                    last_mark = time.monotonic()
                    seen = max(seen, current)
                    yield line("BOOKMARK", {"apiVersion": api_version, "kind": resource.kind,
                                            "metadata": {"resourceVersion": str(seen)}})
                if time.monotonic() >= end:
                    return

        return 200, {"Content-Type": "application/json", WATCH: "1"}, stream()

    def _groups(self) -> list[str]:
        seen: list[str] = []
        for r in self.resources:
            if r.group and r.group not in seen:
                seen.append(r.group)
        return seen

    def _group(self, group: str) -> dict:
        versions = sorted({v for r in self.resources if r.group == group for v in r.versions}, key=version_priority)
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _resource_list(self, group: str, version: str, served: list[Resource]) -> dict:
        resources = []
        for r in served:
            entry = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
                     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}
            if r.short_names:
                entry["shortNames"] = r.short_names
            resources.append(entry)
            if r.plural in ("pods", "deployments"):
                resources.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": True, "kind": r.kind,
                                  "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}


def _as_stored(obj: dict) -> dict:
    """What the API server adds to every object it stores: uid, resourceVersion and
    creationTimestamp (kept when the fixture sets them)."""
    meta = dict(obj.get("metadata") or {})
    key = f"{obj.get('apiVersion')}/{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name', '')}"
    meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, key)))
    meta.setdefault("resourceVersion", "1000")
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    return {**obj, "metadata": meta}


def _crd_resource(crd: dict) -> Resource | None:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v["name"] for v in spec.get("versions") or [] if v.get("served", True)]
    if not (spec.get("group") and names.get("plural") and names.get("kind") and versions):
        return None
    return Resource(spec["group"], sorted(versions, key=version_priority), names["plural"], names["kind"],
                    spec.get("scope", "Namespaced") == "Namespaced", list(names.get("shortNames") or []), builtin=False)


def _json(code: int, doc: dict, request_headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    body = orjson.dumps(doc)
    headers = {"Content-Type": "application/json"}
    if request_headers and "gzip" in request_headers.get("accept-encoding", "") and len(body) > 1024:
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return code, headers, body


def _not_found(path: str):
    return _json(404, _status(404, "NotFound", f"the server could not find the requested resource ({path})"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, context: ssl.SSLContext, api: ApiServer):
        self.context = context
        self.api = api
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        pass  # clients that hang up (or that a fault hangs up on) are part of the tests

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread, so a slow client blocks nobody.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def _serve(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.rfile.read(int(headers.get("content-length") or 0)) if self.command != "GET" else b""
        if self.server.api.latency:
            time.sleep(self.server.api.latency)
        answer = self.server.api.handle(self.command, self.path, headers, body)
        if answer is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        code, out_headers, body = answer
        if out_headers.get(WATCH):
            self._stream(code, out_headers, body)
            return
        self.send_response(code)
        for k, v in out_headers.items():
            self.send_header(k, v)
        if "Content-Length" not in out_headers:
            self.send_header("Content-Length", str(len(body)))
        trickle = float(out_headers.get(TRICKLE, 0))
        self.end_headers()
        if trickle:  # a byte at a time, until the body is sent, the client hangs up or the server stops
            try:
                for i in range(len(body)):
                    if self.server.api.stopping.is_set():
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            except OSError:
                self.close_connection = True
            return
        self.wfile.write(body)
        if len(body) < int(out_headers.get("Content-Length", len(body))):
            self.close_connection = True  # a body cut short: hang up, as a dying server would

    def _stream(self, code: int, headers: dict, lines) -> None:
        """A watch: event lines as chunks, until the stream ends (then the chunked body
        ends) or a broken watch drops the connection."""
        self.send_response(code)
        for k, v in headers.items():
            if k != WATCH:
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in lines:
                if line is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output quiet
        pass


def mesh_kubeconfig(path: Path, servers: dict, current: str | None = None, unreachable: tuple[str, ...] = ()) -> Path:
    """A kubeconfig with one context per server (named by its key; an ApiServer, or the
    (url, token) of one running elsewhere), as a platform team's kubeconfig holds its
    clusters; `unreachable` contexts point at a loopback port nothing listens on."""
    ca = base64.b64encode(CA_FILE.read_bytes()).decode()
    endpoints = {name: (s.url, s.token) if isinstance(s, ApiServer) else s for name, s in servers.items()}
    for name in unreachable:
        with socket.socket() as probe:  # a port just freed: nothing listens there
            probe.bind(("127.0.0.1", 0))
            endpoints[name] = (f"https://127.0.0.1:{probe.getsockname()[1]}", "none")
    config = {"apiVersion": "v1", "kind": "Config",
              "clusters": [{"name": n, "cluster": {"server": url, "certificate-authority-data": ca}}
                           for n, (url, _) in endpoints.items()],
              "users": [{"name": n, "user": {"token": token}} for n, (_, token) in endpoints.items()],
              "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in endpoints],
              "current-context": current or next(iter(servers))}
    path.write_text(yaml.safe_dump(config))
    return path
