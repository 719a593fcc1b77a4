"""One snapshot through the pipeline under the user's settings (api.Settings, resolved):
the context it is read as, and the findings of the rules in force. api and the audit of
several clusters (multicluster) both go through here, so settings apply alike."""

from __future__ import annotations

from dataclasses import replace

from auditor.core.errors import UsageError
from auditor.core.versions import Version, checked_version, parse_version
from auditor.engine import evaluate
from auditor.facts.context import AuditOptions, Context
from auditor.model.report import Report
from auditor.model.snapshot import Snapshot


def context_of(snapshot: Snapshot, settings, *, member: str | None = None, version: Version | None = None) -> Context:
    """The snapshot indexed for facts, for the Istio version asked (--istio-version, or
    `version` instead); `member`: this cluster's name in an audit of several."""
    options = audit_options(snapshot, settings)
    if member is not None:
        options = replace(options, member=member, cluster_name=member)
    return Context(snapshot, version or version_of(settings.istio_version, "--istio-version"), options)


def findings_of(ctx: Context, settings, rules=None) -> Report:
    """The engine's report (not yet finished by the gate) for `rules` (default: those in force)."""
    return evaluate(ctx, settings.rules if rules is None else rules, jobs=settings.jobs)


def version_of(value, option: str) -> Version | None:
    """A version given as text or Version; UsageError naming `option` for bad text."""
    if value is None or isinstance(value, Version):
        return value
    try:
        return checked_version(str(value))[0]
    except ValueError as err:
        raise UsageError(f"{option}: {err}") from None


def audit_options(snapshot: Snapshot, settings) -> AuditOptions:
    """What the rules may assume beyond the objects: for a cluster or snapshot, which
    resource types were collected in full (so that an absent DaemonSet or CRD means
    something), and the Kubernetes version."""
    collection = snapshot.collection
    collected = settings.collected
    if collected is None and collection.get("source") in ("cluster", "snapshot"):
        missing = {g["resource"] for g in collection.get("not_collected") or ()}
        collected = frozenset(k for k in collection.get("counts") or {} if k not in missing)
    server = collection.get("server_version")
    return AuditOptions(
        strict_maturity=settings.strict_maturity or settings.config.strict,
        sidecar_scope_threshold=settings.sidecar_scope_threshold,
        collected=collected,
        kubernetes_version=parse_version(server) if server else None,
        cluster_name=settings.cluster_name or "cluster",
    )
