"""What an audit produces: findings, rule errors and input problems, in a stable order."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor import __version__
from auditor.core.coverage import describe_gap
from auditor.core.kinds import group_kind

__all__ = ["Finding", "ObjectRef", "Report", "describe_gap"]

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
FAIL_ON = ("error", "warning", "info", "never")


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    cluster: str | None = None  # the cluster that holds it, in an audit of several

    def __str__(self) -> str:
        ref = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
        return f"{ref} @{self.cluster}" if self.cluster else ref

    def to_dict(self) -> dict:
        out = {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}
        if self.cluster:
            out["cluster"] = self.cluster
        return out

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def key(self) -> tuple:
        """(group/Kind, namespace, name): the key the Snapshot holds the object under."""
        return (group_kind(self.api_version, self.kind), self.namespace, self.name)

    @property
    def path(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` when cluster-scoped: what exemptions match."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    object: ObjectRef
    location: tuple[str, int] | None
    observed: bool
    confidence: str = "high"
    pods: int = 0
    # Why the finding does not count: [{"kind": "inSource"|"external", "source": ..., "justification": ...}]
    suppressions: list = field(default_factory=list)
    baseline_state: str | None = None  # "new" or "unchanged" when compared with a baseline
    # JSON Pointers of the fields the finding is about (the rule's `fields`), and the one
    # that placed it: `location` is then that field's line.
    fields: list = field(default_factory=list)
    pointer: str | None = None
    # With --changes-only, for a finding on an object the change did not write: the changed
    # objects that bring it about (auditor.change.Changed.to_dict()).
    causes: list = field(default_factory=list)

    @property
    def suppressed(self) -> bool:
        return bool(self.suppressions)

    @property
    def counts(self) -> bool:
        """Whether the finding counts toward --fail-on: not suppressed, not already in the baseline."""
        return not self.suppressions and self.baseline_state != "unchanged"

    def identity(self) -> tuple:
        """Rule and object identity, never the message: what baselines and fingerprints key on
        (and the object's cluster, in an audit of several)."""
        o = self.object
        identity = (self.rule, o.group, o.kind, o.namespace or "", o.name)
        return (*identity, o.cluster) if o.cluster else identity

    def sort_key(self) -> tuple:
        o = self.object
        return (SEVERITY_RANK[self.severity], self.rule, o.cluster or "", o.namespace or "", o.kind, o.name, self.message)

    def _location(self) -> dict | None:
        if self.location is None:
            return None
        out = {"file": self.location[0], "line": self.location[1]}
        if self.pointer is not None:
            out["field"] = self.pointer
        return out

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "object": self.object.to_dict(),
            "location": self._location(),
            "observed": self.observed,
            "confidence": self.confidence,
            "pods": self.pods,
            "suppressed": self.suppressed,
            "suppressions": self.suppressions,
            "baseline_state": self.baseline_state,
            **({"caused_by": self.causes} if self.causes else {}),
        }


@dataclass(frozen=True)
class Report:
    """The findings of an audit and what they were made from. The engine makes one
    (`auditor.engine.evaluate`); the gate finishes it (`auditor.gate.finish`), both
    as new objects: a report is never changed once made."""

    findings: list[Finding]
    rules: list  # the rules that were evaluated (auditor.rulebook.Rule)
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    objects: int = 0
    istio_version: str | None = None
    version_source: str | None = None
    skipped_rules: list[str] = field(default_factory=list)
    tool_version: str = __version__
    # Where the objects came from: {"source": "files" | "cluster" | "snapshot", ...} with,
    # for clusters and snapshots, what was and was not collected (Collection.describe()).
    collection: dict = field(default_factory=lambda: {"source": "files"})
    cluster_name: str | None = None
    category: str | None = None  # SARIF automationDetails.id (code scanning's category)
    repo_root: str | None = None  # paths in SARIF and annotations are relative to it
    details_url: str | None = None  # where the whole report can be read (a CI run's page)
    baseline: dict | None = None  # {"file", "new", "unchanged", "fixed": [...]} with --baseline
    comparison: dict | None = None  # with --compare-version: findings the upgrade adds and removes
    unused_exemptions: list = field(default_factory=list)
    fail_on: str = "error"  # the lowest severity that fails the gate (FAIL_ON)
    config_path: str | None = None  # the configuration file the audit used
    # With --changes-only: {"applied", "deleted", "added": [...], "resolved": [...], "objects": [...]}
    # (the findings are then the added ones only).
    change: dict | None = None

    @property
    def not_collected(self) -> list[dict]:
        return list(self.collection.get("not_collected") or [])

    @property
    def not_rendered(self) -> list[dict]:
        """Helm charts and Kustomize folders that were skipped: their tool is not installed."""
        return list(self.collection.get("not_rendered") or [])

    @property
    def complete(self) -> bool:
        return not self.not_collected

    @property
    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    def counts(self) -> dict[str, int]:
        """Findings by severity, not counting suppressed ones."""
        counts = {s: 0 for s in SEVERITY_RANK}
        for f in self.active:
            counts[f.severity] += 1
        return counts

    def summary(self) -> dict:
        return {
            **self.counts(),
            "findings": len(self.active),
            "suppressed": len(self.findings) - len(self.active),
            "objects": self.objects,
            "rules": len(self.rules),
            "rules_skipped_for_version": len(self.skipped_rules),
            "istio_version": self.istio_version,
            "istio_version_source": self.version_source,
            "errors": len(self.errors),  # kept for readers of schema_version 1: input_errors says what it counts
            "input_errors": len(self.errors),
            "complete": self.complete,
            "not_collected": len(self.not_collected),
        }

    def exit_code(self, fail_on: str | None = None) -> int:
        """0 when nothing that counts is at or above `fail_on` (default: the report's own),
        1 otherwise; input errors (2) and incomplete collections (3) are the CLI's to add."""
        fail_on = fail_on or self.fail_on
        if fail_on == "never":
            return 0
        threshold = SEVERITY_RANK[fail_on]
        return 1 if any(SEVERITY_RANK[f.severity] <= threshold for f in self.findings if f.counts) else 0
