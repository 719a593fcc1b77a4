"""Which parts of an AuthorizationPolicy ztunnel can evaluate (L4) and which it cannot (L7).

ztunnel sees connections, not requests: it knows peer identity, namespaces, IPs and ports.
Everything else is an L7 attribute. istiod drops an ALLOW rule that uses one; in a DENY
rule it strips the L7 fields and keeps the rest (`handleRule` in
`pilot/pkg/serviceregistry/kube/controller/ambient/authorization.go`). Each of the rule's
parts (its `from` list, its `to` list, each `when` condition) becomes a clause, and ztunnel
skips a match left empty (`rbac.rs`: an empty match is "empty clause", and its test
`rbac_empty_policy` holds that it never matches). So a DENY rule with a part left with no
L4 field never matches; one whose parts all keep an L4 field matches on those alone.
"""

from __future__ import annotations

L7_OPERATION = ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")
L4_OPERATION = ("ports", "notPorts")
L7_SOURCE = ("requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks")
L4_SOURCE = (
    "principals", "notPrincipals", "namespaces", "notNamespaces",
    "ipBlocks", "notIpBlocks", "serviceAccounts", "notServiceAccounts",
)
L4_WHEN_KEYS = frozenset({"source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"})
IDENTITY_SOURCE = ("principals", "notPrincipals", "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts")
IDENTITY_WHEN_KEYS = frozenset({"source.principal", "source.namespace"})


def _present(mapping: dict, key: str) -> bool:
    value = mapping.get(key)
    return value is not None and value != [] and value != ""


def _dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def rule_attributes(rule: dict) -> tuple[list[str], list[str]]:
    """(L7 attribute paths, L4 attribute paths) used by one AuthorizationPolicy rule."""
    l7: list[str] = []
    l4: list[str] = []
    for entry in _dicts(rule.get("from")):
        source = entry.get("source") if isinstance(entry.get("source"), dict) else {}
        l7 += [f"from.source.{k}" for k in L7_SOURCE if _present(source, k)]
        l4 += [f"from.source.{k}" for k in L4_SOURCE if _present(source, k)]
    for entry in _dicts(rule.get("to")):
        operation = entry.get("operation") if isinstance(entry.get("operation"), dict) else {}
        l7 += [f"to.operation.{k}" for k in L7_OPERATION if _present(operation, k)]
        l4 += [f"to.operation.{k}" for k in L4_OPERATION if _present(operation, k)]
    for cond in _dicts(rule.get("when")):
        key = str(cond.get("key", ""))
        (l4 if key in L4_WHEN_KEYS else l7).append(f"when.{key}")
    return l7, l4


def _keeps_l4(entries: list[dict], inner: str, l4_keys: tuple[str, ...]) -> bool:
    """Whether a `from` or `to` clause keeps a non-empty match once its L7 fields are gone."""
    return any(isinstance(e.get(inner), dict) and any(_present(e[inner], k) for k in l4_keys) for e in entries)


def ztunnel_deny_reading(rule: dict) -> str | None:
    """How ztunnel enforces one DENY rule that uses L7 attributes: "ignored" (some part is
    left with no L4 field, so the rule never matches) or "widened" (it matches on its L4
    fields alone); None for a rule with no L7 attribute."""
    l7, _ = rule_attributes(rule)
    if not l7:
        return None
    parts = []
    if _dicts(rule.get("from")):
        parts.append(_keeps_l4(_dicts(rule.get("from")), "source", L4_SOURCE))
    if _dicts(rule.get("to")):
        parts.append(_keeps_l4(_dicts(rule.get("to")), "operation", L4_OPERATION))
    for cond in _dicts(rule.get("when")):
        parts.append(str(cond.get("key", "")) in L4_WHEN_KEYS
                     and (_present(cond, "values") or _present(cond, "notValues")))
    return "widened" if all(parts) else "ignored"


def l7_pointers(spec: dict) -> list[str]:
    """JSON Pointers of every L7 field of the policy, in order: where a finding about them
    belongs (`/spec/rules/0/to/1/operation/methods`)."""
    out = []
    rules = spec.get("rules") if isinstance(spec.get("rules"), list) else []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        for section, inner, keys in (("from", "source", L7_SOURCE), ("to", "operation", L7_OPERATION)):
            entries = rule.get(section) if isinstance(rule.get(section), list) else []
            for j, entry in enumerate(entries):
                fields = entry.get(inner) if isinstance(entry, dict) else None
                if isinstance(fields, dict):
                    out += [f"/spec/rules/{i}/{section}/{j}/{inner}/{k}" for k in keys if _present(fields, k)]
        conditions = rule.get("when") if isinstance(rule.get("when"), list) else []
        out += [f"/spec/rules/{i}/when/{j}" for j, c in enumerate(conditions)
                if isinstance(c, dict) and str(c.get("key", "")) not in L4_WHEN_KEYS]
    return out


def authorization_facts(spec: dict) -> dict:
    """Action and L7 usage of an AuthorizationPolicy spec."""
    action = str(spec.get("action") or "ALLOW")
    rules = _dicts(spec.get("rules"))
    l7_attributes: list[str] = []
    readings = [ztunnel_deny_reading(rule) for rule in rules]
    identity = False
    for rule in rules:
        l7, l4 = rule_attributes(rule)
        for attr in l7:
            if attr not in l7_attributes:
                l7_attributes.append(attr)
        identity = identity or any(a.removeprefix("from.source.") in IDENTITY_SOURCE or a.removeprefix("when.") in IDENTITY_WHEN_KEYS for a in l4)
    return {
        "action": action,
        "rules": len(rules),
        "l7_attributes": l7_attributes,
        "l7_pointers": l7_pointers(spec),
        # As a DENY at ztunnel: rules that never match, and rules that match on L4 alone.
        "deny_rules_ignored": readings.count("ignored"),
        "deny_rules_widened": readings.count("widened"),
        "matches_source_identity": identity,
    }


def waypoint_only(spec: dict) -> bool:
    """An AuthorizationPolicy ztunnel cannot apply once a waypoint fronts its workloads:
    L7 attributes, CUSTOM or AUDIT, or rules on the caller's identity (which ztunnel then
    no longer sees: the caller it sees is the waypoint)."""
    facts = authorization_facts(spec)
    return bool(facts["l7_attributes"]) or facts["action"] in ("CUSTOM", "AUDIT") or facts["matches_source_identity"]


def ztunnel_keeps(rule: dict) -> bool:
    """A rule ztunnel can still apply behind a waypoint: no L7 attribute, no caller identity."""
    l7, l4 = rule_attributes(rule)
    return not l7 and not any(a.removeprefix("from.source.") in IDENTITY_SOURCE
                              or a.removeprefix("when.") in IDENTITY_WHEN_KEYS for a in l4)
