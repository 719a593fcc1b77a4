"""The CI-facing outputs: JUnit, a pull-request comment in Markdown, GitHub annotations;
and the source map that moves findings on live objects onto manifests."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from click.testing import CliRunner

from auditor.cli import cli
from auditor.report import Finding, ObjectRef, Report
from auditor.reporters import github, markdown
from auditor.sourcemap import SourceMap
from conftest import FIXTURES

DEMO = str(FIXTURES / "demo")


def scan(*args):
    return CliRunner().invoke(cli, ["scan", "-f", DEMO, *args], catch_exceptions=False)


def test_junit_has_a_case_per_rule_and_object(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("exemptions:\n  - {rule: waypoint-missing, object: Service/catalog/catalog, reason: NET-123}\n")
    result = scan("-o", "junit", "--config", str(config))
    root = ET.fromstring(result.stdout)
    doc = json.loads(scan("-o", "json").stdout)
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert len(suites) == doc["summary"]["rules"]
    failing = suites["authz-l7-at-ztunnel"]
    [case] = failing.iter("testcase")
    assert case.get("name") == f"AuthorizationPolicy payments/payments-read-only ({DEMO}/payments.yaml:35)"
    assert case.find("failure").get("type") == "error"
    assert suites["waypoint-missing"].find("testcase/skipped").get("message") == "NET-123"
    assert suites["mode-missing-sidecar"].find("testcase").get("name") == "no findings"
    assert root.get("failures") == str(doc["summary"]["findings"] - 1) and root.get("skipped") == "1"


def test_markdown_comment_groups_findings_and_carries_a_marker():
    text = scan("-o", "markdown").stdout
    assert text.startswith("<!-- mesh-audit -->\n## mesh-audit\n")
    assert "🔴 4 error, 🟠 6 warning, 🔵 2 info in 27 objects (Istio 1.23.4)." in text
    assert "<summary>🔴 <b>authz-l7-at-ztunnel</b>: ALLOW policy with L7 rules" in text
    assert f"| AuthorizationPolicy payments/payments-read-only | `{DEMO}/payments.yaml:35` |" in text
    assert "**Fix:**" in text


def test_markdown_escapes_table_cells_and_reports_clean_runs():
    report = Report(findings=[], rules=[], objects=3)
    assert "✅ No findings in 3 objects" in markdown.render(report)
    f = Finding("r", "warning", "a | b\nc", ObjectRef("v1", "Service", "ns", "x"), None, False)
    assert "| a \\| b c |" in markdown.render(Report(findings=[f], rules=[], objects=1))


def test_github_annotations_point_at_files_and_escape():
    lines = scan("-o", "github").stdout.splitlines()
    assert f"::error file={DEMO.lstrip('/')}" not in lines[0]  # paths are relative to the working directory
    l7 = next(line for line in lines if "authz-l7-at-ztunnel" in line)
    assert l7.startswith("::error file=") and ",line=35,title=authz-l7-at-ztunnel (AuthorizationPolicy payments/payments-read-only)::" in l7
    info = next(line for line in lines if "virtualservice-alpha" in line)
    assert info.startswith("::notice ")
    assert lines[-1] == "mesh-audit: 4 errors, 6 warnings, 2 info in 27 objects"
    f = Finding("r", "error", "100% sure\nreally", ObjectRef("v1", "Service", "ns", "a,b"), None, False)
    [line, _] = github.render(Report(findings=[f], rules=[], objects=1)).splitlines()
    assert line == "::error title=r (Service ns/a%2Cb)::100%25 sure%0Areally"


def test_source_map_matches_by_group_kind_namespace_and_name(tmp_path):
    (tmp_path / "app.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart}\n"  # namespace set by kustomize
    )
    mapping = SourceMap(str(tmp_path))
    findings = [
        Finding("r", "error", "m", ObjectRef("v1", "Service", "shop", "cart"), None, True),
        Finding("r", "error", "m", ObjectRef("apps/v1", "Deployment", "shop", "cart"), None, True),
        Finding("r", "error", "m", ObjectRef("v1", "Service", "shop", "orders"), None, True),
        Finding("r", "error", "m", ObjectRef("networking.istio.io/v1", "Service", "shop", "cart"), None, True),
    ]
    report = Report(findings=findings, rules=[])
    assert mapping.apply(report) == 2
    assert [f.location for f in findings] == [(str(tmp_path / "app.yaml"), 1), (str(tmp_path / "app.yaml"), 5), None, None]
