"""How mature each ambient feature is in each Istio release (evidence Section D).

Istio 1.22's data plane modes page listed as Alpha in ambient: interoperability with
sidecars, VirtualService and DestinationRule at waypoints, multi-cluster, DNS proxying,
IPv6/dual stack (and SOCKS5 outbound, which no object shows); and as not implemented:
controlled egress, multi-network and VMs. Most became Beta with 1.24; multi-network is
Alpha from 1.27 and Beta from 1.29. A feature with no row for a version ("not listed")
has no maturity to report there.
"""

from __future__ import annotations

from auditor.core.versions import Version

ALPHA, BETA, STABLE, UNSUPPORTED = "alpha", "beta", "stable", "not implemented"

# feature -> [(first minor, status)], in order; each status holds until the next row.
TABLE: dict[str, list[tuple[tuple[int, int], str | None]]] = {
    "virtualservice-at-waypoint": [((1, 22), ALPHA)],
    "destinationrule-at-waypoint": [((1, 22), ALPHA), ((1, 23), BETA), ((1, 24), STABLE)],
    "wasmplugin-at-waypoint": [((1, 22), ALPHA)],
    "tcp-tls-route-at-waypoint": [((1, 22), ALPHA)],
    "sidecar-interoperability": [((1, 22), ALPHA), ((1, 24), None)],
    "dns-proxying": [((1, 22), ALPHA), ((1, 24), BETA)],
    "dual-stack": [((1, 22), ALPHA), ((1, 24), BETA)],
    "multi-network": [((1, 22), UNSUPPORTED), ((1, 27), ALPHA), ((1, 29), BETA)],
    "multi-cluster": [((1, 22), ALPHA), ((1, 24), UNSUPPORTED), ((1, 27), ALPHA), ((1, 29), BETA)],
}

# How messages name each feature.
NAMES = {
    "virtualservice-at-waypoint": "VirtualService at a waypoint",
    "destinationrule-at-waypoint": "DestinationRule at a waypoint",
    "wasmplugin-at-waypoint": "WasmPlugin at a waypoint",
    "tcp-tls-route-at-waypoint": "TCPRoute and TLSRoute at a waypoint",
    "sidecar-interoperability": "interoperability between sidecar and ambient workloads",
    "dns-proxying": "DNS proxying by ztunnel",
    "dual-stack": "IPv6 and dual-stack in ambient mode",
    "multi-network": "a multi-network mesh in ambient mode",
    "multi-cluster": "a multi-cluster mesh in ambient mode",
}


def status(feature: str, version: Version | None) -> str | None:
    """The feature's maturity in `version`; for an unknown version, only a status every
    release shares (else None: nothing can be said)."""
    rows = TABLE[feature]
    if version is None:
        statuses = {s for _, s in rows}
        return rows[0][1] if len(statuses) == 1 else None
    found = None
    for (major, minor), state in rows:
        if (version.major, version.minor) >= (major, minor):
            found = state
    return found


def is_alpha(feature: str, version: Version | None) -> bool:
    return status(feature, version) == ALPHA


def alpha_features(version: Version | None, found: list[tuple[str, str]]) -> list[str]:
    """Of the (feature, what shows it) found on an object, those Alpha in `version`, as
    messages name them: "DNS proxying by ztunnel (AMBIENT_DNS_CAPTURE=true)"."""
    return [f"{NAMES[feature]} ({detail})" if detail else NAMES[feature] for feature, detail in found
            if is_alpha(feature, version)]
