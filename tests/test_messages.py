"""Every rule's message, rendered on its fail fixtures, says what is true of the object:
counts agree with their nouns, and every field it names is one the object has.

Found wrong before this test: an mTLS-only DestinationRule told it set load balancing and
connection pools; "1 sidecar workloads"; a garbled "although injection is enabled for all
namespaces by default would inject it now"; a bare Pod told about "its pod template"."""

from __future__ import annotations

import re

import pytest

from auditor import api
from auditor.rulebook import load_rules
from auditor.ruletest import fixture_files, fixture_settings, load_fixture
from conftest import FIXTURES

RULES = load_rules()
FAIL_FIXTURES = [p for p in fixture_files(FIXTURES / "rules") if p.name.startswith("fail.")]
# A count of one with a plural noun ("1 sidecar workloads", "1 Services have").
ONE_AND_PLURAL = re.compile(r"(?<![\w.])1 (?:[a-z-]+ ){0,2}?(?:[a-z]+s|[A-Z][a-z]+s)\b(?! (?:is|was|has)\b)")
FIELD_PATH = re.compile(r"\b((?:spec|metadata|to|from|when|trafficPolicy|data)(?:\.[A-Za-z][\w-]*)+)\b")
SETTINGS = {"load balancing": "loadBalancer", "connection pool": "connectionPool", "outlier detection": "outlierDetection",
            "TLS settings": "tls"}


def keys_anywhere(value, out=None) -> set:
    out = set() if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(k)
            keys_anywhere(v, out)
    elif isinstance(value, list):
        for v in value:
            keys_anywhere(v, out)
    return out


def names_field(obj: dict, dotted: str) -> bool:
    """A dotted path of the object, or (`when.<key>`) the key of one of its conditions."""
    if dotted.startswith("when."):
        conditions = [c for r in obj.get("spec", {}).get("rules", []) if isinstance(r, dict) for c in r.get("when", [])]
        return any(str(c.get("key", "")).startswith(dotted[5:]) for c in conditions if isinstance(c, dict))
    return has_path(obj, dotted.split("."))


def has_path(value, segments: list[str]) -> bool:
    """Whether the object has the dotted path somewhere, lists crossed on the way
    (`to.operation.methods` under spec.rules[*])."""
    if not segments:
        return True
    if isinstance(value, list):
        return any(has_path(v, segments) for v in value)
    if isinstance(value, dict):
        if segments[0] in value and has_path(value[segments[0]], segments[1:]):
            return True
        return any(has_path(v, segments) for v in value.values())
    return False


def findings(path):
    snapshot = load_fixture(path)  # Clusters, for a fixture of several
    report = api.audit(snapshot, fixture_settings(path, RULES))
    rule = path.parent.name
    for f in report.findings:
        if f.rule == rule:
            held = snapshot.members[f.object.cluster] if f.object.cluster else snapshot
            obj = next((o for o in held if (o.kind, o.namespace, o.name) == (f.object.kind, f.object.namespace,
                                                                               f.object.name)), None)
            yield f, obj


@pytest.mark.parametrize("path", FAIL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_messages_say_what_is_true_of_the_object(path):
    seen = 0
    for finding, obj in findings(path):
        seen += 1
        message = finding.message
        assert "(s)" not in message, message
        assert not ONE_AND_PLURAL.search(message), f"count and noun disagree: {message}"
        if obj is None:  # the synthetic Cluster subject, or an owner not in the input
            continue
        for dotted in FIELD_PATH.findall(message):
            assert names_field(obj.raw, dotted), f"{finding.object} has no {dotted}: {message}"
        if obj.kind == "Pod":
            assert "pod template" not in message, f"a Pod has no pod template: {message}"
        keys = keys_anywhere(obj.raw)
        for words, key in SETTINGS.items():
            if words in message:
                assert key in keys, f"{finding.object} sets no {key}, yet the message names {words}: {message}"
    assert seen, f"{path.name} produced no finding of its rule"


def test_the_checks_catch_what_they_are_for():
    assert ONE_AND_PLURAL.search("targets Service a/b (1 sidecar workloads)")
    assert ONE_AND_PLURAL.search("1 Services have sidecar workloads")
    assert not ONE_AND_PLURAL.search("1 sidecar workload in the mesh calls services directly")
    assert not ONE_AND_PLURAL.search("3 ambient workloads; Istio 1.23.4 is")
    assert not ONE_AND_PLURAL.search("up to Istio 1.25.1 ztunnel ignores the annotation")
    obj = {"spec": {"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}}
    assert has_path(obj, ["to", "operation", "methods"]) and not has_path(obj, ["to", "operation", "paths"])


def test_an_mtls_only_destination_rule_is_told_only_about_tls():
    from auditor.facts.subjects.destination_rule import settings_of

    assert settings_of({"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}) == ["TLS"]
    assert settings_of({"trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}},
                        "subsets": [{"name": "v1", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 5}}}}]}) == [
        "load balancing", "connection pool"]
    assert settings_of({"trafficPolicy": {"portLevelSettings": [{"port": {"number": 80}, "outlierDetection": {}}]}}) == []
    assert settings_of({"trafficPolicy": {"portLevelSettings": [{"port": {"number": 80},
                                                                   "outlierDetection": {"consecutive5xxErrors": 3}}]}}) == [
        "outlier detection"]
