"""Istio's own words: the labels, annotations and names Istio defines and reads, written
once for every layer (facts reason with them; plan writes them into change sets)."""

from __future__ import annotations

# Data plane mode and sidecar injection.
DATAPLANE_MODE = "istio.io/dataplane-mode"
NS_INJECTION = "istio-injection"
INJECT = "sidecar.istio.io/inject"
REV = "istio.io/rev"
SIDECAR_STATUS = "sidecar.istio.io/status"
REDIRECTION = "ambient.istio.io/redirection"
PROXY_CONTAINER = "istio-proxy"
# Namespaces the injector never touches, whatever their labels.
INJECTION_IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})

# Waypoints.
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NS = "istio.io/use-waypoint-namespace"
WAYPOINT_FOR = "istio.io/waypoint-for"
INGRESS_USE_WAYPOINT = "istio.io/ingress-use-waypoint"

# Identity.
DEFAULT_TRUST_DOMAIN = "cluster.local"
# Where kubelet probes come from once ztunnel's redirection takes a pod in (istio-cni SNATs
# them to this link-local address).
PROBE_SOURCE = "169.254.7.127"
