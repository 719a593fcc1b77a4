"""Where an audit's objects come from, as one Snapshot: files (manifests, dumps, snapshots,
stdin) or a live cluster. The snapshot carries the record of how it was read
(`collection`) and the problems met in the input (`errors`, `warnings`)."""

from __future__ import annotations

import os

from auditor.collect.excludes import Excluder
from auditor.collect.files import LoadResult, load_paths
from auditor.collect.status import Reading
from auditor.collect.render import RenderSettings
from auditor.collect.snapshot_file import GZIP_MAGIC, HEAD
from auditor.core.coverage import Gap
from auditor.core.errors import UsageError
from auditor.model.snapshot import K8sObject, Snapshot


def load_files(paths: list[str], jobs: int | None = None, stdin=None, snapshot_only: bool = False,
               follow_symlinks: bool = False, excluder: Excluder | None = None, render: RenderSettings | None = None,
               require_rendering: bool = False, progress: bool = False) -> Snapshot:
    """Every object under `paths`; with `snapshot_only`, the one path must be a snapshot.
    With `require_rendering`, a chart or kustomization that could not be rendered is a
    gap (the audit is incomplete) rather than a warning."""
    loaded = load_paths(paths, stdin=stdin, jobs=jobs, follow_symlinks=follow_symlinks, excluder=excluder, render=render,
                        progress=Reading() if progress else None)
    if snapshot_only and not loaded.snapshots and not loaded.errors:
        raise UsageError(f"{paths[0]}: not a mesh-audit snapshot; scan manifests and dumps with -f")
    return loaded.snapshot(_collection_of_files(loaded, require_rendering))


def _collection_of_files(loaded: LoadResult, require_rendering: bool = False) -> dict:
    """Files are complete by definition, but for sources that could not be rendered;
    snapshots among them carry their own record."""
    if not loaded.snapshots:
        collection = {"source": "files", "files_read": loaded.files_read}
        if loaded.rendered or loaded.not_rendered:
            collection["rendered"] = loaded.rendered
            collection["not_rendered"] = loaded.not_rendered
        if require_rendering and loaded.not_rendered:
            collection["not_collected"] = [Gap(n["path"], f"not rendered by {n['by']}: {n['reason']}").to_dict()
                                           for n in loaded.not_rendered]
        return collection
    path, first = loaded.snapshots[0]
    collection = {"source": "snapshot", "snapshot": path, **first.describe()}
    for _, other in loaded.snapshots[1:]:
        collection["not_collected"] += [g.to_dict() for g in other.not_collected]
    return collection


def load_cluster(source) -> Snapshot:
    """The cluster `source` (an api.ClusterSource) names; ClusterError when it cannot be
    read at all, UsageError for a kubeconfig that does not parse or lacks the context."""
    live = _collect(source, projected=True)
    return Snapshot((K8sObject(o) for o in live.objects), collection={"source": "cluster", **live.describe()})


def save_cluster(source, path: str, cluster: str | None = None, clusters: list[str] | None = None):
    """The cluster `source` names, collected into a snapshot file at `path` (api.save_snapshot)."""
    from auditor.collect.cluster import Spool
    from auditor.collect.snapshot_file import write_snapshot

    live = _collect(source, projected=False, spool=Spool(compress=path.endswith(".gz")))
    write_snapshot(live, path, cluster, clusters)
    return live


def connect_to(source):
    """A connection to the cluster `source` (an api.ClusterSource) names."""
    from auditor.collect.cluster import connect

    kubeconfig = str(source.kubeconfig) if source.kubeconfig is not None else None
    return connect(kubeconfig, source.context, timeout=source.timeout)


def _collect(source, **options):
    """One collection of the cluster `source` names (connect, then list what is read)."""
    from auditor.collect.cluster import Progress, collect

    return collect(connect_to(source), namespaces=list(source.namespaces) or None, timeout=source.timeout,
                   progress=Progress() if source.progress else Progress(enabled=False), **options)


def load_cluster_snapshot(path: str, peek: bool = False):
    """A snapshot of several clusters (version 4: one segment per cluster) as Clusters,
    each cluster's objects read as a single-cluster snapshot's are; None for any other
    file. With `peek`, only whether it is one (its first line is read)."""
    import orjson

    from auditor.model.clusters import Clusters

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
    import gzip
    import zlib

    from auditor.collect.paths import max_file_bytes, over_limit_decompressed

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
    from auditor.collect.files import load_snapshot_stream

    result = LoadResult()
    try:
        load_snapshot_stream(path, result, segment)
    except UsageError as err:
        raise UsageError(err.message, path, err.line + line - 1 if err.line else line) from None
    return result.snapshot(_collection_of_files(result))


def _segments(data: bytes) -> list[bytes]:
    """The file cut before each header line: one segment per cluster."""
    marker = b"\n" + HEAD + b","
    starts = [0]
    at = data.find(marker)
    while at != -1:
        starts.append(at + 1)
        at = data.find(marker, at + 1)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
