"""Whose identity a ztunnel-enforced AuthorizationPolicy really sees.

Traffic that reaches a workload through a waypoint arrives from the waypoint: the
destination's ztunnel authenticates the waypoint's service account, not the client's. A
selector (ztunnel-enforced) policy that allows or denies by client identity is then wrong
only for the clients whose traffic does pass the waypoint (evidence C.3, rule 7):
ambient clients always; sidecar clients never (they go straight to the endpoints); Istio
ingress gateways only when the Service (or, 1.25+, its namespace) opts in with
`istio.io/ingress-use-waypoint` on 1.24+. And a rule that already admits the waypoint's
own identity (its namespace, say) admits that traffic.
"""

from __future__ import annotations

import fnmatch

import auditor.facts.mode as m
from auditor.facts.attachment import attachment_of
from auditor.facts.context import EXAMPLES, Context
from auditor.facts.ingress import ingress_use_waypoint
from auditor.snapshot import K8sObject, as_dict, as_list

DEFAULT_TRUST_DOMAIN = "cluster.local"


def hidden_identities(ctx: Context, policy: K8sObject) -> list[str]:
    """The source identities the policy names whose traffic to the workloads it selects
    comes through a waypoint, described with the clients that send it."""
    destinations = ctx.ambient_ids(attachment_of(ctx, policy).workloads)
    services = {svc.key: svc for i in destinations for svc in ctx.services_of(i) if ctx.binding(svc).waypoint}
    if not services:
        return []
    waypoints = {ctx.binding(svc).waypoint for svc in services.values()}  # (namespace, name): its service account
    ingress_opted_in = any(ingress_use_waypoint(ctx, svc) for svc in services.values())
    trust_domain = str(ctx.settings.mesh_config.get("trustDomain") or DEFAULT_TRUST_DOMAIN)
    found = []
    for kind, value in named_identities(policy.spec):
        match = _matcher(kind, value, trust_domain)
        if any(match(ns, sa) for ns, sa in waypoints):
            continue  # the rule admits (or denies) the waypoint itself
        clients = _clients_through_waypoint(ctx, match, ingress_opted_in, identity_namespace(kind, value))
        if clients:
            found.append(f"{kind} {value} ({', '.join(clients[:EXAMPLES])})")
    return sorted(set(found))


def named_identities(spec: dict) -> list[tuple[str, str]]:
    """(principal | namespace | serviceAccount, value) the rules name as sources."""
    out = []
    for rule in as_list(spec.get("rules")):
        for entry in as_list(as_dict(rule).get("from")):
            source = as_dict(as_dict(entry).get("source"))
            for key, kind in (("principals", "principal"), ("namespaces", "namespace"), ("serviceAccounts", "serviceAccount")):
                out += [(kind, str(v)) for v in as_list(source.get(key))]
        for condition in as_list(as_dict(rule).get("when")):
            key = as_dict(condition).get("key")
            kind = {"source.principal": "principal", "source.namespace": "namespace"}.get(key)
            if kind:
                out += [(kind, str(v)) for v in as_list(as_dict(condition).get("values"))]
    return list(dict.fromkeys(out))


def _matcher(kind: str, value: str, trust_domain: str):
    """A test of (namespace, service account) against one named identity; Istio's `*`
    prefix, suffix or whole-value wildcards."""
    def matches(text: str) -> bool:
        return fnmatch.fnmatchcase(text, value) if "*" in value else text == value

    if kind == "principal":
        return lambda ns, sa: matches(f"{trust_domain}/ns/{ns}/sa/{sa}")
    if kind == "namespace":
        return lambda ns, sa: matches(ns)
    return lambda ns, sa: matches(f"{ns}/{sa}") or matches(sa)


def identity_namespace(kind: str, value: str) -> str | None:
    """The one namespace an identity names, when it names one without wildcards."""
    if "*" in value:
        return None
    if kind == "namespace":
        return value
    if kind == "principal" and "/ns/" in value:
        return value.split("/ns/", 1)[1].split("/", 1)[0]
    return value.split("/", 1)[0] if kind == "serviceAccount" and "/" in value else None


def _clients_through_waypoint(ctx: Context, match, ingress_opted_in: bool, namespace: str | None) -> list[str]:
    """Known workloads with this identity whose traffic passes the waypoint; for an identity
    in a namespace with no such workload here, what a new pod there would be."""
    found, seen_namespaces = [], set()
    by_namespace = ctx.once("callers_by_namespace", lambda: _callers_by_namespace(ctx))
    candidates = by_namespace.get(namespace, ()) if namespace is not None else (
        entry for entries in by_namespace.values() for entry in entries)
    for w, account in candidates:
        if not match(w.namespace, account):
            continue
        seen_namespaces.add(w.namespace)
        through = (w.role == "app" and w.mode == "ambient") or (w.role == "gateway" and ingress_opted_in)
        if through:
            kind = "ingress gateway" if w.role == "gateway" else "ambient client"
            found.append(f"{kind} {_subject(w)}")
    if namespace is not None and namespace not in seen_namespaces and m.namespace_in_ambient(ctx.ns_labels(namespace)):
        found.append(f"workloads of ambient namespace {namespace}")
    return sorted(set(found))


def warm_callers(ctx: Context) -> None:
    """Build the callers index now, for what-if copies to share (see Context.warm)."""
    ctx.once("callers_by_namespace", lambda: _callers_by_namespace(ctx))


def _callers_by_namespace(ctx: Context) -> dict[str, list[tuple]]:
    """Workloads that can be callers (applications and gateways) with their service
    account, by namespace: an identity that names its namespace looks only there."""
    out: dict[str, list[tuple]] = {}
    for w in ctx.workloads:
        if w.role in ("app", "gateway"):
            out.setdefault(w.namespace, []).append((w, _service_account(w)))
    return out


def _service_account(w) -> str:
    return str(w.pod_spec.get("serviceAccountName") or w.pod_spec.get("serviceAccount") or "default")


def _subject(w) -> str:
    return f"{w.owner.kind} {w.owner.namespace}/{w.owner.name}" if w.owner else w.obj.ref()

