"""Lay a change over a base, as `kubectl apply` and `kubectl delete` would.

An object of the change with the same group, kind, namespace and name as one of the
base replaces it (keeping the live object's uid and status, which apply never writes);
the others are added. A namespaced object that names no namespace lands
in `default`, or in the one namespace given with `-n`. Deletions name objects as
`Kind/namespace/name` (`Kind/name` when cluster-scoped; `Kind.group/...` where two
groups share the kind), or come from a git ref: objects the scanned paths held there and
no longer hold. The base is a snapshot or the live cluster (one, or several: a change is
then applied to every cluster, or, given as `NAME=PATH`, to that one only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.model.clusters import Clusters
from auditor.core.errors import UsageError
from auditor.core.kinds import CLUSTER_SCOPED_KINDS
from auditor.model.snapshot import K8sObject, ObjectPath, Snapshot, group_choices


@dataclass(frozen=True)
class Changed:
    """One object the change puts in place or deletes, as a finding's cause names it."""

    key: tuple  # (group/Kind, namespace, name), as Snapshot keys objects
    ref: str  # `Kind namespace/name`
    location: tuple[str, int] | None  # where the change writes it (for a deletion: where it was)
    deleted: bool = False
    why: str | None = None  # for a deletion: "--delete", or "removed since REF"
    cluster: str | None = None  # in an audit of several clusters, the one it changes

    def to_dict(self) -> dict:
        out = {"object": self.ref, "change": "deleted" if self.deleted else "applied",
               "location": {"file": self.location[0], "line": self.location[1]} if self.location else None}
        if self.why:
            out["why"] = self.why
        if self.cluster:
            out["cluster"] = self.cluster
        return out


@dataclass
class Applied:
    """The base, the state with the change applied, and what the change did to each
    cluster (None names the one cluster of a single-cluster base)."""

    base: Snapshot | Clusters
    combined: Snapshot | Clusters
    changed: dict[str | None, list[Changed]] = field(default_factory=dict)

    def all_changed(self) -> list[Changed]:
        return [c for items in self.changed.values() for c in items]

    def record(self) -> dict:
        """How many objects the change applied and deleted, in every cluster."""
        return tally(self.all_changed())


def tally(items: list[Changed]) -> dict:
    """{"applied": N, "deleted": M} of some changed objects (a report says it of the change,
    a cluster's collection record of what the change did there)."""
    return {"applied": sum(not c.deleted for c in items), "deleted": sum(c.deleted for c in items)}


@dataclass(frozen=True)
class Deletion(ObjectPath):
    text: str = ""  # as the user wrote it


def parse_deletion(text: str) -> Deletion:
    """`Kind/namespace/name`, `Kind/name` (cluster-scoped) or `Kind.group/...`; UsageError
    for anything else."""
    path = ObjectPath.parse(text)
    if path is None:
        raise UsageError(f"--delete {text}: name the object as KIND/NAMESPACE/NAME (or KIND/NAME when cluster-scoped)")
    if path.namespace is None and path.kind.lower() not in _SCOPED_LOWER:
        raise UsageError(f"--delete {text}: {path.kind} is namespaced: write {path.kind}/NAMESPACE/{path.name}")
    return Deletion(path.kind, path.group, path.namespace, path.name, text)


_SCOPED_LOWER = frozenset(k.lower() for k in CLUSTER_SCOPED_KINDS)


def apply_change(base: Snapshot | Clusters, change: Snapshot, pinned: dict[str, Snapshot] | None = None,
                 deletions: tuple[str, ...] = (), removed: list[Changed] = (), namespace: str | None = None,
                 ) -> Applied:
    """`change` applied to `base` (to every cluster of several; `pinned` changes to the
    cluster named), then `deletions` (`--delete` references) and `removed` (objects a git
    ref held and the change no longer does) taken out. UsageError for a reference that is
    ambiguous, a pinned cluster the base lacks, or a pinned change on a single cluster."""
    wanted = [parse_deletion(text) for text in deletions]
    pinned = pinned or {}
    if not isinstance(base, Clusters):
        if pinned:
            raise UsageError(f"-f {next(iter(pinned))}=...: the base holds one cluster; give the change without a name")
        combined, changed, matched = _apply_one(base, change, [], wanted, removed, namespace, None)
        _report_unmatched(wanted, matched, combined)
        return Applied(base, combined, {None: changed})
    for name in pinned:
        if name not in base.members:
            raise UsageError(f"-f {name}=...: the base has no cluster named {name!r} "
                             f"(it has {', '.join(base.members)})")
    members, changed, matched = {}, {}, set()
    for name, snapshot in base.items():
        extra = pinned.get(name)
        members[name], changed[name], found = _apply_one(snapshot, change, [extra] if extra is not None else [], wanted,
                                                         removed, namespace, name)
        matched |= found
    combined = Clusters(members)
    _report_unmatched(wanted, matched, next(iter(members.values())))
    return Applied(base, combined, changed)


def _apply_one(base: Snapshot, change: Snapshot, extra: list[Snapshot], wanted: list[Deletion],
               removed: list[Changed], namespace: str | None, cluster: str | None,
               ) -> tuple[Snapshot, list[Changed], set[str]]:
    pairs = [(source, obj) for source in (change, *extra) for obj in source]
    put = [_as_applied(in_namespace(obj, namespace), base) for _, obj in pairs]
    put_keys = {obj.key for obj in put}
    changed = [Changed(new.key, new.ref(), source.location(obj), cluster=cluster) for (source, obj), new in zip(pairs, put)]
    matched: set[str] = set()
    remove: set[tuple] = set()
    for deletion in wanted:
        written = next((obj for obj in put if deletion.matches(obj)), None)
        if written is not None:
            where = f" ({written.file}:{written.line})" if written.file else ""
            raise UsageError(f"--delete {deletion.text}: the change also writes this object{where}; "
                             "delete it or write it, not both")
        found = [obj for obj in base if deletion.matches(obj)]
        if len({obj.api_version.rpartition("/")[0] for obj in found}) > 1:
            raise UsageError(f"--delete {deletion.text} is ambiguous ({group_choices(found)}); qualify the kind with its group")
        for obj in found:
            remove.add(obj.key)
            matched.add(deletion.text)
            changed.append(Changed(obj.key, obj.ref(), None, True, "--delete", cluster))
    for gone in removed:
        if gone.key not in put_keys and base.get(*gone.key) is not None and gone.key not in remove:
            remove.add(gone.key)
            changed.append(Changed(gone.key, gone.ref, gone.location, True, gone.why, cluster))
    return base.overlaid(put, remove, [change, *extra]), changed, matched


def _report_unmatched(wanted: list[Deletion], matched: set[str], combined: Snapshot) -> None:
    """A `--delete` that names nothing (in any cluster) is a warning, as `kubectl delete
    --ignore-not-found` takes it: the gate still says what was asked."""
    for deletion in wanted:
        if deletion.text not in matched:
            combined.warnings.append(UsageError(f"--delete {deletion.text}: no such object in the base; nothing deleted"))


def _as_applied(obj: K8sObject, base: Snapshot) -> K8sObject:
    """The object as the cluster holds it once applied over one it already has: the
    manifest's fields, with the live object's uid and status, which apply never writes
    (a waypoint stays programmed, a Deployment keeps its replicas)."""
    live = base.get(*obj.key)
    if live is None or not live.observed or obj.observed:
        return obj
    raw = dict(obj.raw)
    if "status" in live.raw:
        raw["status"] = live.raw["status"]
    uid = live.metadata.get("uid")
    if uid:
        raw["metadata"] = {**obj.metadata, "uid": uid}
    return obj.rewritten(raw)


def in_namespace(obj: K8sObject, namespace: str | None) -> K8sObject:
    """The object in `namespace` when it names none and its kind is namespaced (`-n`)."""
    if namespace is None or obj.namespace is None or obj.metadata.get("namespace"):
        return obj
    raw = {**obj.raw, "metadata": {**obj.metadata, "namespace": namespace}}
    return obj.rewritten(raw)
