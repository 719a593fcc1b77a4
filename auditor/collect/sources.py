"""Where an audit's objects come from, as one Snapshot: files (manifests, dumps, snapshots,
stdin) or a live cluster. The snapshot carries the record of how it was read
(`collection`) and the problems met in the input (`errors`, `warnings`)."""

from __future__ import annotations

from auditor.collect.excludes import Excluder
from auditor.collect.files import LoadResult, load_paths
from auditor.collect.render import RenderSettings
from auditor.coverage import Gap
from auditor.errors import UsageError
from auditor.snapshot import K8sObject, Snapshot


def load_files(paths: list[str], jobs: int | None = None, stdin=None, snapshot_only: bool = False,
               follow_symlinks: bool = False, excluder: Excluder | None = None, render: RenderSettings | None = None,
               require_rendering: bool = False) -> Snapshot:
    """Every object under `paths`; with `snapshot_only`, the one path must be a snapshot.
    With `require_rendering`, a chart or kustomization that could not be rendered is a
    gap (the audit is incomplete) rather than a warning."""
    loaded = load_paths(paths, stdin=stdin, jobs=jobs, follow_symlinks=follow_symlinks, excluder=excluder, render=render)
    if snapshot_only and not loaded.snapshots and not loaded.errors:
        raise UsageError(f"{paths[0]}: not a mesh-audit snapshot; scan manifests and dumps with -f")
    snapshot = loaded.snapshot()
    snapshot.collection = _collection_of_files(loaded, require_rendering)
    snapshot.errors, snapshot.warnings = loaded.errors, loaded.warnings
    return snapshot


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
    from auditor.collect.cluster import Progress, collect, connect

    kubeconfig = str(source.kubeconfig) if source.kubeconfig is not None else None
    connection = connect(kubeconfig, source.context)
    live = collect(connection, namespaces=list(source.namespaces) or None, timeout=source.timeout,
                   progress=Progress() if source.progress else Progress(enabled=False), projected=True)
    snapshot = Snapshot(K8sObject(o) for o in live.objects)
    snapshot.collection = {"source": "cluster", **live.describe()}
    return snapshot
