"""Policy attachment (evidence C.4): which workloads a policy covers and which proxy enforces it.

Without `targetRefs`, a policy binds by selector, to its namespace, or (in the root
namespace) to the whole mesh; sidecars, gateways and, for AuthorizationPolicy and
PeerAuthentication, ztunnel enforce it. Waypoints never take such policies. With
`targetRefs`, only waypoints and gateways enforce it; sidecars and ztunnel ignore it.
"""

from __future__ import annotations

AUTHORIZATION_POLICY = "security.istio.io/AuthorizationPolicy"
PEER_AUTHENTICATION = "security.istio.io/PeerAuthentication"
REQUEST_AUTHENTICATION = "security.istio.io/RequestAuthentication"
SIDECAR = "networking.istio.io/Sidecar"
ENVOY_FILTER = "networking.istio.io/EnvoyFilter"
WASM_PLUGIN = "extensions.istio.io/WasmPlugin"
TELEMETRY = "telemetry.istio.io/Telemetry"

POLICY_GKS = (
    AUTHORIZATION_POLICY, PEER_AUTHENTICATION, REQUEST_AUTHENTICATION,
    SIDECAR, ENVOY_FILTER, WASM_PLUGIN, TELEMETRY,
)
# Where the selector lives: spec.selector.matchLabels, or spec.workloadSelector.labels.
_WORKLOAD_SELECTOR_KINDS = (SIDECAR, ENVOY_FILTER)
# Policies ztunnel receives (as L4 policy) when they select an ambient workload.
_ZTUNNEL_KINDS = (AUTHORIZATION_POLICY, PEER_AUTHENTICATION)
# Root-namespace policies with a selector apply to matching workloads in every namespace.
_MESH_WIDE_SELECTOR_KINDS = (AUTHORIZATION_POLICY, PEER_AUTHENTICATION, REQUEST_AUTHENTICATION, ENVOY_FILTER, WASM_PLUGIN, TELEMETRY)
TARGET_KINDS = {("", "Service"), ("networking.istio.io", "ServiceEntry"), ("gateway.networking.k8s.io", "Gateway"), ("gateway.networking.k8s.io", "GatewayClass")}


def selector_of(gk: str, spec: dict) -> dict | None:
    """The selector's matchLabels, {} for an empty selector, None when there is none."""
    if gk in _WORKLOAD_SELECTOR_KINDS:
        sel = spec.get("workloadSelector")
        if not isinstance(sel, dict):
            return None
        labels = sel.get("labels")
    else:
        sel = spec.get("selector")
        if not isinstance(sel, dict):
            return None
        labels = sel.get("matchLabels")
    return labels if isinstance(labels, dict) else {}


def target_refs_of(spec: dict) -> list[dict]:
    refs = spec.get("targetRefs")
    refs = [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []
    single = spec.get("targetRef")
    if isinstance(single, dict):
        refs.append(single)
    return refs


def scope_of(gk: str, spec: dict, namespace: str, root_namespace: str) -> str:
    if target_refs_of(spec):
        return "targetRefs"
    if selector_of(gk, spec):
        return "selector"
    return "mesh" if namespace == root_namespace else "namespace"


def enforcer(gk: str, role: str, mode: str) -> str:
    """Which proxy applies a selector/namespace policy of kind `gk` to one workload."""
    if role == "gateway":
        return "nobody" if gk == SIDECAR else "gateway"
    if role in ("waypoint", "control-plane"):
        return "nobody"  # waypoints never take selector policies
    if mode == "sidecar":
        return "sidecar"
    if mode == "ambient" and gk in _ZTUNNEL_KINDS:
        return "ztunnel"
    return "nobody"


def mesh_wide_selector(gk: str) -> bool:
    return gk in _MESH_WIDE_SELECTOR_KINDS
