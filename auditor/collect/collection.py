"""The record of one collection from a cluster: the objects read, and how it went."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from auditor.core.coverage import Gap
from auditor.model.snapshot import K8sObject

if TYPE_CHECKING:
    from auditor.collect.cluster.spool import Spool


@dataclass
class Collection:
    """What one collection run read: the objects and the record of how it went."""

    objects: list[dict] = field(default_factory=list)
    context: str | None = None
    server: str | None = None
    server_version: str | None = None
    collected_at: str | None = None
    namespaces: list[str] | None = None  # the scope asked for; None means all
    counts: dict[str, int] = field(default_factory=dict)  # resource -> objects collected
    not_collected: list[Gap] = field(default_factory=list)
    not_installed: list[str] = field(default_factory=list)  # API groups or resources the server lacks
    # The path of each list read -> the resourceVersion it was read at: where a watch of it starts.
    list_versions: dict[str, str] = field(default_factory=dict)
    list_types: dict = field(default_factory=dict)  # the same paths -> their ResourceType
    # Objects read by name (Istio's ConfigMaps; Namespaces of a scoped collection): (list
    # path, name) -> (the resourceVersion read, or None where absent; its ResourceType).
    named_versions: dict = field(default_factory=dict)
    # Running pods the lister read straight into their projection: (namespace, name) -> the
    # replica signature it gave them (model.snapshot.replica_signature), kept for the audit.
    signatures: dict[tuple, bytes] = field(default_factory=dict)
    # For a snapshot: the large lists, already serialized page by page (see Spool).
    spool: "Spool | None" = None

    @property
    def complete(self) -> bool:
        return not self.not_collected

    def finish(self, objects: list[dict]) -> None:
        """The objects read, and the gaps in a stable order."""
        self.objects = objects
        self.not_collected.sort(key=lambda g: (g.resource, g.namespace or "", g.name or ""))

    def audit_objects(self) -> list[K8sObject]:
        """The objects as an audit reads them: running pods with the signature the lister gave
        them as it read them (which facts would otherwise compute again, pod by pod)."""
        signed = self.signatures
        return [K8sObject(o, signature=signed.get((o["metadata"].get("namespace"), o["metadata"].get("name")))
                          if signed and o.get("kind") == "Pod" else None) for o in self.objects]

    def hand_over(self) -> list[K8sObject]:
        """`audit_objects()` for a caller that keeps them from here on (serve's store): the
        record lets go of them, so what the caller replaces or drops is freed."""
        out = self.audit_objects()
        self.objects, self.signatures = [], {}
        return out

    @property
    def object_count(self) -> int:
        return len(self.objects) + (self.spool.count if self.spool is not None else 0)

    def describe(self) -> dict:
        """Everything but the objects: what the report and the snapshot header carry."""
        return {
            "context": self.context,
            "server": self.server,
            "server_version": self.server_version,
            "collected_at": self.collected_at,
            "namespaces": self.namespaces,
            "counts": dict(sorted(self.counts.items())),
            "not_collected": [g.to_dict() for g in self.not_collected],
            "not_installed": sorted(self.not_installed),
        }
