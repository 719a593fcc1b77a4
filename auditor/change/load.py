"""A change read from its paths and applied to a base: what `api.apply` does once it has
the base and a way to read files as a scan reads them."""

from __future__ import annotations

from auditor.change.apply import Applied, apply_change, tally
from auditor.change.gitref import removed_since
from auditor.model.clusters import Clusters
from auditor.model.snapshot import Snapshot


def apply_paths(base: Snapshot | Clusters, named: dict, read, deletes=(), diff_base: str | None = None,
                namespace: str | None = None, excluder=None, charts: dict | None = None) -> Applied:
    """`named`: cluster name (None: every cluster) -> paths of the change. `read(paths,
    charts=None)` loads paths as a scan does (`charts`: the configured charts' folders, as
    moved for reading a git ref). The deletions `diff_base` finds are warned about once,
    and every snapshot of the result records what the change applied and deleted."""
    changes = {name: read(paths) for name, paths in named.items() if paths}
    removed, warnings = [], []
    if diff_base is not None:
        def read_old(paths: list[str], relocate) -> Snapshot:
            return read(paths, {relocate(path) or path: chart for path, chart in (charts or {}).items()})

        scanned = [str(p) for paths in named.values() for p in paths]
        removed, warnings = removed_since(diff_base, scanned, read_old, excluder, namespace)
    plain = changes.pop(None, None)
    applied = apply_change(base, Snapshot() if plain is None else plain, changes, tuple(deletes), removed, namespace)
    members = applied.combined.items() if isinstance(applied.combined, Clusters) else [(None, applied.combined)]
    for name, snapshot in members:
        snapshot.warnings.extend(warnings)
        warnings = []  # once, on the first cluster
        record = snapshot.collection
        record["change"] = tally(applied.changed[name])
        for source in [s for key, s in [(None, plain), *changes.items()] if s is not None and key in (None, name)]:
            _add_rendering(record, source.collection)
    return applied


def _add_rendering(record: dict, read: dict) -> None:
    """What the change's charts and overlays rendered, and what they could not (a gap with
    --require-rendering), joined to the base's record."""
    for key in ("rendered", "not_rendered", "not_collected"):
        if read.get(key):
            record[key] = [*(record.get(key) or ()), *read[key]]
