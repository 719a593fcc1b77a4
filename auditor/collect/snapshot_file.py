"""Snapshot files: what one collection read from a cluster, to audit later or elsewhere.

A snapshot is JSON lines (gzip-compressed when the name ends in `.gz`): a header, then
one Kubernetes object per line, as the API server returned it (minus managedFields and
the last-applied annotation):

    {"kind": "MeshAuditSnapshot", "schema_version": 2, "tool": {...},
     "collection": {context, server, server_version, collected_at, namespaces,
                    counts, not_collected, not_installed}}
    {"apiVersion": "v1", "kind": "Namespace", ...}
    ...

One object per line lets a reader keep only what it needs of each object as it goes:
a 50,000-pod cluster is read in a few hundred MB. Version 1 (one JSON document with an
`objects` list) is still read. `schema_version` changes only when a reader of version N
could misread the file. Files are written atomically: a failed or interrupted run leaves
no partial snapshot.
"""

from __future__ import annotations

import gzip
import zlib

import orjson

from auditor import __version__
from auditor.collect.collection import Collection
from auditor.coverage import Gap
from auditor.errors import UsageError
from auditor.fileio import atomic_file

KIND = "MeshAuditSnapshot"
SCHEMA_VERSION = 2
GZIP_MAGIC = b"\x1f\x8b"


def header(collection: Collection) -> dict:
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mesh-audit", "version": __version__},
        "collection": collection.describe(),
    }


def write_snapshot(collection: Collection, path: str) -> None:
    """Header line, then one object per line; through a temporary file renamed into place.
    The collection's spooled pages follow its in-memory objects, as they are (already
    JSON lines; gzip members when compressed, which a gzip reader reads as one stream)."""
    compress = path.endswith(".gz")
    spool = collection.spool
    if spool is not None and spool.compress != compress:
        raise ValueError(f"a {'compressed' if spool.compress else 'plain'} spool cannot be written to {path}")
    with atomic_file(path) as raw:
        out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if compress else raw
        out.write(orjson.dumps(header(collection)) + b"\n")
        for obj in collection.objects:
            out.write(orjson.dumps(obj) + b"\n")
        if out is not raw:
            out.close()
        if spool is not None:
            for chunk in spool.chunks():
                raw.write(chunk)


def open_snapshot(path: str):
    """(Collection without objects, line iterator) for a version-2 snapshot; None for any
    other file (a version-1 snapshot is an ordinary JSON document)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError:
        return None
    try:
        lines = gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")
        first = lines.readline()
    except (OSError, EOFError, zlib.error):
        return None
    if not first.startswith(b'{"kind":"MeshAuditSnapshot"'):
        lines.close()
        return None
    try:
        head = orjson.loads(first)
    except orjson.JSONDecodeError as err:
        lines.close()
        raise UsageError(f"invalid JSON: {err.msg}", path, 1) from None
    try:
        collection = from_document({**head, "objects": []}, path)
    except UsageError:
        lines.close()
        raise
    return collection, lines


def is_snapshot(doc) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == KIND


def from_document(doc, path: str) -> Collection:
    if not is_snapshot(doc):
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(f"not a mesh-audit snapshot (kind: {kind}); scan manifests and dumps with -f", path)
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise UsageError(f"snapshot has no valid schema_version ({version!r})", path)
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"snapshot schema_version {version} is newer than this mesh-audit reads ({SCHEMA_VERSION}); upgrade mesh-audit",
            path,
        )
    meta = doc.get("collection")
    objects = doc.get("objects")
    if version >= 2 and "objects" not in doc:
        raise UsageError("a version-2 snapshot has one object per line after its header", path)
    if not isinstance(meta, dict) or not isinstance(objects, list):
        raise UsageError("snapshot lacks its collection record or objects list", path)
    try:
        return Collection(
            objects=objects,
            context=meta.get("context"),
            server=meta.get("server"),
            server_version=meta.get("server_version"),
            collected_at=meta.get("collected_at"),
            namespaces=meta.get("namespaces"),
            counts=dict(meta.get("counts") or {}),
            not_collected=[Gap.from_dict(g) for g in meta.get("not_collected") or []],
            not_installed=list(meta.get("not_installed") or []),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UsageError(f"snapshot collection record is malformed ({err})", path) from None
