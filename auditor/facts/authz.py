"""Which parts of an AuthorizationPolicy ztunnel can evaluate (L4) and which it cannot (L7).

ztunnel sees connections, not requests: it knows peer identity, namespaces, IPs and ports.
Everything else is an L7 attribute; ztunnel drops rules that use one (for ALLOW) or
strips them from the rule (for DENY, so a rule of L7 attributes alone matches nothing).
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
    l7_only = mixed = 0
    identity = False
    for rule in rules:
        l7, l4 = rule_attributes(rule)
        for attr in l7:
            if attr not in l7_attributes:
                l7_attributes.append(attr)
        if l7 and l4:
            mixed += 1
        elif l7:
            l7_only += 1
        identity = identity or any(a.removeprefix("from.source.") in IDENTITY_SOURCE or a.removeprefix("when.") in IDENTITY_WHEN_KEYS for a in l4)
    return {
        "action": action,
        "rules": len(rules),
        "l7_attributes": l7_attributes,
        "l7_pointers": l7_pointers(spec),
        "l7_only_rules": l7_only,
        "mixed_rules": mixed,
        "matches_source_identity": identity,
    }
