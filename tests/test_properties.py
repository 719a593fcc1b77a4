"""Property-based tests: arbitrary and malformed Kubernetes-shaped objects through the
loaders, the facts layer and the engine. Whatever the input, every object is loaded or
accounted for by an error or warning at its file; a refused input says where; the engine
turns what loaded into findings or per-object errors. Deep nesting included."""

from __future__ import annotations

import orjson
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.collect.files import LoadResult, _load_bytes
from auditor.core.errors import UsageError
from auditor.reporters import NAMES, renderer
from auditor.rulebook import load_rules
from auditor.model.snapshot import K8sObject, Snapshot
from conftest import audit

RULES = load_rules()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                    st.sampled_from(["ambient", "none", "enabled", "true", "false", "ALLOW", "DENY", "CUSTOM", "*", "mesh",
                                     "istio-waypoint", "15008", "HBONE", "All", "Selector", "Service", "Gateway"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)
label_keys = st.sampled_from([
    "istio.io/dataplane-mode", "istio-injection", "istio.io/rev", "istio.io/use-waypoint", "istio.io/use-waypoint-namespace",
    "istio.io/waypoint-for", "sidecar.istio.io/inject", "app", "istio.io/ingress-use-waypoint", "mesh-audit.io/ignore",
    "ambient.istio.io/redirection", "sidecar.istio.io/status", "gateway.istio.io/managed",
])
label_maps = st.one_of(st.dictionaries(label_keys, st.one_of(st.text(max_size=10), scalars), max_size=5), json_values)
kinds = st.sampled_from([
    ("v1", "Namespace"), ("v1", "Pod"), ("v1", "Service"), ("v1", "ConfigMap"), ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"), ("apps/v1", "DaemonSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("security.istio.io/v1", "AuthorizationPolicy"),
    ("security.istio.io/v1", "PeerAuthentication"), ("security.istio.io/v1beta1", "RequestAuthentication"),
    ("networking.istio.io/v1", "VirtualService"), ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "ServiceEntry"), ("networking.istio.io/v1", "Sidecar"), ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("networking.istio.io/v1", "WorkloadEntry"), ("telemetry.istio.io/v1", "Telemetry"), ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "GatewayClass"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"), ("gateway.networking.k8s.io/v1alpha2", "TCPRoute"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"), ("example.com/v9", "Unknown"),
])
spec_keys = st.sampled_from([
    "selector", "targetRefs", "targetRef", "rules", "action", "template", "jobTemplate", "containers", "hosts", "http", "tcp",
    "gateways", "podSelector", "ingress", "policyTypes", "parentRefs", "gatewayClassName", "listeners", "mtls",
    "portLevelMtls", "workloadSelector", "egress", "outboundTrafficPolicy", "resolution", "ports", "host", "trafficPolicy",
    "hostNetwork", "initContainers", "configPatches",
])


@st.composite
def k8s_objects(draw):
    api_version, kind = draw(kinds)
    metadata = draw(st.one_of(
        st.fixed_dictionaries({
            "name": st.one_of(st.sampled_from(["a", "b", "istio", "waypoint"]), scalars),
            "namespace": st.one_of(st.sampled_from(["shop", "istio-system", "kube-system"]), scalars),
        }, optional={"labels": label_maps, "annotations": label_maps, "uid": st.text(max_size=4),
                     "ownerReferences": json_values}),
        json_values,
    ))
    obj = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    spec = draw(st.one_of(st.dictionaries(spec_keys, json_values, max_size=5), json_values))
    obj["spec"] = spec
    if draw(st.booleans()):
        obj["status"] = draw(json_values)
    if kind == "ConfigMap":
        obj["data"] = draw(st.one_of(st.dictionaries(st.sampled_from(["mesh", "config", "values", "EXCLUDED_NAMESPACES"]),
                                                     st.text(max_size=30), max_size=3), json_values))
    return obj


@SETTINGS
@given(st.lists(k8s_objects(), max_size=12))
def test_engine_never_raises_on_malformed_objects(objects):
    snapshot = Snapshot(K8sObject(o) for o in objects if isinstance(o.get("metadata"), dict) or o.get("metadata") is None)
    report = audit(snapshot, RULES)
    for error in report.errors:
        assert error["kind"] in ("rule", "object") and error["message"]
    for finding in report.findings:
        assert finding.severity in ("error", "warning", "info") and isinstance(finding.message, str)
    for name, render in ((n, renderer(n)) for n in NAMES):  # and every output format renders what came out
        text = render(report)
        # In-cluster reports exist only for namespaces with findings: none, no objects.
        assert text or (name in ("policyreport", "openreports") and not [f for f in report.findings if not f.suppressed])


def _accounted(objects: list, result: LoadResult, name: str) -> None:
    """Every input object is loaded, or named in an error or a warning at the file (and,
    where the loader knows it, the line): none silently disappears."""
    problems = result.errors + result.warnings
    assert len(result.objects) + len(problems) == len(objects)
    for problem in problems:
        assert str(problem).startswith(name)
    loaded = [(o.api_version, o.kind) for o in result.objects]
    expected = [(o["apiVersion"], o["kind"]) for o in objects]
    assert all(item in expected for item in loaded)


@SETTINGS
@given(st.lists(k8s_objects(), max_size=6))
def test_loaders_load_or_locate_every_object(objects):
    for data, as_json in ((orjson.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), True),
                          (yaml.safe_dump_all(objects).encode(), False)):
        result = LoadResult()
        try:
            _load_bytes(data, "x", result, as_json=as_json)
        except UsageError as err:  # the whole file refused: said where
            assert str(err).startswith("x:") or str(err).startswith("x: ")
            continue
        _accounted(objects, result, "x")
        audit(result.snapshot(), RULES)  # and whatever loaded, the engine takes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 10, 200, 900, 1001, 1100, 3000, 12000]), st.sampled_from(["json", "yaml-block", "yaml-flow"]),
       st.booleans())
def test_deep_nesting_is_loaded_or_refused_at_a_line(depth, form, mappings):
    """Past what the parsers allow (1,000 levels for YAML, 1,024 for JSON), a located error;
    below it, the object, which the engine then evaluates like any other."""
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep, namespace: shop}\n"
    if form == "json":
        opening, closing = ('{"k":', "}") if mappings else ("[", "]")
        data = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":{"v":'
                + opening * depth + "1" + closing * depth + "}}")
    elif form == "yaml-block":
        data = head + "data:\n  v:\n  " + "- " * depth + "x\n"
    else:
        opening, closing = ("{k: ", "}") if mappings else ("[", "]")
        data = head + "data: {v: " + opening * depth + "1" + closing * depth + "}\n"
    result = LoadResult()
    try:
        _load_bytes(data.encode(), "deep", result, as_json=form == "json")
    except UsageError as err:
        assert depth >= 200 and str(err).startswith("deep:"), str(err)  # refused, at a line
        assert "nest" in str(err) or "depth" in str(err), str(err)
        return
    assert depth <= 1024 and len(result.objects) == 1
    audit(result.snapshot(), RULES)


@SETTINGS
@given(st.binary(max_size=300))
def test_loaders_turn_garbage_into_usage_errors(data):
    for as_json in (True, False):
        result = LoadResult()
        try:
            _load_bytes(data, "garbage", result, as_json=as_json)
        except UsageError as err:
            assert str(err).startswith("garbage")
            continue
        for problem in result.errors + result.warnings:  # or what it read, and what it skipped, said where
            assert str(problem).startswith("garbage")


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-&*!|>'\"#\n  abc01")), max_size=120))
def test_yaml_fragments_load_or_fail_at_the_file(text):
    result = LoadResult()
    try:
        _load_bytes(text.encode(), "frag.yaml", result, as_json=False)
    except UsageError as err:
        assert str(err).startswith("frag.yaml")
        return
    for problem in result.errors + result.warnings:
        assert str(problem).startswith("frag.yaml")


# Waypoint admission looks up the callers a rule names instead of testing every caller.
_NAMESPACES = ["shop", "pay", "ops"]
_ACCOUNTS = ["default", "web", "api"]
_identity_values = st.one_of(
    st.sampled_from(_NAMESPACES + _ACCOUNTS + ["*", "sh*", "*p", "pay/web", "ops/*"]),
    st.builds(lambda td, ns, sa: f"{td}/ns/{ns}/sa/{sa}", st.sampled_from(["cluster.local", "corp", "*"]),
              st.sampled_from(_NAMESPACES + ["*"]), st.sampled_from(_ACCOUNTS + ["*"])))
_source_keys = ["principals", "notPrincipals", "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts"]
_sources = st.dictionaries(st.sampled_from(_source_keys + ["ipBlocks"]), st.lists(_identity_values, max_size=3), max_size=3)
_conditions = st.fixed_dictionaries({"key": st.sampled_from(["source.principal", "source.namespace", "source.ip"])},
                                    optional={"values": st.lists(_identity_values, max_size=2),
                                              "notValues": st.lists(_identity_values, max_size=2)})
_rules = st.fixed_dictionaries({}, optional={"from": st.lists(st.builds(lambda s: {"source": s}, _sources), max_size=3),
                                             "when": st.lists(_conditions, max_size=2)})
_callers = st.lists(st.tuples(st.sampled_from(_NAMESPACES), st.sampled_from(_ACCOUNTS), st.booleans()), max_size=12)


_CALLER = [("pay", "web", False)]


@settings(max_examples=400, deadline=None)
@given(_rules, _callers)
@example({"from": [{"source": {"serviceAccounts": ["web"]}}]}, _CALLER)  # each way to name a caller
@example({"from": [{"source": {"serviceAccounts": ["pay/web"]}}]}, _CALLER)
@example({"from": [{"source": {"principals": ["cluster.local/ns/pay/sa/web"]}}]}, _CALLER)
@example({"from": [{"source": {"namespaces": ["pay"], "notPrincipals": ["x"]}}]}, _CALLER)
@example({"when": [{"key": "source.namespace", "values": ["pay"]}]}, _CALLER)
@example({"when": [{"key": "source.principal", "values": ["cluster.local/ns/pay/sa/web"]}]}, _CALLER)
@example({"from": [{"source": {"namespaces": ["shop"]}}, {"source": {"principals": ["*"]}}]}, _CALLER)
def test_a_rules_candidates_hold_every_caller_it_admits(rule, callers):
    """What RuleTest.candidates looks up (by the identities a rule names without a
    wildcard) holds every caller the rule admits, whatever the rule's shape."""
    from auditor.facts.admission import Callers, RuleTest

    test = RuleTest(rule, "cluster.local")
    pool = Callers(list(dict.fromkeys(callers)), "cluster.local")
    admitted = {c for c in pool.all if test.admits(c[0], c[1])}
    assert admitted <= set(test.candidates(pool))
