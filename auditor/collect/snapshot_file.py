"""Snapshot files: what one collection read from a cluster, to audit later or elsewhere.

A snapshot is one JSON document (gzip-compressed when the name ends in `.gz`):

    {"kind": "MeshAuditSnapshot", "schema_version": 1,
     "tool": {"name": "mesh-audit", "version": "..."},
     "collection": {context, server, server_version, collected_at, namespaces,
                    counts, not_collected, not_installed},
     "objects": [ ...Kubernetes objects as the API server returned them... ]}

`schema_version` changes only when a reader of version N could misread the file.
Files are written atomically: a failed or interrupted run leaves no partial snapshot.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from pathlib import Path

import orjson

from auditor import __version__
from auditor.collect.cluster import Collection, Gap
from auditor.errors import UsageError

KIND = "MeshAuditSnapshot"
SCHEMA_VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"


def to_document(collection: Collection) -> dict:
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mesh-audit", "version": __version__},
        "collection": collection.describe(),
        "objects": collection.objects,
    }


def write_snapshot(collection: Collection, path: str) -> None:
    data = orjson.dumps(to_document(collection))
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    write_atomic(path, data)


def write_atomic(path: str, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename it into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent) if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def is_snapshot(doc) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == KIND


def read_snapshot(path: str) -> Collection:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(err.strerror or str(err), path) from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise UsageError(f"not a readable gzip file ({err})", path) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise UsageError(f"invalid JSON: {err.msg}", path, err.lineno) from None
    return from_document(doc, path)


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
