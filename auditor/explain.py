"""`mesh-audit explain KIND/NAMESPACE/NAME`: the reasoning behind the findings for one object.

It shows what Istio would decide for the object (data plane mode and the label that
decided it, waypoint binding or why there is none, the policies that reach it and which
proxy enforces each) and the facts exactly as rules see them, so that a finding can be
checked by hand and a custom rule can be written against real field names.
"""

from __future__ import annotations

import yaml

from auditor.errors import UsageError
from auditor.facts import Facts
from auditor.facts import policy as pol
from auditor.facts.labels import selector_matches
from auditor.facts.services import SERVICE_ENTRY
from auditor.facts.workloads import Workload
from auditor.report import Report
from auditor.snapshot import K8sObject, Snapshot


def find_object(snapshot: Snapshot, ref: str) -> K8sObject:
    """`Kind/namespace/name` or, for cluster-scoped kinds, `Kind/name`. The kind is matched
    case-insensitively and may carry its group: `Gateway.gateway.networking.k8s.io`."""
    parts = ref.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"{ref!r}: name the object as KIND/NAMESPACE/NAME (or KIND/NAME for cluster-scoped kinds)")
    kind, _, group = parts[0].partition(".")
    namespace, name = (parts[1], parts[2]) if len(parts) == 3 else (None, parts[1])
    found = [
        o for o in snapshot
        if o.kind.lower() == kind.lower() and o.name == name and o.namespace == namespace
        and (not group or o.api_version.rpartition("/")[0] == group)
    ]
    if not found:
        raise UsageError(f"{ref}: no such object in the input")
    if len(found) > 1:
        groups = ", ".join(sorted(f"{o.kind}.{o.api_version.rpartition('/')[0] or 'core'}" for o in found))
        raise UsageError(f"{ref} is ambiguous ({groups}); qualify the kind with its group")
    return found[0]


def policies_reaching(facts: Facts, w: Workload) -> list[dict]:
    """Every policy that applies to a workload, how it attaches, and who enforces it."""
    out = []
    root = facts.settings.root_namespace
    services = {s.key for s in facts.services_of(w.id)}
    for policy in facts.snapshot.of(*pol.POLICY_GKS):
        spec, ns = policy.spec, policy.namespace or ""
        scope = pol.scope_of(policy.gk, spec, ns, root)
        how = None
        if scope == "targetRefs":
            for ref in pol.target_refs_of(spec):
                kind = str(ref.get("kind", ""))
                gk = "Service" if kind == "Service" else SERVICE_ENTRY if kind == "ServiceEntry" else None
                if gk and (gk, ns, str(ref.get("name", ""))) in services:
                    svc = facts.snapshot.get(gk, ns, str(ref.get("name", "")))
                    binding = facts.binding(svc)
                    enforcer = f"waypoint {binding.waypoint[0]}/{binding.waypoint[1]}" if binding.waypoint else "nobody (no waypoint)"
                    how = f"targetRefs {kind} {ns}/{ref.get('name')}"
                    break
        else:
            in_reach = ns == w.namespace or scope == "mesh" or (ns == root and pol.mesh_wide_selector(policy.gk))
            if not in_reach:
                continue
            if scope == "selector":
                selector = pol.selector_of(policy.gk, spec) or {}
                if not selector_matches({"matchLabels": selector}, w.labels):
                    continue
            how = scope
            enforcer = pol.enforcer(policy.gk, w.role, w.mode)
            if enforcer == "nobody":
                enforcer = "nobody (" + ("waypoints never take selector policies" if w.role == "waypoint"
                                        else f"{w.mode} workloads do not apply {policy.kind}") + ")"
        if how is None:
            continue
        entry = {"policy": policy.ref(), "attached_by": how, "enforced_by": enforcer}
        if policy.gk == pol.AUTHORIZATION_POLICY:
            entry["action"] = str(spec.get("action") or "ALLOW")
        out.append(entry)
    return sorted(out, key=lambda e: e["policy"])


def explain(facts: Facts, report: Report, obj: K8sObject) -> dict:
    object_facts = facts.for_object(obj)
    location = facts.snapshot.location(obj)
    doc: dict = {
        "object": obj.ref(),
        "apiVersion": obj.api_version,
        "source": f"{location[0]}:{location[1]}" if location else "cluster",
        "state": "observed" if obj.observed else "declared",
        "facts": object_facts,
        "mesh": facts.mesh,
    }
    w = facts.workload(obj)
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
            {"service": s.ref(), "waypoint": facts.binding(s).to_facts()["name"], "why": facts.binding(s).detail}
            for s in facts.services_of(w.id)
        ]
        doc["policies"] = policies_reaching(facts, w)
    if object_facts is not None and isinstance(object_facts.get("waypoint"), dict):
        wp = object_facts["waypoint"]
        doc["waypoint"] = {"bound_to": wp["name"], "why": wp["detail"], "requested": wp["requested"], "reason": wp["reason"]}
    doc["findings"] = [
        {"rule": f.rule, "severity": f.severity, "message": f.message}
        for f in report.findings
        if (f.object.kind, f.object.namespace, f.object.name) == _reported_as(facts, obj)
    ]
    return doc


def _reported_as(facts: Facts, obj: K8sObject) -> tuple:
    """Pods' findings are reported on their top owner."""
    w = facts.workload(obj)
    if w is not None and w.owner is not None:
        return (w.owner.kind, w.owner.namespace, w.owner.name)
    return (obj.kind, obj.namespace, obj.name)


def render_text(doc: dict) -> str:
    out = [f"{doc['object']}  ({doc['state']}, from {doc['source']})", ""]
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
    return "\n".join(out) + "\n"
