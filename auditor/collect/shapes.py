"""The types the API server's schemas give the fields mesh-audit reads.

An AuthorizationPolicy whose `rules` is a mapping, whose `action` is a list or whose `spec`
is a list is refused by the API server (each Istio and Gateway API CRD carries an OpenAPI
schema; kubectl reports `spec.rules: Invalid value: "object": ... must be of type array`).
Read as absent, such a field would silently drop a finding (an L7 rule ztunnel cannot
enforce), so it is an input error at the object's line instead. Only the fields facts
read are described, as Istio's and the Gateway API's CRDs type them; a field not listed
here is not checked, and an unknown field is not an error (the API server prunes it).
"""

from __future__ import annotations

from auditor.core import kinds as k

# Shapes: a type name, ("array", item shape), ("map", value shape), or a dict of field ->
# shape for an object (OBJECT: an object whose fields are not checked).
STR, INT, BOOL = "string", "integer", "boolean"
INT_OR_STR = "integer-or-string"
OBJECT: dict = {}


def array(item) -> tuple:
    return ("array", item)


def mapping(value) -> tuple:
    return ("map", value)


STRINGS = array(STR)
LABELS = mapping(STR)
SELECTOR = {"matchLabels": LABELS, "matchExpressions": array({"key": STR, "operator": STR, "values": STRINGS})}
POLICY_REF = {"group": STR, "kind": STR, "name": STR, "namespace": STR}
PARENT_REF = {"group": STR, "kind": STR, "name": STR, "namespace": STR, "sectionName": STR, "port": INT}
BACKEND_REF = {"group": STR, "kind": STR, "name": STR, "namespace": STR, "port": INT, "weight": INT}
SOURCE = {key: STRINGS for key in ("principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals",
                                    "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks",
                                    "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts")}
OPERATION = {key: STRINGS for key in ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths",
                                       "notPaths")}
WORKLOAD_SELECTOR = {"labels": LABELS}
DESTINATION = {"host": STR, "subset": STR, "port": {"number": INT}}
ROUTES = array({"route": array({"destination": DESTINATION, "weight": INT}), "match": array(OBJECT)})
ROUTE_RULES = array({"backendRefs": array(BACKEND_REF), "matches": array(OBJECT)})
TARGETS = {"targetRef": POLICY_REF, "targetRefs": array(POLICY_REF)}
CONTAINERS = array({"name": STR, "image": STR, "restartPolicy": STR,
                    "ports": array({"containerPort": INT, "name": STR, "protocol": STR})})
POD_SPEC = {"containers": CONTAINERS, "initContainers": CONTAINERS, "hostNetwork": BOOL, "serviceAccountName": STR}
TEMPLATE = {"metadata": {"labels": LABELS, "annotations": LABELS}, "spec": POD_SPEC}
CONTROLLER = {"selector": SELECTOR, "replicas": INT, "template": TEMPLATE}

SPECS: dict[str, dict] = {
    k.AUTHORIZATION_POLICY: {
        "selector": SELECTOR, **TARGETS, "action": STR, "provider": {"name": STR},
        "rules": array({"from": array({"source": SOURCE}), "to": array({"operation": OPERATION}),
                        "when": array({"key": STR, "values": STRINGS, "notValues": STRINGS})}),
    },
    k.PEER_AUTHENTICATION: {"selector": SELECTOR, "mtls": {"mode": STR}, "portLevelMtls": mapping({"mode": STR})},
    k.REQUEST_AUTHENTICATION: {"selector": SELECTOR, **TARGETS, "jwtRules": array(OBJECT)},
    k.VIRTUAL_SERVICE: {"hosts": STRINGS, "gateways": STRINGS, "exportTo": STRINGS, "http": ROUTES,
                        "tcp": ROUTES, "tls": ROUTES},
    k.DESTINATION_RULE: {"host": STR, "exportTo": STRINGS, "workloadSelector": SELECTOR, "trafficPolicy": OBJECT,
                         "subsets": array({"name": STR, "labels": LABELS, "trafficPolicy": OBJECT})},
    k.SERVICE_ENTRY: {"hosts": STRINGS, "addresses": STRINGS, "exportTo": STRINGS, "location": STR, "resolution": STR,
                      "ports": array({"number": INT, "protocol": STR, "name": STR, "targetPort": INT}),
                      "endpoints": array(OBJECT), "workloadSelector": WORKLOAD_SELECTOR},
    k.SIDECAR: {"workloadSelector": WORKLOAD_SELECTOR, "egress": array({"hosts": STRINGS}), "ingress": array(OBJECT),
                "outboundTrafficPolicy": {"mode": STR}},
    k.ISTIO_GATEWAY: {"selector": LABELS, "servers": array({"hosts": STRINGS, "port": OBJECT})},
    k.ENVOY_FILTER: {"workloadSelector": WORKLOAD_SELECTOR, **TARGETS, "configPatches": array(OBJECT)},
    k.TELEMETRY: {"selector": SELECTOR, **TARGETS},
    k.WASM_PLUGIN: {"selector": SELECTOR, **TARGETS, "url": STR},
    k.GATEWAY: {"gatewayClassName": STR, "addresses": array(OBJECT),
                "listeners": array({"name": STR, "port": INT, "protocol": STR, "hostname": STR, "allowedRoutes": OBJECT})},
    **{gk: {"parentRefs": array(PARENT_REF), "hostnames": STRINGS, "rules": ROUTE_RULES} for gk in k.ROUTE_GKS},
    k.POD: POD_SPEC,
    **{gk: CONTROLLER for gk in (k.DEPLOYMENT, k.STATEFUL_SET, k.DAEMON_SET, k.REPLICA_SET, k.JOB)},
    k.CRON_JOB: {"jobTemplate": {"spec": {"template": TEMPLATE}}},
    k.SERVICE: {"selector": LABELS, "clusterIP": STR, "type": STR,
                "ports": array({"name": STR, "port": INT, "targetPort": INT_OR_STR, "protocol": STR, "appProtocol": STR})},
}


def spec_problem(gk: str, doc: dict) -> str | None:
    """Why the API server would refuse this object's spec, for the fields mesh-audit
    reads (`spec.rules[0].to is a mapping, not a list`); None when it would take it."""
    fields = SPECS.get(gk)
    if fields is None or "spec" not in doc:
        return None
    return _problem(doc["spec"], fields, "spec")


def _problem(value, shape, where: str) -> str | None:
    if value is None:  # null: the field is unset, as the API server reads it
        return None
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where} is {describe(value)}, not a mapping"
        for key, inner in shape.items():
            if key in value:
                found = _problem(value[key], inner, f"{where}.{key}")
                if found:
                    return found
        return None
    if isinstance(shape, tuple):
        kind, inner = shape
        if kind == "array":
            if not isinstance(value, list):
                return f"{where} is {describe(value)}, not a list"
            for i, item in enumerate(value):
                found = _problem(item, inner, f"{where}[{i}]")
                if found:
                    return found
            return None
        if not isinstance(value, dict):
            return f"{where} is {describe(value)}, not a mapping"
        for key, item in value.items():
            found = _problem(item, inner, f"{where}.{key}")
            if found:
                return found
        return None
    return None if _is(value, shape) else f"{where} is {describe(value)}, not {_NAMES[shape]}"


def _is(value, type_name: str) -> bool:
    if type_name == STR:
        return isinstance(value, str)
    if type_name == BOOL:
        return isinstance(value, bool)
    if type_name == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == INT_OR_STR:
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    return True


_NAMES = {STR: "a string", INT: "an integer", BOOL: "a boolean", INT_OR_STR: "a number or a string"}


def describe(value) -> str:
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "empty (null)"
    return type(value).__name__
