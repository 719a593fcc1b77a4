"""Services and ServiceEntries: which workloads a Service selects, and what a route host names."""

from __future__ import annotations

import fnmatch

from auditor.core import kinds as k
from auditor.facts.labels import LabelIndex
from auditor.model.snapshot import K8sObject, Snapshot, as_list

CLUSTER_DOMAIN = "cluster.local"


def service_fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def qualify_host(host: str, namespace: str) -> str:
    """Istio's short-name rule: a host without a dot is `<host>.<namespace>.svc.cluster.local`;
    anything with a dot is taken as written."""
    host = host.strip().lower()
    if host and host != "*" and "." not in host:
        return service_fqdn(host, namespace)
    return host


class ServiceIndex:
    def __init__(self, snapshot: Snapshot, workloads: LabelIndex):
        self._workloads = workloads
        self.by_fqdn: dict[str, K8sObject] = {}
        for svc in snapshot.of(k.SERVICE):
            self.by_fqdn[service_fqdn(svc.name, svc.namespace or "")] = svc
        self.entries_by_host: dict[str, list[K8sObject]] = {}
        for se in snapshot.of(k.SERVICE_ENTRY):
            for host in as_list(se.spec.get("hosts")):
                self.entries_by_host.setdefault(str(host).lower(), []).append(se)

    def with_changes(self, put, remove) -> ServiceIndex:
        """A copy with these Services and ServiceEntries replaced, added or removed."""
        out = ServiceIndex.__new__(ServiceIndex)
        out._workloads, out.by_fqdn = self._workloads, dict(self.by_fqdn)
        out.entries_by_host = {host: list(found) for host, found in self.entries_by_host.items()}
        gone = {key for key in remove if key[0] in (k.SERVICE, k.SERVICE_ENTRY)} | {o.key for o in put}
        for gk, namespace, name in gone:
            if gk == k.SERVICE:
                out.by_fqdn.pop(service_fqdn(name, namespace or ""), None)
        for host, found in out.entries_by_host.items():
            found[:] = [se for se in found if se.key not in gone]
        for obj in put:
            if obj.gk == k.SERVICE:
                out.by_fqdn[service_fqdn(obj.name, obj.namespace or "")] = obj
            elif obj.gk == k.SERVICE_ENTRY:
                for host in as_list(obj.spec.get("hosts")):
                    out.entries_by_host.setdefault(str(host).lower(), []).append(obj)
        return out

    def selected_workloads(self, svc: K8sObject) -> list[int]:
        """Workload ids a Service selects. A Service without a selector selects nothing."""
        selector = svc.spec.get("selector")
        if not isinstance(selector, dict) or not selector:
            return []
        return self._workloads.select(svc.namespace, selector)

    def resolve_host(self, host: str, namespace: str) -> list[K8sObject]:
        """Services and ServiceEntries a route host refers to (several for a wildcard)."""
        fqdn = qualify_host(str(host), namespace)
        if not fqdn or fqdn == "*":
            return []
        if "*" in fqdn:
            found = [svc for h, svc in sorted(self.by_fqdn.items()) if fnmatch.fnmatchcase(h, fqdn)]
            for h, entries in sorted(self.entries_by_host.items()):
                if fnmatch.fnmatchcase(h, fqdn):
                    found.extend(entries)
            return found
        found = [self.by_fqdn[fqdn]] if fqdn in self.by_fqdn else []
        return found + self.entries_by_host.get(fqdn, [])
