"""Kubernetes NetworkPolicy semantics, as far as ambient mode cares.

Policies are additive: once any ingress policy selects a pod, only what some selecting
policy allows gets in, and a port is open if any one of them allows it. Ambient mode adds
two kinds of traffic a policy written before enrollment does not allow: HBONE on TCP
15008 (every mesh connection to the pod arrives there) and kubelet probes, which ztunnel's
redirection makes arrive from the link-local address 169.254.7.127.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from auditor.core import istio
from auditor.facts.labels import LabelIndex
from auditor.core.kinds import HBONE_PORT
from auditor.model.snapshot import K8sObject, as_dict, as_list

PROBE_SOURCE = ip_address(istio.PROBE_SOURCE)


def is_ingress_policy(spec: dict) -> bool:
    """policyTypes as written, else Ingress always (Egress only when egress rules exist)."""
    types = spec.get("policyTypes")
    if isinstance(types, list):
        return "Ingress" in types
    return True


def ingress_rules(spec: dict) -> list[dict]:
    return [r for r in as_list(spec.get("ingress")) if isinstance(r, dict)]


def rules_closed_to(spec: dict, port: int) -> list[dict]:
    """The ingress rules (as written in `spec`, to be edited in place) that list ports
    and leave `port` out."""
    return [r for r in ingress_rules(spec) if as_list(r.get("ports")) and not rule_allows_port(r, port)]


def rule_allows_port(rule: dict, port: int, protocol: str = "TCP") -> bool:
    """A rule without ports allows every port; a named port never equals a number here."""
    ports = [p for p in as_list(rule.get("ports")) if isinstance(p, dict)]
    if not as_list(rule.get("ports")):
        return True
    for p in ports:
        if str(p.get("protocol") or "TCP") != protocol:
            continue
        number = p.get("port")
        if number is None:
            return True  # protocol only: all ports of it
        if isinstance(number, int) and not isinstance(number, bool):
            end = p.get("endPort")
            if number == port or (isinstance(end, int) and number <= port <= end):
                return True
    return False


def rule_allows_source(rule: dict, address) -> bool:
    """Whether a peer at `address` matches a rule's `from` (no `from` means everyone).
    Pod and namespace selectors never match a link-local address."""
    peers = as_list(rule.get("from"))
    if not peers:
        return True
    for peer in peers:
        block = as_dict(as_dict(peer).get("ipBlock"))
        try:
            if not block.get("cidr") or address not in ip_network(str(block["cidr"]), strict=False):
                continue
            if any(address in ip_network(str(e), strict=False) for e in as_list(block.get("except"))):
                continue
        except ValueError:
            continue
        return True
    return False


def lists_ports(spec: dict) -> bool:
    return any(as_list(r.get("ports")) for r in ingress_rules(spec))


class NetworkPolicies:
    """Ingress NetworkPolicies indexed by the workloads they select."""

    def __init__(self, policies: list[K8sObject], index: LabelIndex):
        self.selected: dict[tuple, list[int]] = {}
        self.by_workload: dict[int, list[K8sObject]] = {}
        for np in policies:
            spec = np.spec
            if not is_ingress_policy(spec):
                self.selected[np.key] = []
                continue
            selector = as_dict(spec.get("podSelector"))
            ids = index.select(np.namespace or "", selector.get("matchLabels"), as_list(selector.get("matchExpressions")))
            self.selected[np.key] = ids
            for i in ids:
                self.by_workload.setdefault(i, []).append(np)

    def port_open(self, workload_id: int, port: int) -> bool:
        return any(rule_allows_port(r, port) for np in self.by_workload.get(workload_id, ()) for r in ingress_rules(np.spec))

    def source_allowed(self, workload_id: int, address) -> bool:
        return any(rule_allows_source(r, address) for np in self.by_workload.get(workload_id, ()) for r in ingress_rules(np.spec))

    def hbone_blocked(self, np: K8sObject, ids: list[int]) -> list[int]:
        """Of `ids` (selected by `np`), those no selecting policy opens 15008 for, when `np`
        is one that lists ports (a deny-all policy is taken as meant)."""
        if not lists_ports(np.spec):
            return []
        return [i for i in ids if not self.port_open(i, HBONE_PORT)]

    def probes_blocked(self, ids: list[int]) -> list[int]:
        return [i for i in ids if not self.source_allowed(i, PROBE_SOURCE)]
