"""Whom a ztunnel-enforced ALLOW policy still admits once a waypoint is in the path.

Traffic through a waypoint reaches the destination's ztunnel as the waypoint's own
identity (evidence C.3, rule 7). An ALLOW policy that ztunnel enforces (a selector or
namespace-wide policy) must then admit the waypoint, or every request through it is
refused: Istio's getting-started guide reaches that step and adds the waypoint's service
account to the policy. A policy that admits callers that bypass the waypoint (sidecar
clients, an ingress gateway whose Service does not opt in) and not the waypoint is a
deliberate choice ("only the ingress gateway may call"), so it is not judged here.

Only rules ztunnel keeps are read: an ALLOW rule with an L7 attribute is dropped by istiod
(`authz-l7-allow-at-ztunnel` reports that), and a policy with no rule left (allow-nothing)
refuses everyone on purpose. Whatever cannot be decided from the input (an `ipBlocks`
source, an identity no known caller has) counts as admitting, so nothing is reported.
"""

from __future__ import annotations

import auditor.facts.mode as m
from auditor.facts.authz import rule_attributes
from auditor.facts.context import Context
from auditor.facts.indexes import Index
from auditor.facts.identity import (
    callers_by_namespace, generated_callers, identity_matcher, identity_namespace, passes_waypoint, trust_domain_of,
    waypoint_path,
)
from auditor.model.snapshot import K8sObject, as_dict, as_list

# A source's identity fields: key -> (kind of identity, negated).
SOURCE_FIELDS = {
    "principals": ("principal", False), "notPrincipals": ("principal", True),
    "namespaces": ("namespace", False), "notNamespaces": ("namespace", True),
    "serviceAccounts": ("serviceAccount", False), "notServiceAccounts": ("serviceAccount", True),
}
WHEN_KEYS = {"source.principal": "principal", "source.namespace": "namespace"}
POSITIVE = ("principals", "namespaces", "serviceAccounts")
# Ingress opted in -> _callers: built from workloads' modes, so never kept by a what-if copy.
WAYPOINT_CALLERS = Index("waypoint_callers")


class RuleTest:
    """One ALLOW rule as a test of a caller's (namespace, service account)."""

    def __init__(self, rule: dict, trust_domain: str):
        self.trust_domain = trust_domain
        self.values: list[tuple[str, str]] = []  # the identities the rule names as admitted
        # `from`: any entry; in an entry, every field. With each entry, what its fields name
        # as admitted: (kind, values), for `candidates`.
        self.entries = []
        for entry in as_list(rule.get("from")):
            source = as_dict(as_dict(entry).get("source"))
            present = [(key, kind, negated) for key, (kind, negated) in SOURCE_FIELDS.items() if as_list(source.get(key))]
            self.entries.append((source, [self._field(kind, source.get(key), negated) for key, kind, negated in present],
                                 [(kind, _names(source.get(key))) for key, kind, negated in present if not negated]))
        self.conditions = []  # `when`: every condition
        self.condition_names = []  # what the conditions name as admitted: (kind, values)
        for cond in map(as_dict, as_list(rule.get("when"))):
            kind = WHEN_KEYS.get(cond.get("key"))
            if kind:
                self.conditions += [self._field(kind, cond.get(key), negated)
                                    for key, negated in (("values", False), ("notValues", True)) if as_list(cond.get(key))]
                if as_list(cond.get("values")):
                    self.condition_names.append((kind, _names(cond.get("values"))))

    def _field(self, kind: str, values, negated: bool):
        """(a test of any of the values, negated): one field of a source or one condition."""
        names = _names(values)
        if not negated:
            self.values += [(kind, v) for v in names]
        tests = [identity_matcher(kind, v, self.trust_domain) for v in names]
        return (lambda ns, sa: any(t(ns, sa) for t in tests)), negated

    def names_callers(self) -> bool:
        """Whether the rule admits only callers it names: each `from` entry names one (and
        nothing, like an IP block, that the input cannot decide), or a `when` does."""
        if self.entries:
            return all(any(as_list(source.get(k)) for k in POSITIVE) and not as_list(source.get("ipBlocks"))
                       and not as_list(source.get("notIpBlocks")) for source, _, _ in self.entries)
        return any(not negated for _, negated in self.conditions)

    def admits(self, namespace: str, account: str) -> bool:
        def holds(fields) -> bool:
            return all(test(namespace, account) != negated for test, negated in fields)

        return (not self.entries or any(holds(fields) for _, fields, _ in self.entries)) and holds(self.conditions)

    def candidates(self, callers: "Callers") -> list[tuple[str, str, bool]]:
        """The callers the rule may admit (every one it admits among them): for each `from`
        entry, those one of its fields names without a wildcard (an admitted caller
        matches every field of some entry); with no entries, those a condition names.
        Everyone when an entry, or every condition, names no one that way."""
        groups = [named for _, _, named in self.entries] if self.entries else [self.condition_names]
        found: list = []
        for named in groups:
            exact = next((field for field in named if not any("*" in v for v in field[1])), None)
            if exact is None:
                return callers.all
            for value in exact[1]:
                found += callers.named(exact[0], value)
        return found


def _names(values) -> list[str]:
    return [str(v) for v in as_list(values)]


class Callers:
    """Every caller the input shows (see _callers) as (namespace, service account, passes
    the waypoint), and an index of them by each identity a policy can name: a name with
    no wildcard matches by equality (identity_matcher), so its callers are looked up."""

    def __init__(self, callers: list[tuple[str, str, bool]], trust_domain: str):
        self.all = callers
        self._by: dict[tuple[str, str], list] = {}
        for caller in callers:
            ns, sa, _ = caller
            for key in (("principal", f"{trust_domain}/ns/{ns}/sa/{sa}"), ("namespace", ns),
                        ("serviceAccount", f"{ns}/{sa}"), ("serviceAccount", sa)):
                self._by.setdefault(key, []).append(caller)

    def named(self, kind: str, value: str) -> list[tuple[str, str, bool]]:
        """The callers an identity without a wildcard names."""
        return self._by.get((kind, value), [])


def waypoint_admission(ctx: Context, policy: K8sObject) -> tuple[list[str], bool | None]:
    """For an ALLOW policy on workloads behind waypoints, read once: (the waypoints none of
    its kept rules admits, when every caller it admits reaches those workloads through them,
    else none; whether its rules admit one of those waypoints). ([], None) for any other."""
    if str(policy.spec.get("action") or "ALLOW") != "ALLOW":
        return [], None
    path = waypoint_path(ctx, policy)
    if path is None:
        return [], None
    waypoints, ingress_opted_in = path
    trust_domain = trust_domain_of(ctx)
    tests = [RuleTest(r, trust_domain) for r in as_list(policy.spec.get("rules"))
             if isinstance(r, dict) and not rule_attributes(r)[0]]
    refused = [(ns, sa) for ns, sa in sorted(waypoints) if not any(t.admits(ns, sa) for t in tests)]
    admits = len(refused) < len(waypoints)
    if not tests or not refused or not all(t.names_callers() for t in tests):
        return [], admits
    callers = _callers(ctx, ingress_opted_in, trust_domain)
    for t in tests:
        if any(not through and t.admits(ns, sa) for ns, sa, through in t.candidates(callers)):
            return [], admits  # admits a caller that bypasses the waypoint: by design
        if any(not _known(ctx, kind, value, trust_domain, callers) for kind, value in t.values):
            return [], admits  # names someone the input does not show: cannot tell
    return [f"waypoint {ns}/{sa} (service account {sa})" for ns, sa in refused], admits


def _callers(ctx: Context, ingress_opted_in: bool, trust_domain: str) -> Callers:
    """(namespace, service account, passes the waypoint) of every caller the input shows,
    the proxies Istio generates from Gateway objects included; each once (replicas and
    workloads sharing an account are one caller here), built once per context."""
    built = ctx.once(WAYPOINT_CALLERS, dict)
    found = built.get(ingress_opted_in)
    if found is None:
        out = list(dict.fromkeys((w.namespace, account, passes_waypoint(w, ingress_opted_in))
                                 for entries in callers_by_namespace(ctx).values() for w, account in entries))
        known = {(ns, sa) for ns, sa, _ in out}
        for ns, made in generated_callers(ctx).items():
            out += [(ns, account, ingress_opted_in) for role, _, account in made
                    if role == "ingress gateway" and (ns, account) not in known]
        found = built[ingress_opted_in] = Callers(out, trust_domain)
    return found


def _known(ctx: Context, kind: str, value: str, trust_domain: str, callers: Callers) -> bool:
    """Whether a named identity is a caller the input shows, or (for a namespace with no
    such caller) one a new pod of an ambient namespace would be."""
    if "*" not in value:
        if callers.named(kind, value):
            return True
    elif any(identity_matcher(kind, value, trust_domain)(ns, sa) for ns, sa, _ in callers.all):
        return True
    namespace = identity_namespace(kind, value)
    return namespace is not None and m.namespace_in_ambient(ctx.ns_labels(namespace))
