"""The resource types a live scan reads, and how their paths and names are spelled."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from auditor.core.kinds import ISTIO_GROUPS

PAGE_SIZE = 500
JSON = "application/json"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
DEFAULT_ISTIO_NAMESPACE = "istio-system"
# ConfigMaps read by name in each Istio namespace (plus `<name>-<revision>` for revisions).
ISTIO_CONFIGMAPS = ("istio", "istio-sidecar-injector")
CNI_CONFIGMAP = "istio-cni-config"
__all__ = ["ISTIO_GROUPS"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """`plural` or `plural.group`, as kubectl and RBAC name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if namespace is not None:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return base + (f"/{quote(name, safe='')}" if name is not None else "")


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False)
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", True)
WEBHOOKS = ResourceType("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False)
# Nodes are read by name only (a metadata list): `plan` counts them to cost ztunnel.
NODES = ResourceType("", "v1", "nodes", "Node", False)
CRDS = ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False)
WORKLOAD_TYPES = (
    ResourceType("", "v1", "pods", "Pod", True),
    ResourceType("", "v1", "services", "Service", True),
    ResourceType("apps", "v1", "deployments", "Deployment", True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True),
    ResourceType("batch", "v1", "jobs", "Job", True),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
)
