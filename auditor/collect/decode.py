"""Running Pods and ReplicaSets decoded straight into their projection, from JSON bytes.

Pods are most of every input, and mesh-audit reads a few of their fields
(`snapshot.project`). msgspec decodes a pod's JSON into typed dicts that name only those
fields and skips the rest in C (volumes, env, probes, the status of every container):
about 6 microseconds a pod where orjson takes 14 to build all of it, before projecting.

The result is exactly what `project(orjson.loads(data))` gives, key order included; for
anything the types cannot say the same way (a field of an unexpected type, metadata
Kubernetes would reject, a pod that was never scheduled, so is not projected at all)
`project_json` returns None and the caller takes the general path. tests/test_decode.py holds the two paths equal.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

import msgspec
from msgspec import UNSET, Raw, UnsetType

from auditor.model.snapshot import CONTAINER_KEPT, META_KEPT, PROXY, PROXY_KEPT, SHARED_META, SPEC_KEPT, Projector

# The top-level kind of a JSON object whose first keys are apiVersion and kind, as kubectl
# and mesh-audit's snapshots write them (the decoded object's own kind is checked too).
_KIND = re.compile(rb'"kind"\s*:\s*"(Pod|ReplicaSet)"')


# The types below are made from what the projection keeps (snapshot.META_KEPT, SPEC_KEPT,
# CONTAINER_KEPT, PROXY_KEPT), so a field kept there is decoded here with no second list.
_CONTAINERS = ("initContainers", "containers")
_Container = TypedDict("_Container", dict.fromkeys(PROXY_KEPT, Any), total=False)  # PROXY_KEPT ⊇ CONTAINER_KEPT
_PodSpec = TypedDict("_PodSpec", {**dict.fromkeys(SPEC_KEPT, Any), **dict.fromkeys(_CONTAINERS, list[_Container])},
                     total=False)
# What Kubernetes requires of metadata (collect.validate): metadata that is not so takes the
# general path, which says what is wrong; what decodes here needs no further check.
_META_TYPES = {"name": str, "generateName": str, "namespace": str, "labels": dict[str, str], "annotations": dict[str, str]}
_Meta = TypedDict("_Meta", {key: _META_TYPES.get(key, Any) for key in META_KEPT}, total=False)


class _Status(TypedDict, total=False):
    phase: Any


class _Pod(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: _Meta
    spec: _PodSpec
    status: _Status | None


class _TemplateMeta(TypedDict, total=False):
    labels: Any
    annotations: Any


class _Template(TypedDict, total=False):
    metadata: _TemplateMeta | None
    spec: _PodSpec | None


class _ReplicaSetSpec(TypedDict, total=False):
    replicas: Any
    selector: Any
    template: _Template


class _ReplicaSet(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: _Meta
    spec: _ReplicaSetSpec | None
    status: Raw


_DECODERS = {"Pod": msgspec.json.Decoder(_Pod), "ReplicaSet": msgspec.json.Decoder(_ReplicaSet)}


_PREFIXES = ((b'{"apiVersion":"v1","kind":"Pod"', "Pod"), (b'{"apiVersion":"apps/v1","kind":"ReplicaSet"', "ReplicaSet"))


def kind_of(data, head: int = 512) -> str | None:
    """"Pod" or "ReplicaSet" when the object's first bytes name one of them, else None."""
    start = bytes(data[:48])
    for prefix, kind in _PREFIXES:  # how mesh-audit's snapshots begin each line
        if start.startswith(prefix):
            return kind
    match = _KIND.search(data[:head] if len(data) > head else data)
    return match.group(1).decode() if match else None


def project_json(data, kind: str | None = None, api_version: str | None = None) -> dict | None:
    """The projection of a running Pod or a ReplicaSet read from a cluster (`snapshot.project`)
    from its JSON; None when this path cannot give exactly that (take the general one).
    `api_version`: for an item of a PodList or ReplicaSetList, which carries no apiVersion
    or kind of its own: they are the list's (as the collector restores them)."""
    kind = kind or kind_of(data)
    decoder = _DECODERS.get(kind or "")
    if decoder is None:
        return None
    try:
        raw = decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):  # deep nesting: the general path says where
        return None
    meta = raw.get("metadata")
    if api_version is not None:
        raw["apiVersion"], raw["kind"] = api_version, kind
    if raw.get("kind") != kind or meta is None or not ("status" in raw or meta.get("uid")):
        return None  # another kind, no metadata, or a manifest (never projected)
    out = {"apiVersion": raw.get("apiVersion"), "kind": kind, "metadata": {k: meta[k] for k in META_KEPT if k in meta}}
    if kind == "Pod":
        if "spec" in raw:
            out["spec"] = _spec(raw["spec"])
        status = raw.get("status")
        if status is not None:
            out["status"] = status  # {"phase": ...} or {}: nothing else was decoded
        return out
    spec = raw.get("spec")
    if isinstance(spec, dict):
        projected = {k: spec[k] for k in ("replicas", "selector") if k in spec}
        template = spec.get("template")
        if template is not None:
            tmeta = template.get("metadata")
            projected["template"] = {
                "metadata": {k: tmeta[k] for k in ("labels", "annotations") if k in tmeta} if tmeta is not None else None,
                "spec": _spec(template["spec"]) if template.get("spec") is not None else None,
            }
        out["spec"] = projected
    if "status" in raw:
        out["status"] = {}
    return out


def _spec(spec: dict) -> dict:
    out = {k: spec[k] for k in SPEC_KEPT if k in spec}
    for key in ("initContainers", "containers"):
        if key in spec:
            out[key] = [{k: c[k] for k in (PROXY_KEPT if c.get("name") == PROXY else CONTAINER_KEPT) if k in c}
                        for c in spec[key]]
    return out


class Projected:
    """An object `project_json` read (so its projection already); `signature` when it was
    adopted by a Projector as it was read (`ProjectingReader`)."""

    __slots__ = ("raw", "signature")

    def __init__(self, raw: dict, signature: bytes | None = None):
        self.raw, self.signature = raw, signature


# Replicas: what a pod's projection is made of, as the bytes it was written with.
_NONE = b"\x01"  # no such key (JSON text never is this byte)


_REPLICA_SPEC = (*SPEC_KEPT, *_CONTAINERS)
_ReplicaMeta = msgspec.defstruct("_ReplicaMeta", [  # each pod's own identity decoded, the shared parts as written
    *((key, (_META_TYPES[key] | UnsetType) if key in _META_TYPES else Any, UNSET) for key in META_KEPT if key not in SHARED_META),
    *((key, Raw, _NONE) for key in SHARED_META)])
_ReplicaSpec = msgspec.defstruct("_ReplicaSpec", [(key, Raw, _NONE) for key in _REPLICA_SPEC])


class _ReplicaStatus(msgspec.Struct):
    phase: Raw = _NONE


class _Replica(msgspec.Struct):
    apiVersion: Raw = _NONE
    kind: Raw = _NONE
    metadata: _ReplicaMeta | UnsetType = UNSET
    spec: _ReplicaSpec | UnsetType = UNSET
    status: _ReplicaStatus | None | UnsetType = UNSET


_REPLICA = msgspec.json.Decoder(_Replica)
_SPEC_ABSENT, _STATUS_NULL = b"\x02", b"\x03"


class ProjectingReader:
    """Reads objects from their JSON (a snapshot's lines, a dump's items) into the objects
    one Projector adopts: running Pods and ReplicaSets straight into their projection
    (`project_json`), with replicas recognized as they are read (a Projected object with
    its signature); anything else is left to be parsed (None).

    A pod written with the same bytes as one read before in everything its projection is
    made of (namespace, labels, annotations, owners, containers, host networking, service
    account, phase) has the same projection but for name, generateName and uid: it takes
    the parts of the pod first read that way, as `Projector.adopt` would give it, and
    costs a decode that skips the rest (about a third of reading it whole). Whatever the
    first pod of such bytes did not project (it took the general path) never becomes a
    template, so its look-alikes take that path too."""

    def __init__(self, projector: Projector):
        self.projector = projector
        self.templates: dict[bytes, tuple[dict, bytes]] = {}

    def __call__(self, data, kind: str | None = None, api_version: str | None = None) -> Projected | None:
        """`data`: one object's JSON. `kind` and `api_version`: for an item of a PodList or
        ReplicaSetList, which carries neither (as `project_json` takes them)."""
        kind = kind or kind_of(data)
        if kind is None:
            return None
        parts = _replica_parts(data) if kind == "Pod" else None
        if parts is not None:
            key, pod = parts
            template = self.templates.get(key)
            if template is not None:
                return Projected(_replica_of(template[0], pod.metadata), template[1])
        out = project_json(data, kind, api_version)
        if out is None:
            return None
        raw, signature = self.projector.adopt(out)
        if parts is not None and signature is not None:
            self.templates[parts[0]] = raw, signature
        return Projected(raw, signature)


def _replica_parts(data) -> tuple[bytes, _Replica] | None:
    """(the bytes a running pod's projection is made of, the pod's identity), or None for
    anything else: no metadata, no status (a manifest, unless it has a uid: the general
    path decides), or what does not decode this way."""
    try:
        pod = _REPLICA.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    meta, spec, status = pod.metadata, pod.spec, pod.status
    if meta is UNSET or status is UNSET:
        return None
    specs = (_SPEC_ABSENT,) if spec is UNSET else (getattr(spec, key) for key in _REPLICA_SPEC)
    key = b"\x00".join((pod.apiVersion, pod.kind, *(getattr(meta, key) for key in SHARED_META),
                        *specs, _STATUS_NULL if status is None else status.phase))
    return key, pod


def _replica_of(template: dict, meta: _ReplicaMeta) -> dict:
    """A pod with the template pod's parts and its own identity, keys in projection order."""
    shared = template["metadata"]
    own: dict = {}
    for key in META_KEPT:
        if key in SHARED_META:
            if key in shared:
                own[key] = shared[key]
        elif (value := getattr(meta, key)) is not UNSET:
            own[key] = value
    out = {"apiVersion": template["apiVersion"], "kind": "Pod", "metadata": own}
    for key in ("spec", "status"):
        if key in template:
            out[key] = template[key]
    return out
