"""Every API group, kind and well-known port mesh-audit reads, named once.

Kinds are spelled the way rules name them in `applies_to`: `Kind` for the core group,
`group/Kind` otherwise (a "group-kind", gk). Versions are left out on purpose: Istio
serves most kinds at several versions, and a rule about a VirtualService holds for all.
"""

from __future__ import annotations

# -- API groups --------------------------------------------------------------------------------

ISTIO_NETWORKING = "networking.istio.io"
ISTIO_SECURITY = "security.istio.io"
ISTIO_TELEMETRY = "telemetry.istio.io"
ISTIO_EXTENSIONS = "extensions.istio.io"
GATEWAY_API = "gateway.networking.k8s.io"
# The groups whose every served kind a live scan reads.
ISTIO_GROUPS = (ISTIO_NETWORKING, ISTIO_SECURITY, ISTIO_TELEMETRY, ISTIO_EXTENSIONS, GATEWAY_API)

# -- Kubernetes kinds --------------------------------------------------------------------------

NAMESPACE = "Namespace"
POD = "Pod"
SERVICE = "Service"
CONFIG_MAP = "ConfigMap"
NODE = "Node"
DEPLOYMENT = "apps/Deployment"
STATEFUL_SET = "apps/StatefulSet"
DAEMON_SET = "apps/DaemonSet"
REPLICA_SET = "apps/ReplicaSet"
JOB = "batch/Job"
CRON_JOB = "batch/CronJob"
NETWORK_POLICY = "networking.k8s.io/NetworkPolicy"
MUTATING_WEBHOOK = "admissionregistration.k8s.io/MutatingWebhookConfiguration"
CRD = "apiextensions.k8s.io/CustomResourceDefinition"

# Kinds that run pods: a running Pod, or a controller with a pod template.
CONTROLLER_GKS = (DEPLOYMENT, STATEFUL_SET, DAEMON_SET, REPLICA_SET, JOB, CRON_JOB)
WORKLOAD_GKS = (POD, *CONTROLLER_GKS)

# -- Istio kinds -------------------------------------------------------------------------------

VIRTUAL_SERVICE = f"{ISTIO_NETWORKING}/VirtualService"
DESTINATION_RULE = f"{ISTIO_NETWORKING}/DestinationRule"
SERVICE_ENTRY = f"{ISTIO_NETWORKING}/ServiceEntry"
WORKLOAD_ENTRY = f"{ISTIO_NETWORKING}/WorkloadEntry"
SIDECAR = f"{ISTIO_NETWORKING}/Sidecar"
ENVOY_FILTER = f"{ISTIO_NETWORKING}/EnvoyFilter"
ISTIO_GATEWAY = f"{ISTIO_NETWORKING}/Gateway"  # the Istio API's Gateway (GATEWAY is the Gateway API's)
AUTHORIZATION_POLICY = f"{ISTIO_SECURITY}/AuthorizationPolicy"
PEER_AUTHENTICATION = f"{ISTIO_SECURITY}/PeerAuthentication"
REQUEST_AUTHENTICATION = f"{ISTIO_SECURITY}/RequestAuthentication"
TELEMETRY = f"{ISTIO_TELEMETRY}/Telemetry"
WASM_PLUGIN = f"{ISTIO_EXTENSIONS}/WasmPlugin"

# Kinds that configure proxies by selector, namespace or targetRefs (evidence C.4).
POLICY_GKS = (AUTHORIZATION_POLICY, PEER_AUTHENTICATION, REQUEST_AUTHENTICATION, SIDECAR, ENVOY_FILTER, WASM_PLUGIN,
              TELEMETRY)

# -- Gateway API kinds -------------------------------------------------------------------------

GATEWAY = f"{GATEWAY_API}/Gateway"
GATEWAY_CLASS = f"{GATEWAY_API}/GatewayClass"
HTTP_ROUTE = f"{GATEWAY_API}/HTTPRoute"
GRPC_ROUTE = f"{GATEWAY_API}/GRPCRoute"
TCP_ROUTE = f"{GATEWAY_API}/TCPRoute"
TLS_ROUTE = f"{GATEWAY_API}/TLSRoute"
ROUTE_GKS = (HTTP_ROUTE, GRPC_ROUTE, TCP_ROUTE, TLS_ROUTE)
L7_ROUTE_GKS = (HTTP_ROUTE, GRPC_ROUTE)

# -- mesh-audit's own ---------------------------------------------------------------------------

# The subject of rules about the cluster as a whole (a component or CRD it lacks).
CLUSTER = "mesh-audit.io/Cluster"

# Kinds that live outside namespaces. Anything else without metadata.namespace is placed
# in "default", as kubectl does when applying a manifest.
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "PriorityClass", "RuntimeClass", "IngressClass",
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "GatewayClass", "Cluster",
})

# -- ports --------------------------------------------------------------------------------------

# Every mesh connection to an ambient pod (and to a sidecar from an ambient client) arrives
# as HBONE on this port; waypoints listen on it.
HBONE_PORT = 15008


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def group_kind(api_version: str, kind: str) -> str:
    """`Kind` for the core group, `group/Kind` otherwise."""
    group = group_of(api_version)
    return f"{group}/{kind}" if group else kind


def ref_gk(group: str | None, kind: str) -> str:
    """The gk a reference names (a policy's targetRef, a route's parentRef or backendRef).

    `group` None means the reference leaves it out: Gateway and GatewayClass then default
    to gateway.networking.k8s.io, anything else to the core group ("core" also names it)."""
    if group is None:
        group = GATEWAY_API if kind in ("Gateway", "GatewayClass") else ""
    if group == "core":
        group = ""
    if kind == "Service" and not group:
        return SERVICE
    if kind == "ServiceEntry" and group == ISTIO_NETWORKING:
        return SERVICE_ENTRY
    return f"{group}/{kind}" if group else kind


def short_kind(gk: str) -> str:
    """The kind alone: `HTTPRoute` for `gateway.networking.k8s.io/HTTPRoute`."""
    return gk.rpartition("/")[2]
