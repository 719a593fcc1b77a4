"""Facts of a Service: the workloads behind it, its waypoint and who routes to it."""

from __future__ import annotations

import auditor.facts.mode as m
from auditor.core import kinds as k
from auditor.facts.attachment import waypoint_policies
from auditor.facts.context import Context
from auditor.facts.ingress import ingress_waypoint_choice
from auditor.facts.maturity import alpha_features
from auditor.facts.topology import SINGLE
from auditor.facts.waypoint import legacy_reference
from auditor.model.snapshot import K8sObject, as_list
from auditor.core.versions import V1_24

KINDS = (k.SERVICE,)
# Ports Istio treats as TCP without sniffing; names that suggest a server-first protocol.
SERVER_FIRST_SAFE_PORTS = frozenset({25, 53, 3306, 27017})
SERVER_FIRST_HINTS = ("mysql", "mariadb", "mongo", "smtp", "ftp", "imap", "pop3", "nats")
DECLARED_PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web", "mongo", "mysql", "redis", "tcp", "tls", "udp")


def build(ctx: Context, obj: K8sObject) -> dict:
    selected = ctx.services.selected_workloads(obj)
    counts = ctx.mode_counts(selected)
    binding = ctx.binding(obj)
    ingress_through_waypoint, why = ingress_waypoint_choice(ctx, obj)
    return {
        "workloads": counts,
        "has_ambient_workloads": counts["ambient"] > 0,
        "has_sidecar_workloads": counts["sidecar"] > 0,
        "waypoint": binding.to_facts(),
        **legacy_reference(obj.labels, obj.annotations),
        "waypoint_policies": waypoint_policies(ctx, obj, binding),
        "ingress_routes": sorted(set(ctx.routes.ingress_routes.get(obj.key, ()))),
        "ingress_use_waypoint": ingress_through_waypoint,
        # Why ingress traffic does (or does not) pass the waypoint, for the message.
        "ingress_use_waypoint_why": why,
        # Ingress gateways honour istio.io/ingress-use-waypoint from Istio 1.24 on.
        "ingress_use_waypoint_supported": ctx.version_at_least(V1_24),
        "server_first_ports": _server_first_ports(ctx, obj, selected) if counts["sidecar"] else [],
        "alpha_features": alpha_features(ctx.installation.istio_version, _dual_stack(obj) if counts["ambient"] else []),
        "multicluster": ctx.topology.service_facts(ctx.options.member, obj) if ctx.topology is not None else SINGLE,
    }


def _dual_stack(svc: K8sObject) -> list[tuple[str, str]]:
    """IPv6 or dual stack asked of a Service (ipFamilyPolicy, ipFamilies)."""
    policy = svc.spec.get("ipFamilyPolicy")
    families = [str(f) for f in as_list(svc.spec.get("ipFamilies"))]
    if policy in ("PreferDualStack", "RequireDualStack"):
        return [("dual-stack", f"ipFamilyPolicy: {policy}")]
    if "IPv6" in families:
        return [("dual-stack", f"ipFamilies: {', '.join(families)}")]
    return []


def _declares_protocol(port: dict) -> bool:
    if port.get("appProtocol"):
        return True
    name = str(port.get("name") or "").lower()
    return any(name == p or name.startswith(p + "-") for p in DECLARED_PROTOCOLS)


def _server_first_ports(ctx: Context, svc: K8sObject, selected: list[int]) -> list[str]:
    """Ports of a sidecar-backed Service that Istio will sniff although the server speaks first."""
    images = []
    for i in selected:
        w = ctx.workloads[i]
        if w.mode != "sidecar":
            continue
        for c in as_list(w.pod_spec.get("containers")):
            if isinstance(c, dict) and c.get("name") != m.PROXY_CONTAINER:
                images.append(str(c.get("image") or "").lower())
    out = []
    for port in as_list(svc.spec.get("ports")):
        if not isinstance(port, dict) or _declares_protocol(port):
            continue
        number = port.get("port")
        if number in SERVER_FIRST_SAFE_PORTS:
            continue
        target = port.get("targetPort")
        words = [str(port.get("name") or "").lower(), str(target).lower() if isinstance(target, str) else ""]
        hints = [h for h in SERVER_FIRST_HINTS if any(h in w for w in words if w)]
        hints += [h for h in SERVER_FIRST_HINTS if h not in hints and any(h in image.rsplit("/", 1)[-1] for image in images)]
        if hints:
            label = str(port.get("name") or number)
            out.append(f"{label} ({number}/{port.get('protocol') or 'TCP'}, looks like {hints[0]})")
    return out
