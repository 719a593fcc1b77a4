"""The objects under audit, indexed by kind, namespace and name, each with its source."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import orjson

from auditor.core.kinds import CLUSTER_SCOPED_KINDS, group_kind

DEFAULT_NAMESPACE = "default"


class K8sObject:
    """One Kubernetes object as written, plus where it came from.

    `observed` is true for objects read back from a cluster (they carry `status` or
    `metadata.uid`); manifests are declared state.
    """

    __slots__ = ("raw", "api_version", "kind", "gk", "namespace", "name", "file", "line", "index", "observed", "key",
                 "metadata", "_labels", "_annotations", "signature")

    def __init__(self, raw: dict, file: str | None = None, line: int | None = None, index: int | None = None,
                 signature: bytes | None = None):
        meta = raw.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        self.metadata = meta
        self.raw = raw
        self.api_version = str(raw.get("apiVersion") or "")
        self.kind = str(raw.get("kind") or "")
        self.gk = group_kind(self.api_version, self.kind)
        self.name = str(meta.get("name") or meta.get("generateName") or "")
        ns = meta.get("namespace")
        if self.kind in CLUSTER_SCOPED_KINDS:
            self.namespace = None
        else:
            self.namespace = str(ns) if ns else DEFAULT_NAMESPACE
        self.file = file
        self.line = line
        self.index = index
        self.observed = "status" in raw or bool(meta.get("uid"))
        self.key: tuple[str, str | None, str] = (self.gk, self.namespace, self.name)
        self._labels: dict | None = None
        self._annotations: dict | None = None
        # For a running pod read by a Projector: equal signatures mean equal objects but
        # for name and uid (replicas), which facts use to evaluate them once.
        self.signature = signature

    @property
    def labels(self) -> dict:
        if self._labels is None:
            self._labels = str_map(self.metadata.get("labels"))
        return self._labels

    @property
    def annotations(self) -> dict:
        if self._annotations is None:
            self._annotations = str_map(self.metadata.get("annotations"))
        return self._annotations

    @property
    def spec(self) -> dict:
        spec = self.raw.get("spec")
        return spec if isinstance(spec, dict) else {}

    def rewritten(self, raw: dict, alike: bool = False) -> "K8sObject":
        """This object with `raw` as its content, from the same source and place (a
        relabelled pod, a manifest placed in a namespace). Its signature is dropped (the
        content changed: facts signs the new one) unless the caller rewrites every replica
        of it alike (`alike`), when the old one still tells the same replicas apart."""
        return K8sObject(raw, self.file, self.line, self.index, self.signature if alike else None)

    def ref(self) -> str:
        """`Kind namespace/name`, the way findings name objects."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def __repr__(self) -> str:
        return f"<{self.ref()}>"


META_KEPT = ("name", "generateName", "namespace", "uid", "labels", "annotations", "ownerReferences")
# What replicas of one pod share of the metadata kept: all but each pod's own identity.
SHARED_META = tuple(key for key in META_KEPT if key not in ("name", "generateName", "uid"))
SPEC_KEPT = ("hostNetwork", "serviceAccountName")
CONTAINER_KEPT = ("name", "image", "ports", "restartPolicy")
PROXY = "istio-proxy"
# The sidecar's requests are what moving the pod to ambient saves (`plan`).
PROXY_KEPT = (*CONTAINER_KEPT, "resources")
# nodeName is left out on purpose: replicas on different nodes must look alike.


def _project_pod_spec(spec) -> dict:
    if not isinstance(spec, dict):
        return spec
    out = {k: spec[k] for k in SPEC_KEPT if k in spec}
    for key in ("initContainers", "containers"):
        containers = spec.get(key)
        if isinstance(containers, list):
            out[key] = [{k: c[k] for k in (PROXY_KEPT if c.get("name") == PROXY else CONTAINER_KEPT) if k in c}
                        if isinstance(c, dict) else c for c in containers]
        elif key in spec:
            out[key] = containers
    return out


def project(raw: dict) -> dict:
    """The part of a running Pod (or of a ReplicaSet) that mesh-audit reads: identity,
    labels, annotations, owners, containers (name, image, ports, restartPolicy), host
    networking and phase. A cluster's pods are most of its bytes; keeping only this makes
    a 50,000-pod cluster fit in a few hundred MB. Manifests are never projected."""
    kind = raw.get("kind")
    meta = raw.get("metadata")
    if kind not in ("Pod", "ReplicaSet") or not isinstance(meta, dict):
        return raw
    out = {"apiVersion": raw.get("apiVersion"), "kind": kind, "metadata": {k: meta[k] for k in META_KEPT if k in meta}}
    spec = raw.get("spec")
    if kind == "Pod":
        if "spec" in raw:
            out["spec"] = _project_pod_spec(spec)
        status = raw.get("status")
        if status is not None:
            out["status"] = {"phase": status["phase"]} if isinstance(status, dict) and "phase" in status else {}
        return out
    if isinstance(spec, dict):
        template = spec.get("template")
        projected = {k: spec[k] for k in ("replicas", "selector") if k in spec}
        if isinstance(template, dict):
            tmeta = template.get("metadata")
            projected["template"] = {
                "metadata": {k: tmeta[k] for k in ("labels", "annotations") if k in tmeta} if isinstance(tmeta, dict) else tmeta,
                "spec": _project_pod_spec(template.get("spec")),
            }
        out["spec"] = projected
    if "status" in raw:
        out["status"] = {}
    return out


class Projector:
    """Projects running Pods and ReplicaSets as they are read, and recognizes replicas: a
    pod equal to one read before in everything but its name and uid shares that pod's
    labels, annotations, owners, spec and status (read-only, like every object here),
    so fifty replicas cost one projected pod and fifty small dicts."""

    def __init__(self) -> None:
        self._first: dict[bytes, tuple[dict, bytes]] = {}

    def __call__(self, raw: dict) -> tuple[dict, bytes | None]:
        """(projected object, signature); the signature only for a running pod. Declared
        objects (manifests: no status, no uid) come back as they are."""
        if not is_observed(raw):
            return raw, None
        out = project(raw)
        return (out, None) if out is raw else self.adopt(out)

    def adopt(self, out: dict) -> tuple[dict, bytes | None]:
        """(pod, signature) for a running pod already projected (collect.decode reads pods
        straight into their projection): its replicas are recognized the same way, by
        `replica_signature`. A projected ReplicaSet comes back as it is, with none."""
        if out.get("kind") != "Pod":
            return out, None
        meta = out["metadata"]
        signature = replica_signature(out)
        if signature is None:  # not JSON-shaped (a hand-written dump): never shared
            return out, None
        first = self._first.get(signature)
        if first is None:
            self._first[signature] = out, signature
            return out, signature
        first, signature = first
        shared = first["metadata"]  # equal to this pod's but for identity (a missing key and null sign alike)
        for key in SHARED_META:
            if key in meta and key in shared:
                meta[key] = shared[key]
        for key in ("spec", "status"):
            if key in out and key in first:
                out[key] = first[key]
        return out, signature


def replica_signature(pod: dict) -> bytes | None:
    """What replicas of a pod share, as a 16-byte digest: pods with equal signatures differ
    only in name, generateName and uid, so they get equal facts and findings and the audit
    builds and evaluates them once. The one way replicas are recognised: loaders sign
    running pods as they read them (Projector), facts signs pods that come without one.
    Taken as written (key order as read: replicas of one template share it, and a
    difference only costs sharing); None for an object that is not JSON-shaped."""
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    try:
        text = orjson.dumps((pod.get("apiVersion"), pod.get("kind"), *(meta.get(key) for key in SHARED_META),
                             pod.get("spec"), pod.get("status")))
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.blake2b(text, digest_size=16).digest()


@dataclass(frozen=True)
class ObjectPath:
    """How users name one object (`explain`, `--delete`): `Kind/namespace/name`, or
    `Kind/name` for a cluster-scoped kind; the kind matched case-insensitively, and
    `Kind.group/...` where two groups share it (`core` for the core group)."""

    kind: str
    group: str | None  # None: any group that has the kind
    namespace: str | None
    name: str

    @staticmethod
    def parse(text: str) -> "ObjectPath | None":
        """None for text that is not such a path."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            return None
        kind, dot, group = parts[0].partition(".")
        namespace, name = (parts[1], parts[2]) if len(parts) == 3 else (None, parts[1])
        return ObjectPath(kind, ("" if group == "core" else group) if dot else None, namespace, name)

    def matches(self, obj: K8sObject) -> bool:
        return (obj.kind.lower() == self.kind.lower() and obj.name == self.name and obj.namespace == self.namespace
                and (self.group is None or obj.api_version.rpartition("/")[0] == self.group))


def group_choices(found: list[K8sObject]) -> str:
    """`Gateway.gateway.networking.k8s.io, Gateway.networking.istio.io`: the groups an
    ambiguous path could mean."""
    return ", ".join(sorted({f"{o.kind}.{o.api_version.rpartition('/')[0] or 'core'}" for o in found}))


def is_observed(raw: dict) -> bool:
    meta = raw.get("metadata")
    return "status" in raw or (isinstance(meta, dict) and bool(meta.get("uid")))


def as_list(value) -> list:
    """A list field as written, or [] when it is missing or of the wrong type."""
    return value if isinstance(value, list) else []


def as_dict(value) -> dict:
    """A mapping field as written, or {} when it is missing or of the wrong type."""
    return value if isinstance(value, dict) else {}


def str_map(value) -> dict[str, str]:
    """Labels or annotations as strings; {} when the field is not a mapping. A mapping that
    already holds only strings (anything read from a cluster) is returned as it is."""
    if not isinstance(value, dict):
        return {}
    for k, v in value.items():
        if type(k) is not str or type(v) is not str:
            return {str(k): ("" if v is None else str(v)) for k, v in value.items()}
    return value


class Snapshot:
    """All objects of one audit. Later duplicates of the same key replace earlier ones.

    `collection` records where the objects came from ({"source": "files" | "cluster" |
    "snapshot", ...} with, for clusters and snapshots, what was and was not collected);
    `errors` and `warnings` are the problems met reading the input (UsageError each), kept
    as the lists given (a loader may still add to them). `object_span(file, line)`: the
    byte range of the object starting on that line of a large file, when the loader knows
    it (auditor.gate.locate reads only that range)."""

    def __init__(self, objects: Iterable[K8sObject] = (), line_resolver: Callable[[K8sObject], int | None] | None = None,
                 *, collection: dict | None = None, errors: list | None = None, warnings: list | None = None,
                 object_span: Callable[[str, int], tuple[int, int] | None] | None = None):
        self._by_key: dict[tuple, K8sObject] = {}
        self._by_gk: dict[str, list[K8sObject]] = defaultdict(list)
        self.duplicates: list[tuple[K8sObject, K8sObject]] = []
        self._line_resolver = line_resolver
        self.collection: dict = collection if collection is not None else {"source": "files"}
        self.errors: list = errors if errors is not None else []
        self.warnings: list = warnings if warnings is not None else []
        self.object_span = object_span
        self._position_cache: dict[str, dict[tuple, int]] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: K8sObject) -> None:
        self._position_cache.clear()
        previous = self._by_key.get(obj.key)
        if previous is not None:
            self.duplicates.append((previous, obj))
            self._by_gk[obj.gk].remove(previous)
        self._by_key[obj.key] = obj
        self._by_gk[obj.gk].append(obj)

    def changed(self, put: Iterable[K8sObject] = (), remove: Iterable[tuple] = ()) -> "Snapshot":
        """A copy with objects replaced or added (`put`, by key) and keys removed, sharing
        every other object: what-if copies cost the changes, not the cluster. Replaced
        objects keep their place in iteration order; new ones come last."""
        put = {obj.key: obj for obj in put}
        removed = set(remove) - put.keys()
        out = Snapshot.__new__(Snapshot)
        out._by_key = dict(self._by_key)
        out._by_gk = defaultdict(list, self._by_gk)
        out.duplicates, out._line_resolver, out._position_cache = self.duplicates, self._line_resolver, {}
        out.collection, out.errors, out.warnings, out.object_span = self.collection, self.errors, self.warnings, None
        for key in removed:
            out._by_key.pop(key, None)
        for key, obj in put.items():
            out._by_key[key] = obj
        touched = {key[0] for key in put.keys() | removed}
        for gk in touched:
            listed = self._by_gk.get(gk, [])
            positions = self._positions(gk)
            if not any(key[0] == gk for key in removed) and all(key in positions for key in put if key[0] == gk):
                kept = list(listed)  # replacements only: in place
                for key, obj in put.items():
                    if key[0] == gk:
                        kept[positions[key]] = obj
            else:
                kept = [put.get(o.key, o) for o in listed if o.key not in removed]
                kept += [obj for key, obj in put.items() if key[0] == gk and key not in positions]
            out._by_gk[gk] = kept
        return out

    def overlaid(self, put: list[K8sObject], remove: set[tuple], sources: list["Snapshot"]) -> "Snapshot":
        """This snapshot with a change laid over it (`changed`), where the change's objects
        were read from `sources`: their input problems join this one's, and their lines
        resolve through the source that read them (objects of a file; this snapshot's come
        from a cluster or a snapshot, with none)."""
        out = self.changed(put, remove)
        out.collection = dict(self.collection)
        out.errors = [*self.errors, *(e for s in sources for e in s.errors)]
        out.warnings = [*self.warnings, *(w for s in sources for w in s.warnings)]
        by_file = {o.file: s._line_resolver for s in sources for o in s if s._line_resolver is not None}
        base = self._line_resolver

        def resolve(obj: K8sObject) -> int | None:
            found = by_file.get(obj.file) if obj.file is not None else base
            return found(obj) if found is not None else obj.line

        out._line_resolver = resolve
        spans = [s.object_span for s in sources if s.object_span is not None]
        if spans:
            out.object_span = lambda name, line: next((r for r in (f(name, line) for f in spans) if r is not None), None)
        return out

    def _positions(self, gk: str) -> dict[tuple, int]:
        """Where each object of a kind sits in `of(gk)` (built once per kind, for `changed`)."""
        cache = self._position_cache
        if gk not in cache:
            cache[gk] = {o.key: i for i, o in enumerate(self._by_gk.get(gk, ()))}
        return cache[gk]

    def __iter__(self) -> Iterator[K8sObject]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def of(self, *gks: str) -> list[K8sObject]:
        out: list[K8sObject] = []
        for gk in gks:
            out.extend(self._by_gk.get(gk, ()))
        return out

    def get(self, gk: str, namespace: str | None, name: str) -> K8sObject | None:
        return self._by_key.get((gk, namespace, name))

    def location(self, obj: K8sObject) -> tuple[str, int] | None:
        """(file, line) of an object, resolving lazily where loading deferred it."""
        if obj.file is None:
            return None
        line = obj.line
        if line is None and self._line_resolver is not None:
            line = self._line_resolver(obj)
        return obj.file, line or 1
