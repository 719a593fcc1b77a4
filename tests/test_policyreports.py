"""Findings as PolicyReports (wgpolicyk8s.io/v1alpha2) and OpenReports (openreports.io/v1alpha1):
every object written validates against the real CRD schema, one report per namespace with
findings, a cluster-wide one for cluster-scoped findings, summaries that add up."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from auditor.api import Settings, scan
from auditor.reporters.policyreport import build
from conftest import DEMO, ROOT
from crd_check import check



@pytest.fixture(scope="module")
def demo_report():
    return scan([str(DEMO)], Settings())


@pytest.mark.parametrize("flavour, kinds", [("policyreport", ("PolicyReport", "ClusterPolicyReport")),
                                            ("openreports", ("Report", "ClusterReport"))])
def test_every_report_object_validates_against_its_crd(demo_report, flavour, kinds):
    docs = build(demo_report, flavour, now=1_780_000_000)
    assert docs, "the demo has findings"
    for doc in docs:
        check(doc)
    namespaced = [d for d in docs if d["kind"] == kinds[0]]
    cluster = [d for d in docs if d["kind"] == kinds[1]]
    active = [f for f in demo_report.findings if not f.suppressed]
    assert sorted(d["metadata"]["namespace"] for d in namespaced) == sorted({f.object.namespace for f in active if f.object.namespace})
    assert len(cluster) == (1 if any(not f.object.namespace for f in active) else 0)
    assert sum(len(d["results"]) for d in docs) == len(active)
    for doc in docs:
        assert doc["metadata"]["name"] == "mesh-audit"
        assert doc["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "mesh-audit"}
        summary = doc["summary"]
        assert summary["fail"] == sum(r["result"] == "fail" for r in doc["results"])
        assert summary["warn"] == sum(r["result"] == "warn" for r in doc["results"])
        assert summary["fail"] + summary["warn"] == len(doc["results"])


def test_results_carry_the_rule_the_object_and_the_docs(demo_report):
    docs = build(demo_report, "policyreport", uids={("security.istio.io/v1", "AuthorizationPolicy", "payments", "payments-read-only"): "u-1"})
    payments = next(d for d in docs if d["metadata"].get("namespace") == "payments")
    result = next(r for r in payments["results"] if r["policy"] == "authz-l7-at-ztunnel")
    assert (result["result"], result["severity"], result["category"]) == ("fail", "high", "authz")
    assert result["resources"] == [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "name": "payments-read-only",
                                    "namespace": "payments", "uid": "u-1"}]
    assert result["properties"]["docs"].startswith("https://")
    assert result["properties"]["location"].endswith("fixtures/demo/payments.yaml:50")
    severities = {r["severity"] for d in docs for r in d["results"]}
    assert severities <= {"high", "medium", "info"} and "info" in severities  # info findings: warn, severity info
    assert all(r["result"] == "warn" for d in docs for r in d["results"] if r["severity"] == "info")


def test_the_check_refuses_what_a_server_would():
    doc = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "metadata": {"name": "x", "namespace": "a"},
           "results": [{"policy": "p", "result": "bad"}]}
    with pytest.raises(AssertionError, match="results/0/result"):
        check(doc)
    with pytest.raises(AssertionError, match="Additional properties"):
        check({**doc, "results": [{"policy": "p", "colour": "red"}]})
    with pytest.raises(AssertionError, match="Namespaced"):
        check({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "metadata": {"name": "x"}})


@pytest.mark.parametrize("flavour", ["policyreport", "openreports"])
def test_scan_writes_the_reports_as_a_stream_for_kubectl_apply(tmp_path, flavour):
    out = tmp_path / "reports.yaml"
    result = subprocess.run([sys.executable, "-m", "auditor", "scan", str(DEMO), "-o", f"{flavour}={out}", "-o", "json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1, result.stderr  # the demo's errors still fail the gate
    docs = list(yaml.safe_load_all(out.read_text()))
    assert docs and all(d["metadata"]["name"] == "mesh-audit" for d in docs)
    for doc in docs:
        check(doc)


def test_no_findings_no_reports(tmp_path):
    clean = tmp_path / "clean.yaml"
    clean.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: quiet}\n")
    result = subprocess.run([sys.executable, "-m", "auditor", "scan", str(clean), "-o", "policyreport"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
