"""The CI-facing outputs: JUnit, a pull-request comment in Markdown, GitHub annotations;
and the source map that moves findings on live objects onto manifests."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from click.testing import CliRunner

from auditor.cli import cli
from auditor.model.report import Finding, ObjectRef, Report
from auditor.reporters import github, markdown
from auditor.reporters.view import View
from auditor.gate.sourcemap import SourceMap
from conftest import DEMO



def scan(*args):
    return CliRunner().invoke(cli, ["scan", "-f", DEMO, *args], catch_exceptions=False)


def test_junit_has_a_case_per_rule_and_object(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("exemptions:\n  - {rule: waypoint-missing, object: Service/catalog/catalog, reason: NET-123}\n")
    result = scan("-o", "junit", "--config", str(config))
    root = ET.fromstring(result.stdout)
    assert junit_10_problems(root) == []
    doc = json.loads(scan("-o", "json", "--config", str(config)).stdout)
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert len(suites) == doc["summary"]["rules"]
    failing = suites["authz-l7-at-ztunnel"]
    [case] = failing.iter("testcase")
    assert case.get("name") == "authz-l7-at-ztunnel AuthorizationPolicy payments/payments-read-only"  # no line: stable
    assert case.find("failure").get("type") == "error"
    assert suites["waypoint-missing"].find("testcase/skipped").get("message") == "NET-123"
    assert suites["mode-missing-sidecar"].find("testcase").get("name") == "mode-missing-sidecar no findings"
    errors = doc["summary"]["error"]  # --fail-on error: only errors fail; warnings and info pass, said in system-out
    assert root.get("failures") == str(errors)
    below = suites["virtualservice-alpha"].find("testcase")
    assert below.find("failure") is None and below.find("system-out").text.startswith("below the gate (--fail-on error): info")


def test_junit_failures_follow_the_gate():
    root = ET.fromstring(scan("-o", "junit", "--fail-on", "warning").stdout)
    doc = json.loads(scan("-o", "json").stdout)
    assert root.get("failures") == str(doc["summary"]["error"] + doc["summary"]["warning"])


def junit_10_problems(root: ET.Element) -> list[str]:
    """The constraints of Jenkins' junit-10.xsd (xUnit plugin) on what a report may hold:
    which elements nest where, which attributes each may have, and which it must."""
    schema = {  # element: (required attributes, allowed attributes, allowed children)
        "testsuites": (set(), {"name", "time", "tests", "failures", "errors"}, {"testsuite"}),
        "testsuite": ({"name", "tests", "failures", "errors"},
                      {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
                       "package", "file", "log", "url"},
                      {"testsuite", "properties", "testcase", "system-out", "system-err"}),
        "properties": (set(), set(), {"property"}),
        "property": ({"name", "value"}, {"name", "value"}, set()),
        "testcase": ({"name"}, {"name", "time", "classname", "group"},
                     {"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError",
                      "system-out", "system-err"}),
        "failure": (set(), {"type", "message"}, set()),
        "error": (set(), {"type", "message"}, set()),
        "skipped": (set(), {"type", "message"}, set()),
        "system-out": (set(), set(), set()),
        "system-err": (set(), set(), set()),
    }
    problems = [] if root.tag == "testsuites" else [f"root is <{root.tag}>"]
    for element in root.iter():
        required, allowed, children = schema.get(element.tag, (set(), set(), set()))
        if element.tag not in schema:
            problems.append(f"<{element.tag}> is not in the schema")
        problems += [f"<{element.tag}> lacks {a}" for a in sorted(required - set(element.attrib))]
        problems += [f"<{element.tag} {a}=...> is not allowed" for a in sorted(set(element.attrib) - allowed)]
        problems += [f"<{child.tag}> inside <{element.tag}>" for child in element if child.tag not in children]
    return problems


def test_the_junit_checker_catches_what_the_schema_forbids():
    bad = ET.fromstring('<testsuites skipped="1"><testsuite name="a"><testcase/><bogus/></testsuite></testsuites>')
    assert junit_10_problems(bad) == [
        "<testsuites skipped=...> is not allowed", "<testsuite> lacks errors", "<testsuite> lacks failures",
        "<testsuite> lacks tests", "<bogus> inside <testsuite>", "<testcase> lacks name", "<bogus> is not in the schema"]


def test_markdown_comment_groups_findings_and_carries_a_marker():
    text = scan("-o", "markdown").stdout
    assert text.startswith("<!-- mesh-audit -->\n## mesh-audit\n")
    assert "🔴 4 errors, 🟠 6 warnings, 🔵 2 info in 34 objects (Istio 1.23.4)." in text
    assert "<summary>🔴 <b>authz-l7-at-ztunnel</b>: ALLOW policy with L7 rules" in text
    assert f"| AuthorizationPolicy payments/payments-read-only | `{DEMO}/payments.yaml:50` |" in text
    assert "**Fix:**" in text


def test_markdown_escapes_table_cells_and_reports_clean_runs():
    report = Report(findings=[], rules=[], objects=3)
    assert "✅ No findings in 3 objects" in markdown.render(report)
    f = Finding("r", "warning", "a | b\nc", ObjectRef("v1", "Service", "ns", "x"), None, False)
    assert "| a \\| b c |" in markdown.render(Report(findings=[f], rules=[], objects=1))


def test_github_annotations_point_at_files_and_escape():
    lines = scan("-o", "github").stdout.splitlines()
    l7 = next(line for line in lines if "authz-l7-at-ztunnel" in line)
    assert l7.startswith("::error file=fixtures/demo/payments.yaml,line=50,title=authz-l7-at-ztunnel "
                         "(AuthorizationPolicy payments/payments-read-only)::")  # relative to the repository root
    info = next(line for line in lines if "virtualservice-alpha" in line)
    assert info.startswith("::notice ")
    assert lines[-1] == "mesh-audit: 4 errors, 6 warnings, 2 info in 34 objects"
    f = Finding("r", "error", "100% sure\nreally", ObjectRef("v1", "Service", "ns", "a,b"), None, False)
    [line, _] = github.render(Report(findings=[f], rules=[], objects=1)).splitlines()
    assert line == "::error title=r (Service ns/a%2Cb)::100%25 sure%0Areally"


def _findings(n: int, severity: str = "warning") -> list[Finding]:
    return [Finding("some-rule", severity, "x" * 300, ObjectRef("v1", "Service", "ns", f"svc-{i:05d}"), ("k8s/a.yaml", i + 1),
                    False) for i in range(n)]


def test_markdown_is_trimmed_to_fit_a_github_comment():
    report = Report(findings=_findings(40, "error") + _findings(400), rules=[], objects=440)
    text = markdown.render(report, View(details_url="https://github.example/acme/k8s/actions/runs/7"))
    assert len(text) <= 65_536
    assert text.count("| Service ns/svc-") < 440 and text.count("🔴") >= 1
    shown = text.count("| Service ns/svc-")
    assert text.rstrip().endswith(f"**{440 - shown:,} more findings** (less severe) do not fit in a comment's 65,536 "
                                  "characters; see the full report: https://github.example/acme/k8s/actions/runs/7.")
    small = markdown.render(Report(findings=_findings(3), rules=[], objects=3))
    assert "more finding" not in small and small.count("| Service ns/svc-") == 3


def test_sarif_keeps_the_most_severe_results_within_githubs_limit(monkeypatch):
    from auditor.reporters import sarif

    monkeypatch.setattr(sarif, "MAX_RESULTS", 10)
    findings = _findings(4, "error") + _findings(20)
    findings[0].suppressions.append({"kind": "external", "source": "config", "justification": "known"})
    doc = sarif.to_document(Report(findings=findings, rules=[], objects=24))
    results = doc["runs"][0]["results"]
    assert len(results) == 10 and [r["level"] for r in results[:3]] == ["error"] * 3
    assert not any("suppressions" in r for r in results)  # a suppressed one gives way first
    [note] = [n for n in doc["runs"][0]["invocations"][0]["toolExecutionNotifications"] if n["level"] == "warning"]
    assert note["message"]["text"].startswith("14 of 24 findings are not in this run: GitHub code scanning accepts 10 results")


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
    assert [f.location for f in mapping.apply(findings)] == [(str(tmp_path / "app.yaml"), 1), (str(tmp_path / "app.yaml"), 5), None, None]
