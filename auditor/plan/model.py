"""What `mesh-audit plan` produces: per namespace a verdict with its reasons, the change
set, the waves to move in, and what the move costs and saves."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor import __version__
from auditor.core import kinds as k
from auditor.model.snapshot import K8sObject

SCHEMA_VERSION = "1"
READY, NEEDS_WAYPOINT, BLOCKED = "ready", "needs-waypoint", "blocked"
VERDICTS = (READY, NEEDS_WAYPOINT, BLOCKED)


@dataclass
class Change:
    """One step: `apply` a manifest, `delete` an object (listed, not done), or `review` by hand."""

    action: str
    kind: str
    namespace: str | None
    name: str
    why: str
    manifest: dict | None = None
    fields: list[str] = field(default_factory=list)  # for a deletion of some fields only

    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def to_dict(self) -> dict:
        out = {"action": self.action, "kind": self.kind, "namespace": self.namespace, "name": self.name, "why": self.why}
        if self.fields:
            out["fields"] = self.fields
        return out


@dataclass
class ChangeSet:
    namespace: str
    changes: list[Change] = field(default_factory=list)
    waypoint: str | None = None  # the waypoint the namespace's Services will use
    new_waypoint: bool = False  # ... and the plan creates it
    bound_services: list[str] = field(default_factory=list)
    moved_policies: list[K8sObject] = field(default_factory=list)  # authorization now at the waypoint
    template_labels: dict = field(default_factory=dict)  # (kind, name) -> new pod template labels

    def use_waypoint(self, name: str, new: bool) -> None:
        """The namespace's Services will use the waypoint `name`, which the plan creates when `new`."""
        self.waypoint, self.new_waypoint = name, new

    def put(self) -> list[K8sObject]:
        return [K8sObject(c.manifest) for c in self.changes if c.action == "apply" and c.manifest is not None]

    def remove(self) -> set[tuple]:
        return {(k.group_kind(api_version_of(c.kind), c.kind), c.namespace, c.name) for c in self.changes
                if c.action == "delete" and not c.fields}


def api_version_of(kind: str) -> str:
    """The apiVersion of a kind a change set deletes by name (Sidecar, PeerAuthentication, core kinds)."""
    return {"Sidecar": "networking.istio.io/v1", "PeerAuthentication": "security.istio.io/v1"}.get(kind, "v1")


@dataclass
class Reason:
    """A finding the move introduces. `stage`: "move" (the move alone brings it) or
    "after-changes" (still there with the change set applied)."""

    rule: str
    migration: str
    severity: str
    object: str
    message: str
    stage: str = "move"
    workloads: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "migration": self.migration, "severity": self.severity, "object": self.object,
                "message": self.message, "stage": self.stage, "workloads": self.workloads}


@dataclass
class Resources:
    cpu_millis: int = 0
    memory_bytes: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millis + other.cpu_millis, self.memory_bytes + other.memory_bytes)

    def times(self, n: int) -> Resources:
        return Resources(self.cpu_millis * n, self.memory_bytes * n)

    def to_dict(self) -> dict:
        return {"cpu_millis": self.cpu_millis, "memory_bytes": self.memory_bytes}


@dataclass
class WorkloadPlan:
    name: str
    pods: int
    mode: str  # today's
    verdict: str
    rules: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "pods": self.pods, "mode": self.mode, "verdict": self.verdict, "rules": self.rules}


@dataclass
class Caller:
    """A namespace whose workloads call this one, and what says so."""

    namespace: str
    evidence: str

    def to_dict(self) -> dict:
        return {"namespace": self.namespace, "evidence": self.evidence}


def blocking(reasons: list[Reason]) -> list[Reason]:
    """The reasons that keep a namespace where it is."""
    return [r for r in reasons if r.migration == "blocked" or r.stage == "after-changes"]


@dataclass
class NamespacePlan:
    name: str
    today: str
    verdict: str = READY
    wave: int | None = None
    held_by: list[str] = field(default_factory=list)
    workloads: list[WorkloadPlan] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    resolved: list[dict] = field(default_factory=list)  # today's findings the move makes go away
    changes: ChangeSet | None = None
    callers: list[Caller] = field(default_factory=list)
    sidecars: Resources = field(default_factory=Resources)
    waypoint: Resources = field(default_factory=Resources)

    @property
    def blocking(self) -> list[Reason]:
        return blocking(self.reasons)

    def to_dict(self) -> dict:
        changes = self.changes.changes if self.changes else []
        return {
            "name": self.name, "today": self.today, "verdict": self.verdict, "wave": self.wave, "held_by": self.held_by,
            "waypoint": self.changes.waypoint if self.changes else None,
            "workloads": [w.to_dict() for w in self.workloads],
            "reasons": [r.to_dict() for r in self.reasons],
            "resolved": self.resolved,
            "changes": [c.to_dict() for c in changes],
            "callers": [c.to_dict() for c in self.callers],
            "cost": {"sidecars": self.sidecars.to_dict(), "waypoint": self.waypoint.to_dict()},
        }


@dataclass
class Wave:
    number: int
    namespaces: list[str]
    order: list[str] = field(default_factory=list)  # why a namespace waits: "legacy after orders: ..."

    def to_dict(self) -> dict:
        return {"wave": self.number, "namespaces": self.namespaces, "order": self.order}


@dataclass
class Cost:
    sidecars: Resources = field(default_factory=Resources)  # requested today by the sidecars of planned namespaces
    ztunnel: Resources = field(default_factory=Resources)  # what ambient adds on the nodes
    ztunnel_per_node: Resources = field(default_factory=Resources)
    ztunnel_installed: bool = False
    ztunnel_source: str = ""
    nodes: int | None = None
    nodes_source: str = ""
    waypoints: Resources = field(default_factory=Resources)
    notes: list[str] = field(default_factory=list)

    @property
    def added(self) -> Resources:
        return self.waypoints + (Resources() if self.ztunnel_installed else self.ztunnel)

    def to_dict(self) -> dict:
        saved, added = self.sidecars, self.added
        return {
            "sidecars": saved.to_dict(), "waypoints": self.waypoints.to_dict(), "ztunnel": self.ztunnel.to_dict(),
            "ztunnel_per_node": self.ztunnel_per_node.to_dict(), "ztunnel_installed": self.ztunnel_installed,
            "ztunnel_source": self.ztunnel_source, "nodes": self.nodes, "nodes_source": self.nodes_source,
            "added": added.to_dict(),
            "net": {"cpu_millis": saved.cpu_millis - added.cpu_millis, "memory_bytes": saved.memory_bytes - added.memory_bytes},
            "notes": self.notes,
        }


@dataclass
class Plan:
    target: str = "ambient"
    istio_version: str | None = None
    version_source: str | None = None
    namespaces: list[NamespacePlan] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"namespace", "why"}
    waves: list[Wave] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    collection: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    verification: dict | None = None
    emitted: str | None = None  # the folder the change set was written to
    rules: dict = field(default_factory=dict)  # the rules the reasons cite: id -> title, why, fix

    def namespace(self, name: str) -> NamespacePlan | None:
        return next((n for n in self.namespaces if n.name == name), None)

    def counts(self) -> dict:
        return {v: sum(1 for n in self.namespaces if n.verdict == v) for v in VERDICTS}

    @property
    def complete(self) -> bool:
        return not self.collection.get("not_collected") and not self.errors

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "mesh-audit", "version": __version__},
            "target": self.target,
            "istio_version": self.istio_version,
            "version_source": self.version_source,
            "summary": self.counts(),
            "namespaces": [n.to_dict() for n in self.namespaces],
            "skipped": self.skipped,
            "waves": [w.to_dict() for w in self.waves],
            "held": [{"namespace": n.name, "held_by": n.held_by} for n in self.namespaces if n.held_by],
            "cost": self.cost.to_dict(),
            "complete": self.complete,
            "not_collected": list(self.collection.get("not_collected") or []),
            "errors": self.errors,
            "warnings": self.warnings,
            "verification": self.verification,
            "emitted": self.emitted,
            "rules": self.rules,
        }
