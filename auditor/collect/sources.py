"""Where an audit's objects come from, as one Snapshot: files (manifests, dumps, snapshots,
stdin) or a live cluster. The snapshot carries the record of how it was read
(`collection`) and the problems met in the input (`errors`, `warnings`)."""

from __future__ import annotations

from auditor.collect.excludes import Excluder
from auditor.collect.files import load_paths
from auditor.collect.status import Reading
from auditor.collect.render import RenderSettings
from auditor.core.errors import UsageError
from auditor.model.snapshot import Snapshot


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
    return loaded.snapshot(loaded.collection_record(require_rendering))


def load_cluster(source) -> Snapshot:
    """The cluster `source` (an api.ClusterSource) names; ClusterError when it cannot be
    read at all, UsageError for a kubeconfig that does not parse or lacks the context."""
    live = _collect(source, projected=True)
    return Snapshot(live.audit_objects(), collection={"source": "cluster", **live.describe()})


def save_cluster(source, path: str, cluster: str | None = None, clusters: list[str] | None = None):
    """The cluster `source` names, collected into a snapshot file at `path` (api.save_snapshot)."""
    from auditor.collect.cluster import Spool
    from auditor.collect.snapshot.file import write_snapshot

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
