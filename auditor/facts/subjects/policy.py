"""Facts of a policy (AuthorizationPolicy, PeerAuthentication, RequestAuthentication,
Sidecar, EnvoyFilter, WasmPlugin, Telemetry): how it attaches, who enforces it, and what
it asks of the proxy that does."""

from __future__ import annotations

import auditor.facts.mode as m
from auditor.core import kinds as k
from auditor.facts.admission import waypoint_admission
from auditor.facts.attachment import attachment_of, selector_of, target_refs_of
from auditor.facts.authz import authorization_facts
from auditor.facts.context import EXAMPLES, Context
from auditor.facts.identity import hidden_identities, waypoint_self_exclusions
from auditor.facts.labels import parse_bool
from auditor.facts.maturity import alpha_features
from auditor.model.snapshot import K8sObject, as_dict, as_list
from auditor.core.words import plural

KINDS = k.POLICY_GKS


def build(ctx: Context, obj: K8sObject) -> dict:
    spec = obj.spec
    attachment = attachment_of(ctx, obj)
    refs = attachment.targets
    ns = obj.namespace or ""
    ids = attachment.workloads
    out: dict = {"scope": attachment.scope, "has_selector": selector_of(obj.gk, spec) is not None}
    out["selector_and_target_refs"] = out["has_selector"] and bool(target_refs_of(spec))
    out["target_refs"] = refs
    # A Service whose workloads all run sidecars is unbound because of that: policy-target-sidecar
    # says so, one finding for one fact.
    out["unbound_targets"] = [r["detail"] for r in refs if r["status"] in ("unbound", "missing")
                              and not r.get("only_sidecars")]
    out["invalid_targets"] = [r["detail"] for r in refs if r["status"] == "invalid"]
    out["waypoint_targets"] = [f"{r['kind']} {ns}/{r['name']}" for r in refs if r["status"] == "waypoint"]
    out["sidecar_targets"] = [f"{r['kind']} {ns}/{r['name']} ({plural(r['sidecar_workloads'], 'sidecar workload')})"
                              for r in refs if r.get("sidecar_workloads")]
    out["sidecar_targets_unbound"] = [f"{r['kind']} {ns}/{r['name']}" for r in refs
                                      if r.get("only_sidecars") and r["status"] in ("unbound", "missing")]
    out["enforced_by"] = attachment.enforcers(ctx, obj.gk)
    out["selected"] = ctx.mode_counts(ids)
    out["ambient_examples"] = ctx.examples(ctx.ambient_ids(ids))
    out["alpha_features"] = []
    out.update(_KIND_FACTS.get(obj.gk, _none)(ctx, obj, out))
    return out


def _none(ctx: Context, obj: K8sObject, common: dict) -> dict:
    return {}


def _authorization_policy(ctx: Context, obj: K8sObject, common: dict) -> dict:
    ambient = ctx.ambient_ids(attachment_of(ctx, obj).workloads)
    refused, admits = waypoint_admission(ctx, obj)
    return {
        **authorization_facts(obj.spec),
        # Istio reads istio.io/dry-run with Go's ParseBool ("True" and "1" count too).
        "dry_run": parse_bool(obj.annotations.get("istio.io/dry-run")) is True,
        "identity_behind_waypoint": _services_with_waypoint(ctx, ambient),
        "identities_hidden_by_waypoint": hidden_identities(ctx, obj),
        "waypoint_excluded_by_itself": waypoint_self_exclusions(ctx, obj, common["target_refs"]),
        "waypoints_refused": refused,
        "admits_waypoint": admits,
    }


def _peer_authentication(ctx: Context, obj: K8sObject, common: dict) -> dict:
    spec = obj.spec
    modes = [str(as_dict(spec.get("mtls")).get("mode") or "UNSET")]
    modes += [str(as_dict(v).get("mode") or "UNSET") for v in as_dict(spec.get("portLevelMtls")).values()]
    return {"mtls_modes": sorted(set(modes))}


def _envoy_filter(ctx: Context, obj: K8sObject, common: dict) -> dict:
    patches = as_list(obj.spec.get("configPatches"))
    return {"waypoint_context": any(as_dict(as_dict(p).get("match")).get("context") == "WAYPOINT" for p in patches)}


def _sidecar(ctx: Context, obj: K8sObject, common: dict) -> dict:
    otp = obj.spec.get("outboundTrafficPolicy")
    policy = str(otp.get("mode")) if isinstance(otp, dict) and otp.get("mode") else None
    reaches_ambient = m.namespace_in_ambient(ctx.ns_labels(obj.namespace)) or common["selected"]["ambient"] > 0
    return {
        "outbound_traffic_policy": policy,
        # Egress control ambient workloads do not follow before Istio 1.24.
        "egress_control": "outboundTrafficPolicy is REGISTRY_ONLY" if policy == "REGISTRY_ONLY" and reaches_ambient else None,
    }


def _wasm_plugin(ctx: Context, obj: K8sObject, common: dict) -> dict:
    at = common["waypoint_targets"]
    return {"alpha_features": alpha_features(ctx.installation.istio_version,
                                             [("wasmplugin-at-waypoint", ", ".join(at))] if at else [])}


_KIND_FACTS = {
    k.AUTHORIZATION_POLICY: _authorization_policy,
    k.PEER_AUTHENTICATION: _peer_authentication,
    k.ENVOY_FILTER: _envoy_filter,
    k.SIDECAR: _sidecar,
    k.WASM_PLUGIN: _wasm_plugin,
}


def _services_with_waypoint(ctx: Context, ids: list[int]) -> list[str]:
    """Services bound to a waypoint that select any of these workloads."""
    found = set()
    for i in ids:
        for svc in ctx.services_of(i):
            binding = ctx.binding(svc)
            if binding.waypoint:
                found.add(f"{svc.ref()} (waypoint {binding.waypoint[0]}/{binding.waypoint[1]})")
    return sorted(found)[:EXAMPLES]
