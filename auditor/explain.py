"""`mesh-audit explain KIND/NAMESPACE/NAME`: the reasoning behind the findings for one object.

It shows what Istio would decide for the object (data plane mode and the label that
decided it, waypoint binding or why there is none, the policies that reach it and which
proxy enforces each) and the facts exactly as rules see them, so that a finding can be
checked by hand and a custom rule can be written against real field names.
"""

from __future__ import annotations

import yaml

from auditor.core.errors import UsageError
from auditor.core import kinds as k
from auditor.facts.attachment import policies_reaching
from auditor.facts.identity import describe_generated, generated_callers
from auditor.facts.context import Context
from auditor.facts.subjects import facts_for
from auditor.model.report import Report
from auditor.model.snapshot import K8sObject, ObjectPath, Snapshot, group_choices
from auditor.core.words import did_you_mean, printable_lines


def find_object(snapshot: Snapshot, ref: str) -> K8sObject:
    """`Kind/namespace/name` or, for cluster-scoped kinds, `Kind/name`. The kind is matched
    case-insensitively and may carry its group: `Gateway.gateway.networking.k8s.io`."""
    path = ObjectPath.parse(ref)
    if path is None:
        raise UsageError(f"{ref!r}: name the object as KIND/NAMESPACE/NAME (or KIND/NAME for cluster-scoped kinds)")
    found = [o for o in snapshot if path.matches(o)]
    if not found:
        known = [f"{o.kind}/{o.namespace}/{o.name}" if o.namespace else f"{o.kind}/{o.name}" for o in snapshot
                 if o.kind.lower() == path.kind.lower()] or [o.kind for o in snapshot]
        raise UsageError(f"{ref}: no such object in the input{did_you_mean(ref if '/' in known[0] else path.kind, known)}"
                         if known else f"{ref}: no such object in the input")
    if len(found) > 1:
        raise UsageError(f"{ref} is ambiguous ({group_choices(found)}); qualify the kind with its group")
    return found[0]


def explain(ctx: Context, report: Report, obj: K8sObject) -> dict:
    object_facts = facts_for(ctx, obj)
    location = ctx.snapshot.location(obj)
    doc: dict = {
        "object": obj.ref(),
        "apiVersion": obj.api_version,
        "source": f"{location[0]}:{location[1]}" if location else "cluster",
        "state": "observed" if obj.observed else "declared",
        "facts": object_facts,
        "mesh": ctx.mesh,
    }
    w = ctx.workload(obj)
    if w is not None:
        doc["data_plane"] = {
            "mode": w.mode,
            "predicted_mode": w.predicted_mode,
            "observed_mode": w.observed_mode,
            "sidecar_injection": ("yes: " if w.injection.inject else "no: ") + w.injection.reason,
            "ambient_enrollment": ("yes: " if w.intent.intends else "no: ") + w.intent.reason,
            "ambient_blocked_by": w.blocked_by,
        }
        doc["services"] = [
            {"service": s.ref(), "waypoint": ctx.binding(s).to_facts()["name"], "why": ctx.binding(s).detail}
            for s in ctx.services_of(w.id)
        ]
        doc["policies"] = policies_reaching(ctx, w)
    generated = [describe_generated(role, obj.namespace or "", name, account)
                 for role, name, account in generated_callers(ctx).get(obj.namespace or "", ()) if name == obj.name]
    if obj.gk == k.GATEWAY and generated:  # what Istio deploys for it, never in the input
        doc["generated"] = generated[0]
    if object_facts is not None and isinstance(object_facts.get("waypoint"), dict):
        wp = object_facts["waypoint"]
        doc["waypoint"] = {"bound_to": wp["name"], "why": wp["detail"], "requested": wp["requested"], "reason": wp["reason"]}
    doc["findings"] = [
        {"rule": f.rule, "severity": f.severity, "message": f.message}
        for f in report.findings
        if (f.object.kind, f.object.namespace, f.object.name) == _reported_as(ctx, obj)
        and f.object.cluster == ctx.options.member
    ]
    return doc


def _reported_as(ctx: Context, obj: K8sObject) -> tuple:
    """Pods' findings are reported on their top owner."""
    w = ctx.workload(obj)
    if w is not None and w.owner is not None:
        return (w.owner.kind, w.owner.namespace, w.owner.name)
    return (obj.kind, obj.namespace, obj.name)


def render_text(doc: dict) -> str:
    out = [f"{doc['object']}  ({doc['state']}, from {doc['source']})", ""]
    if doc.get("generated"):
        out += ["Deployed by Istio", f"  {doc['generated']}", ""]
    if "data_plane" in doc:
        dp = doc["data_plane"]
        observed = f"observed {dp['observed_mode']}" if dp["observed_mode"] else "no running pod observed"
        out += ["Data plane", f"  mode: {dp['mode']} (predicted {dp['predicted_mode']}; {observed})",
                f"  sidecar injection: {dp['sidecar_injection']}", f"  ambient enrollment: {dp['ambient_enrollment']}"]
        if dp["ambient_blocked_by"]:
            out.append(f"  ambient blocked by: {dp['ambient_blocked_by']}")
        out.append("")
    if "waypoint" in doc:
        wp = doc["waypoint"]
        title = "Waypoint (for traffic addressed to the pods themselves)" if "data_plane" in doc else "Waypoint"
        out += [title, f"  {wp['bound_to'] or 'none'}: {wp['why']}", ""]
    if doc.get("services") is not None:
        out.append("Services selecting it")
        out += [f"  {s['service']}: waypoint {s['waypoint'] or 'none'} ({s['why']})" for s in doc["services"]] or ["  none"]
        out.append("")
    if doc.get("policies") is not None:
        out.append("Policies that reach it")
        for p in doc["policies"]:
            action = f" {p['action']}" if "action" in p else ""
            out.append(f"  {p['policy']}{action}: by {p['attached_by']}, enforced by {p['enforced_by']}")
        if not doc["policies"]:
            out.append("  none")
        out.append("")
    out.append("Findings")
    out += [f"  {f['severity']}  {f['rule']}: {f['message']}" for f in doc["findings"]] or ["  none"]
    out += ["", "Facts (what rules see as `facts`)"]
    facts_yaml = yaml.safe_dump(doc["facts"], sort_keys=True, default_flow_style=False, width=100) if doc["facts"] else "{}\n"
    out += ["  " + line for line in facts_yaml.rstrip("\n").splitlines()]
    return printable_lines("\n".join(out)) + "\n"  # what the input wrote is shown, never obeyed
