"""`mesh-audit explain`: the reasoning behind findings for one object."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from conftest import FIXTURES

DEMO = str(FIXTURES / "demo")


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_workload_shows_mode_waypoint_services_and_policies():
    result = run("explain", "deployment/storefront/frontend", "-f", DEMO)
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("Deployment storefront/frontend  (declared, from ")
    assert "  mode: ambient (predicted ambient; no running pod observed)" in text
    assert "  ambient enrollment: yes: namespace label istio.io/dataplane-mode=ambient" in text
    assert "  Service storefront/frontend: waypoint storefront/storefront-waypoint (bound through the label on namespace storefront)" in text
    assert "  AuthorizationPolicy storefront/frontend-ext-authz CUSTOM: by selector, enforced by ztunnel" in text
    assert "Facts (what rules see as `facts`)\n  ambient_blocked_by: null\n" in text


def test_sidecar_workload_policy_enforcer_and_namespace_conflict():
    doc = json.loads(run("explain", "Deployment/checkout/cart", "-f", DEMO, "-o", "json").stdout)
    assert doc["data_plane"]["mode"] == "sidecar"
    assert doc["data_plane"]["sidecar_injection"].startswith("yes: namespace label istio-injection=enabled")
    assert doc["data_plane"]["ambient_blocked_by"] == "sidecar"
    assert [f["rule"] for f in doc["findings"]] == ["mode-sidecar-in-ambient"]
    assert doc["facts"]["intends_ambient"] is True


def test_policy_json_carries_the_facts_rules_evaluate():
    result = run("explain", "AuthorizationPolicy/payments/payments-read-only", "-f", DEMO, "-o", "json")
    doc = json.loads(result.stdout)
    assert doc["facts"]["enforced_by"] == ["ztunnel"]
    assert doc["facts"]["l7_attributes"] == ["to.operation.methods", "to.operation.paths"]
    assert doc["findings"][0]["rule"] == "authz-l7-at-ztunnel"
    assert doc["mesh"]["istio_version"] == "1.23.4"


def test_cluster_scoped_object_by_kind_and_name():
    doc = json.loads(run("explain", "Namespace/checkout", "-f", DEMO, "-o", "json").stdout)
    assert doc["object"] == "Namespace checkout"
    assert [f["rule"] for f in doc["findings"]] == ["mode-namespace-conflict"]


def test_pod_findings_are_shown_on_the_pod_through_its_owner(tmp_path):
    doc = json.loads(run("explain", "Pod/apps/api-7d9f8c6b5-abcde", "-f",
                         str(FIXTURES / "rules" / "mode-sidecar-in-ambient" / "fail.injected-pods.yaml"), "-o", "json").stdout)
    assert doc["state"] == "observed" and doc["data_plane"]["observed_mode"] == "sidecar"
    assert [f["rule"] for f in doc["findings"]] == ["mode-sidecar-in-ambient"]


@pytest.mark.parametrize("ref, message", [
    ("Deployment/storefront/nope", "Deployment/storefront/nope: no such object in the input"),
    ("frontend", "'frontend': name the object as KIND/NAMESPACE/NAME"),
])
def test_unknown_or_malformed_reference_exits_2(ref, message):
    result = run("explain", ref, "-f", DEMO)
    assert result.exit_code == 2 and message in result.stderr


def test_ambiguous_kind_needs_its_group(tmp_path):
    path = tmp_path / "gateways.yaml"
    path.write_text(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\n"
        "spec: {gatewayClassName: istio-waypoint}\n"
    )
    result = run("explain", "Gateway/shop/gw", "-f", str(path))
    assert result.exit_code == 2 and "ambiguous" in result.stderr
    doc = json.loads(run("explain", "Gateway.gateway.networking.k8s.io/shop/gw", "-f", str(path), "-o", "json").stdout)
    assert doc["apiVersion"] == "gateway.networking.k8s.io/v1" and doc["facts"]["is_waypoint"] is True


def test_explain_against_a_live_cluster(api):
    result = run("explain", "Deployment/storefront/frontend", "--kubeconfig", str(api.kubeconfig_path), "-o", "json")
    doc = json.loads(result.stdout)
    assert doc["source"] == "cluster" and doc["state"] == "observed"
    assert doc["data_plane"]["mode"] == "ambient"
