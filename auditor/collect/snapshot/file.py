"""Snapshot files: what one collection read from a cluster, to audit later or elsewhere.

A snapshot is JSON lines (gzip-compressed when the name ends in `.gz`): a header, one
Kubernetes object per line as the API server returned it (minus managedFields and the
last-applied annotation), and an end marker:

    {"kind": "MeshAuditSnapshot", "schema_version": 3, "tool": {...}, "objects": N,
     "collection": {context, server, server_version, collected_at, namespaces,
                    counts, not_collected, not_installed}}
    {"apiVersion": "v1", "kind": "Namespace", ...}
    ...
    {"kind": "MeshAuditSnapshotEnd", "objects": N}

A snapshot of several clusters (version 4) is one such segment per cluster, one after
the other, each header naming its cluster and all of them (`"cluster": "east",
"clusters": ["east", "west"]`, so a file cut between segments is detected); a reader of version 3
would stop at the first end marker and miss the rest, hence the new version. Segments
are read by auditor.collect.snapshot.read.load_cluster_snapshot.

One object per line lets a reader keep only what it needs of each object as it goes: a
50,000-pod cluster is read in a few hundred MB. The header is checked against
auditor/schemas/snapshot.schema.json, and a file that stops before its end marker (a
copy cut short, a full disk) is an error, never a smaller cluster. Version 2 (the same,
without `objects` and the end marker) and version 1 (one JSON document with an `objects`
list) are still read. `schema_version` changes when a reader of version N could misread
the file. Files are written atomically: a failed or interrupted run leaves no partial
snapshot.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Iterator

import orjson

from auditor import __version__
from auditor.collect.collection import Collection
from auditor.collect.paths import max_file_bytes, over_limit_decompressed
from auditor.collect.snapshot.header import plainly_valid
from auditor.core.coverage import Gap
from auditor.core.errors import UsageError, json_problem
from auditor.core.fileio import atomic_file

KIND = "MeshAuditSnapshot"
END = "MeshAuditSnapshotEnd"
SCHEMA_VERSION = 4  # the newest this reads; a single cluster is still written as 3
CLUSTERS_VERSION = 4
GZIP_MAGIC = b"\x1f\x8b"
# How the header line of every snapshot mesh-audit writes begins.
HEAD = b'{"kind":"' + KIND.encode() + b'"'


def header(collection: Collection, cluster: str | None = None, clusters: list[str] | None = None) -> dict:
    out = {
        "kind": KIND,
        "schema_version": CLUSTERS_VERSION if cluster else 3,
        "tool": {"name": "mesh-audit", "version": __version__},
        "objects": collection.object_count,
        "collection": collection.describe(),
    }
    if cluster:
        out["cluster"] = cluster
        out["clusters"] = list(clusters or [cluster])  # every segment the file holds: a missing one is detected
    return out


def write_snapshot(collection: Collection, path: str, cluster: str | None = None, clusters: list[str] | None = None) -> None:
    """Header line, then one object per line, then the end marker; through a temporary
    file renamed into place. The collection's spooled pages follow its in-memory objects,
    as they are (already JSON lines; gzip members when compressed, which a gzip reader
    reads as one stream)."""
    compress = path.endswith(".gz")
    spool = collection.spool
    if spool is not None and spool.compress != compress:
        raise ValueError(f"a {'compressed' if spool.compress else 'plain'} spool cannot be written to {path}")
    end = orjson.dumps({"kind": END, "objects": collection.object_count}) + b"\n"
    with atomic_file(path) as raw:
        out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if compress else raw
        out.write(orjson.dumps(header(collection, cluster, clusters)) + b"\n")
        for obj in collection.objects:
            out.write(orjson.dumps(obj) + b"\n")
        if out is not raw:
            out.close()
        if spool is not None:
            for chunk in spool.chunks():
                raw.write(chunk)
        raw.write(gzip.compress(end, compresslevel=6, mtime=0) if compress else end)


def open_snapshot(path: str, data: bytes | None = None, decode=None) -> tuple[Collection, Iterator[dict]] | None:
    """(the collection record, its objects as they are read) for a snapshot written one
    object per line (version 2 or 3), from a file or from `data` already read (a pipe,
    stdin, decompressed); None for anything else (a version-1 snapshot is an ordinary JSON
    document). Reading raises UsageError on a cut or damaged file. `decode(line)` may read
    an object line its own way (a Projected object), or return None to have it parsed."""
    try:
        if data is not None:
            lines = io.BytesIO(data)
        else:
            with open(path, "rb") as fh:
                magic = fh.read(2)
            lines = gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")
        first = lines.readline()
    except (OSError, EOFError, zlib.error):
        return None
    if not first.startswith(HEAD):
        lines.close()
        return None
    try:
        head = orjson.loads(first)
        collection = from_document({**head, "objects": []}, path)
    except orjson.JSONDecodeError as err:
        lines.close()
        raise UsageError(f"invalid JSON: {json_problem(err)}", path, 1) from None
    except UsageError:
        lines.close()
        raise
    return collection, _objects(lines, path, head, decode)


def _objects(lines, path: str, head: dict, decode=None) -> Iterator[dict]:
    """Each object line, parsed; then the end marker checked against what was read."""
    expected = head.get("objects") if head.get("schema_version", 0) >= 3 else None
    count, number, ended, size, limit = 0, 1, False, 0, max_file_bytes()
    with lines:
        try:
            for number, line in enumerate(lines, start=2):
                size += len(line)
                if size > limit:  # a gzip bomb dressed as a snapshot
                    raise UsageError(over_limit_decompressed(), path, number)
                if ended:
                    raise UsageError("there is more after the snapshot's end marker", path, number)
                fast = decode(line) if decode is not None and line.endswith(b"\n") else None
                if fast is not None:
                    count += 1
                    yield fast
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError as err:
                    if not line.strip():  # a blank line (a trailing newline, say)
                        continue
                    if not line.endswith(b"\n"):  # the last line, and not whole
                        raise _cut_short(path, number, count, expected) from None
                    raise UsageError(f"invalid JSON: {json_problem(err)}", path, number) from None
                if isinstance(item, dict) and item.get("kind") == END and expected is not None:
                    ended = True
                    if item.get("objects") != count or count != expected:
                        raise UsageError(f"the end marker counts {item.get('objects')} objects, the header {expected}, "
                                         f"and {count} were read", path, number)
                    continue
                count += 1
                yield item
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise _cut_short(path, number, count, expected, f" ({err})") from None
    if expected is not None and not ended:
        raise _cut_short(path, number, count, expected)


def _cut_short(path: str, line: int, count: int, expected: int | None, detail: str = "") -> UsageError:
    of = f" of {expected:,}" if expected is not None else ""
    return UsageError(f"the snapshot is cut short after {count:,}{of} objects{detail}; it cannot be audited as a whole: "
                      "copy it again or take a new snapshot", path, line)


def _check_header(header: dict, path: str) -> None:
    """UsageError naming what the snapshot schema finds wrong with a header, if anything."""
    import jsonschema

    from auditor.schemas import explain_error, load_schema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(load_schema("snapshot.schema.json"))
                                             .iter_errors(header))
    if error is not None:
        raise UsageError(f"snapshot header: {explain_error(error)}", path, 1)


def is_snapshot(doc) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == KIND


def from_document(doc, path: str) -> Collection:
    """The collection record of a snapshot header (or of a version-1 document), checked
    against the snapshot schema."""
    if not is_snapshot(doc):
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(f"not a mesh-audit snapshot (kind: {kind}); scan manifests and dumps with -f", path)
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"snapshot has no valid schema_version ({version!r})", path)
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"snapshot schema_version {version} is newer than this mesh-audit reads ({SCHEMA_VERSION}); upgrade mesh-audit",
            path,
        )
    objects = doc.get("objects")
    if version >= 2 and "objects" not in doc:
        raise UsageError(f"a version-{version} snapshot has one object per line after its header", path)
    if not isinstance(doc.get("collection"), dict) or not isinstance(objects, list):
        raise UsageError("snapshot lacks its collection record or objects list", path)
    header_only = {k: v for k, v in doc.items() if k != "objects"}
    if not plainly_valid(header_only):
        _check_header(header_only, path)
    meta = doc["collection"]
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
