"""Reading snapshot files: one cluster's, object by object as the lines arrive (a large
file in forked shares, `shares`), and a snapshot of several clusters, one segment each."""

from __future__ import annotations

import gzip
import os
import zlib

import orjson

from auditor.collect.decode import Projected, ProjectingReader
from auditor.collect.loaded import LoadResult, add_object
from auditor.collect.paths import max_file_bytes, over_limit_decompressed
from auditor.collect.snapshot import shares
from auditor.collect.snapshot.file import GZIP_MAGIC, HEAD, open_snapshot
from auditor.core.errors import UsageError
from auditor.model.clusters import Clusters
from auditor.model.snapshot import K8sObject, Snapshot


def load_snapshot_stream(path: str, result: LoadResult, data: bytes | None = None, jobs: int = 1) -> bool:
    """Read a snapshot written one object per line (from the file, or from `data` when it
    was read already), projecting objects as they arrive so a large cluster never sits in
    memory whole; a large file in `jobs` processes. False when it is not such a snapshot."""
    if data is None and jobs > 1 and shares.load_in_shares(path, result, jobs, _add_snapshot_item):
        return True
    stream = open_snapshot(path, data, decode=ProjectingReader(result.projector))
    if stream is None:
        return False
    collection, items = stream
    result.snapshots.append((path, collection))
    for item in items:
        _add_snapshot_item(item, path, result)
    return True


def _add_snapshot_item(item, path: str, result: LoadResult) -> None:
    """One object of a snapshot: a Projected one (a running pod or ReplicaSet read straight
    into its projection), or a parsed line."""
    if isinstance(item, Projected):  # adopted as it was read
        result.objects.append(K8sObject(item.raw, signature=item.signature))
        return
    kind = item.get("kind") if isinstance(item, dict) else None
    if kind in ("Pod", "ReplicaSet") and isinstance(item.get("metadata"), dict):
        item, signature = result.projector(item)
        result.objects.append(K8sObject(item, signature=signature))
    else:
        add_object(item, path, None, None, result, from_cluster=True)


def load_cluster_snapshot(path: str, peek: bool = False):
    """A snapshot of several clusters (version 4: one segment per cluster) as Clusters,
    each cluster's objects read as a single-cluster snapshot's are; None for any other
    file. With `peek`, only whether it is one (its first line is read)."""
    data = _clusters_file(path, peek)
    if data is None or data is True:
        return data
    members, line, expected = {}, 1, None
    for segment in _segments(data):
        try:
            head = orjson.loads(segment[:segment.find(b"\n")])
            name = head.get("cluster")
            expected = head.get("clusters") if expected is None else expected
        except orjson.JSONDecodeError:
            name = None
        if not isinstance(name, str) or name in members:
            raise UsageError("a snapshot of several clusters needs a distinct cluster name in every header"
                             if name in members or name is None else f"cluster {name!r} is not a name", path, line)
        members[name] = _segment_snapshot(path, segment, line)
        line += segment.count(b"\n")
    if isinstance(expected, list) and list(members) != expected:
        raise UsageError(f"the snapshot names the clusters {', '.join(map(str, expected))} but holds "
                         f"{', '.join(members)}: it is cut short or pieced together; copy it again or take a new snapshot",
                         path, line)
    return Clusters(members)


def _clusters_file(path: str, peek: bool):
    """The (decompressed) bytes of a snapshot of clusters; True for one when peeking, None
    for any other file. UsageError for one that cannot be read whole."""
    try:
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as fh:
            compressed = fh.read(2) == GZIP_MAGIC
        with (gzip.open if compressed else open)(path, "rb") as fh:
            first = fh.readline(1 << 20)
            if not first.startswith(HEAD) or b'"cluster":' not in first:
                return None
            if peek:
                return True
            try:
                data = first + fh.read(max_file_bytes() + 1)
            except (OSError, EOFError, zlib.error) as err:  # a snapshot of clusters, cut or damaged
                raise UsageError(f"the snapshot is cut short or damaged ({err}); it cannot be audited as a whole: "
                                 "copy it again or take a new snapshot", path) from None
    except (OSError, EOFError, zlib.error):
        return None
    if len(data) > max_file_bytes():
        raise UsageError(over_limit_decompressed(), path)
    return data


def _segment_snapshot(path: str, segment: bytes, line: int) -> Snapshot:
    """One cluster's segment (starting at `line` of the file) read as a snapshot file is."""
    result = LoadResult()
    try:
        load_snapshot_stream(path, result, segment)
    except UsageError as err:
        raise UsageError(err.message, path, err.line + line - 1 if err.line else line) from None
    return result.snapshot(result.collection_record())


def _segments(data: bytes) -> list[bytes]:
    """The file cut before each header line: one segment per cluster."""
    marker = b"\n" + HEAD + b","
    starts = [0]
    at = data.find(marker)
    while at != -1:
        starts.append(at + 1)
        at = data.find(marker, at + 1)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
