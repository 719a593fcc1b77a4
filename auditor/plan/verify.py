"""`plan --verify`: apply the written change set, wave by wave, to today's cluster and audit
each result in full (no shortcuts). A wave passes when its audit has no error or warning
that today's lacks, other than notices and the ordering finding the waves answer
(waypoint-sidecar-clients-bypass), and no namespace that moved has a known caller still
on sidecars.
"""

from __future__ import annotations

from pathlib import Path

from auditor.core import kinds as k
from auditor.collect.excludes import Excluder
from auditor.collect.sources import load_files
from auditor.engine import evaluate
from auditor.core.errors import UsageError
from auditor.facts.questions import Context
from auditor.plan.emit import read_index
from auditor.plan.model import Plan
from auditor.plan.moves import enrolls_pods, restarted_pods
from auditor.plan.planner import NOT_REASONS, accepted, diff, sidecar_namespaces
from auditor.plan.waves import ANY
from auditor.model.snapshot import K8sObject, Snapshot, as_dict


def verify(plan: Plan, ctx: Context, today: list, directory: str, settings) -> dict:
    """Re-audit today's cluster with each wave of the change set in `directory` applied."""
    index = read_index(directory)
    written = load_files([directory], excluder=Excluder(gitignore=False))
    if written.errors:
        raise UsageError(f"the change set in {directory} does not load: {written.errors[0]}")
    by_namespace = _by_namespace(written, Path(directory), index.get("folders") or {})
    rules = {r.id: r for r in settings.rules}
    enrolled = enrolls_pods(ctx)
    results, moved = [], []
    for wave in sorted({w for w in index["waves"].values()}):
        moved += sorted(ns for ns, w in index["waves"].items() if w == wave)
        put, remove = [], set()
        for ns in moved:
            objects = by_namespace.get(ns, [])
            put += objects
            labels = next((o.labels for o in objects if o.gk == k.NAMESPACE and o.name == ns), None)
            if labels is None:
                raise UsageError(f"{directory}: wave-{wave}/{ns} has no namespace.yaml")
            put += restarted_pods(ctx, ns, labels, enrolled, _template_labels(objects))
            remove |= {(k.group_kind(_api(d["kind"]), d["kind"]), d["namespace"], d["name"])
                       for d in index["deletions"].get(ns, [])}
        after = Context(ctx.snapshot.changed(put, remove), ctx.installation.istio_version, ctx.options)
        found = evaluate(after, settings.rules, jobs=settings.jobs).findings
        added, _ = diff(today, found)
        added = [f for f in accepted(added, after.snapshot, settings)
                 if f.severity in ("error", "warning") and rules[f.rule].migration not in NOT_REASONS]
        gaps = _gaps(plan, after, moved)
        results.append({
            "wave": wave, "namespaces": list(moved),
            "new_findings": [{"rule": f.rule, "severity": f.severity, "object": str(f.object), "message": f.message,
                              "location": f.location and {"file": f.location[0], "line": f.location[1]}} for f in added],
            "gaps": gaps, "ok": not added and not gaps,
        })
    return {"ok": all(r["ok"] for r in results), "directory": directory, "waves": results}


def _by_namespace(snapshot: Snapshot, root: Path, folders: dict) -> dict[str, list[K8sObject]]:
    """The loaded manifests by the namespace whose folder they were written to (wave-N/<folder>/;
    `folders`: folder -> namespace, where the two differ)."""
    out: dict[str, list[K8sObject]] = {}
    for obj in snapshot:
        parts = Path(obj.file or "").resolve().relative_to(root.resolve()).parts if obj.file else ()
        if len(parts) >= 3 and parts[0].startswith("wave-"):
            out.setdefault(folders.get(parts[1], parts[1]), []).append(obj)
    return out


def _template_labels(objects: list[K8sObject]) -> dict:
    out = {}
    for obj in objects:
        if obj.gk in k.CONTROLLER_GKS:
            spec = as_dict(obj.spec.get("jobTemplate", {}).get("spec")) if obj.kind == "CronJob" else obj.spec
            out[(obj.kind, obj.name)] = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    return out


def _api(kind: str) -> str:
    return {"Sidecar": "networking.istio.io/v1", "PeerAuthentication": "security.istio.io/v1"}.get(kind, "v1")


def _gaps(plan: Plan, after: Context, moved: list[str]) -> list[str]:
    """Moved namespaces whose known callers still run sidecars in this state."""
    still = sidecar_namespaces(after)
    out = []
    for name in moved:
        ns = plan.namespace(name)
        for caller in ns.callers if ns else []:
            waiting = sorted(still - {name}) if caller.namespace == ANY else [caller.namespace] if caller.namespace in still else []
            out += [f"{name}: caller {c} still runs sidecars ({caller.evidence})" for c in waiting]
    return out
