"""mesh-audit as a CI gate: configuration, suppressions, baselines, version comparison."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from sarif_check import check_sarif
from conftest import DEMO, FIXTURES, run



def scan_json(*args):
    result = run("scan", "-f", DEMO, "-o", "json", *args)
    return result, json.loads(result.stdout)


def by_rule(doc, rule):
    return [f for f in doc["findings"] if f["rule"] == rule]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- configuration ------------------------------------------------------------------------

def test_config_disables_rules_and_overrides_severities(tmp_path):
    config = write(tmp_path, "c.yaml", "rules:\n  virtualservice-alpha: off\n  authz-l7-at-ztunnel: warning\n"
                                        "  waypoint-missing: {enabled: false}\n")
    _, doc = scan_json("--config", config)
    assert by_rule(doc, "virtualservice-alpha") == [] and by_rule(doc, "waypoint-missing") == []
    assert [f["severity"] for f in by_rule(doc, "authz-l7-at-ztunnel")] == ["warning"]


def test_config_severity_override_replaces_a_severity_expression(tmp_path):
    config = write(tmp_path, "c.yaml", "rules:\n  authz-custom-at-ztunnel: info\n")
    _, doc = scan_json("--config", config)
    assert [f["severity"] for f in by_rule(doc, "authz-custom-at-ztunnel")] == ["info"]


def test_config_is_found_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / ".mesh-audit.yaml").write_text("rules:\n  virtualservice-alpha: off\n")
    monkeypatch.chdir(tmp_path)
    assert by_rule(scan_json()[1], "virtualservice-alpha") == []


def test_strict_config_fails_on_warnings_and_raises_alpha_features(tmp_path):
    only_warnings = write(tmp_path, "c.yaml", "extends: strict\nrules:\n" + "".join(
        f"  {r}: off\n" for r in ("authz-custom-at-ztunnel", "authz-l7-at-ztunnel", "policy-target-unbound", "waypoint-missing")))
    result, doc = scan_json("--config", only_warnings)
    assert doc["summary"]["error"] == 0 and result.exit_code == 1  # warnings fail under strict
    assert [f["severity"] for f in by_rule(doc, "upgrade-alpha-feature")] == ["warning"]
    assert scan_json("--config", only_warnings, "--fail-on", "error")[0].exit_code == 0  # the flag wins


@pytest.mark.parametrize("text, message", [
    ("rules:\n  no-such-rule: off\n", "c.yaml:2: 'rules.no-such-rule': no rule named 'no-such-rule'"),
    ("rules:\n  waypoint-missing: loud\n", "c.yaml:2: 'rules.waypoint-missing' must be off, on, error, warning, info"),
    ("extends: lenient\n", "c.yaml:1: 'extends' must be one of recommended, strict, not 'lenient'"),
    ("exemptions:\n  - rule: waypoint-missing\n    object: Service/catalog/catalog\n", "c.yaml:2: 'reason' is required"),
    ("exemptions:\n  - {rule: waypoint-missing, object: catalog, reason: x}\n", "c.yaml:2: 'exemptions.0.object' value 'catalog'"),
    ("exemptions:\n  - {rule: waypoint-missing, object: Service/a/b, reason: x, expires: 2027-02-30}\n",
     "c.yaml:2: 'exemptions.0.expires' '2027-02-30' is not a date"),
    ("unknown: 1\n", "c.yaml:1: unknown key 'unknown'"),
    ("rules: [\n", "c.yaml:2: invalid YAML"),
])
def test_config_errors_name_the_file_line_and_key(tmp_path, text, message):
    config = write(tmp_path, "c.yaml", text)
    result = run("scan", "-f", DEMO, "--config", config)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mesh-audit: error: {tmp_path}/{message}"), result.stderr


# -- suppressions -------------------------------------------------------------------------

def test_exemption_suppresses_but_keeps_the_finding(tmp_path):
    config = write(tmp_path, "c.yaml", "exemptions:\n"
                                        "  - rule: waypoint-missing\n    object: service/catalog/cat*\n"
                                        "    reason: waypoint lands with NET-123\n")
    result, doc = scan_json("--config", config)
    [finding] = by_rule(doc, "waypoint-missing")
    assert finding["suppressed"] is True
    assert finding["suppressions"] == [{"kind": "external", "source": "config", "justification": "waypoint lands with NET-123"}]
    assert doc["summary"]["suppressed"] == 1 and doc["summary"]["error"] == 3
    table = run("scan", "-f", DEMO, "--config", config).stdout
    assert "waypoint-missing" not in table.split("\n\n")[-1] and "; 1 suppressed" in table
    shown = run("scan", "-f", DEMO, "--config", config, "--show-suppressed").stdout
    assert "[suppressed: waypoint lands with NET-123]" in " ".join(shown.split())  # wherever the column wraps it


def test_suppressed_findings_never_fail_the_gate(tmp_path):
    config = write(tmp_path, "c.yaml", "exemptions:\n  - {rule: '*', object: '*/*', reason: accepted risk}\n")
    total = len(scan_json()[1]["findings"])
    result, doc = scan_json("--config", config, "--fail-on", "info")
    assert result.exit_code == 0 and doc["summary"]["findings"] == 0 and doc["summary"]["suppressed"] == total


def test_expired_exemption_stops_suppressing_and_is_reported(tmp_path):
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    config = write(tmp_path, "c.yaml", "exemptions:\n  - rule: waypoint-missing\n    object: Service/catalog/catalog\n"
                                        f"    reason: temporary\n    expires: {yesterday}\n")
    result, doc = scan_json("--config", config)
    assert by_rule(doc, "waypoint-missing")[0]["suppressed"] is False
    assert f"{config}:2: exemption expired on {yesterday} and no longer suppresses" in result.stderr
    assert any("exemption expired" in w["message"] for w in doc["warnings"])


def test_unused_exemptions_are_listed_on_request(tmp_path):
    config = write(tmp_path, "c.yaml", "exemptions:\n  - {rule: waypoint-missing, object: Service/nowhere/*, reason: x}\n")
    result, doc = scan_json("--config", config, "--report-unused-ignores")
    assert f"{config}:2: exemption matched nothing: waypoint-missing on Service/nowhere/*" in result.stderr
    assert doc["unused_exemptions"][0]["object"] == "Service/nowhere/*"
    assert "matched nothing" not in scan_json("--config", config)[0].stderr


def test_annotation_suppresses_with_its_reason(tmp_path):
    manifest = write(tmp_path, "ns.yaml", (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: both\n"
        "  labels: {istio.io/dataplane-mode: ambient, istio-injection: enabled}\n"
        "  annotations: {mesh-audit.io/ignore: 'mode-namespace-conflict, waypoint-missing', "
        "mesh-audit.io/ignore-reason: migration in progress}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n"
        "  labels: {istio.io/dataplane-mode: ambient, istio-injection: enabled}\n"
        "  annotations: {mesh-audit.io/ignore: '*'}\n"
    ))
    doc = json.loads(run("scan", "-f", manifest, "-o", "json").stdout)
    found = {f["object"]["name"]: f for f in by_rule(doc, "mode-namespace-conflict")}
    assert found["both"]["suppressions"] == [{"kind": "inSource", "source": "annotation", "justification": "migration in progress"}]
    assert found["other"]["suppressions"][0]["justification"] == "mesh-audit.io/ignore on Namespace other"


def test_cli_ignore_and_select(tmp_path):
    _, doc = scan_json("--ignore", "egress-control-ambient=ConfigMap/istio-system/*", "--ignore", "waypoint-missing")
    states = {(f["rule"], f["object"]["kind"]): f["suppressed"] for f in doc["findings"]}
    assert states[("egress-control-ambient", "ConfigMap")] and not states[("egress-control-ambient", "ServiceEntry")]
    assert states[("waypoint-missing", "Service")]
    _, doc = scan_json("--select", "waypoint-missing,authz-l7-at-ztunnel")
    assert {f["rule"] for f in doc["findings"]} == {"waypoint-missing", "authz-l7-at-ztunnel"}
    assert doc["summary"]["rules"] == 2
    assert run("scan", "-f", DEMO, "--select", "nope").exit_code == 2
    assert "no rule named 'nope'" in run("scan", "-f", DEMO, "--ignore", "nope").stderr


def test_sarif_with_suppressions_and_a_source_map_passes_validation(tmp_path, api):
    config = write(tmp_path, "c.yaml", "exemptions:\n  - {rule: waypoint-missing, object: Service/catalog/catalog, reason: NET-123}\n")
    out = tmp_path / "out.sarif"
    result = run("scan", "--kubeconfig", str(api.kubeconfig_path), "--config", config, "--source-map", DEMO,
                 "--cluster-name", "prod-eu1", "-o", "sarif", "--output-file", str(out))
    assert result.exit_code == 1
    doc = json.loads(out.read_text())
    run_ = doc["runs"][0]
    assert run_["automationDetails"]["id"] == "mesh-audit/prod-eu1/"
    results = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]): r for r in run_["results"]}
    suppressed = results[("waypoint-missing", "fixtures/demo/catalog.yaml")]
    assert suppressed["suppressions"] == [{"kind": "external", "status": "accepted", "justification": "NET-123 (config)"}]
    assert suppressed["locations"][0]["physicalLocation"]["region"]["startLine"] == 31  # its use-waypoint label
    # Every finding on an object of the demo cluster maps onto a manifest of the demo (the
    # mesh as a whole keeps its pseudo-path).
    assert all(uri.startswith("fixtures/demo/") for rule, uri in results if uri != "k8s/prod-eu1/_cluster")
    check_sarif(out)


def test_cluster_name_goes_into_pseudo_paths_and_fingerprints(tmp_path):
    manifest = write(tmp_path, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: both\n"
                                          "  labels: {istio.io/dataplane-mode: ambient, istio-injection: enabled}\n")
    stdin = open(manifest).read()
    plain = json.loads(CliRunner().invoke(cli, ["scan", "-f", "-", "-o", "sarif"], input=stdin).stdout)
    named = json.loads(CliRunner().invoke(cli, ["scan", "-f", "-", "-o", "sarif", "--cluster-name", "prod"], input=stdin).stdout)
    uri = lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]  # noqa: E731
    fp = lambda d: d["runs"][0]["results"][0]["partialFingerprints"]["meshAuditObject/v1"]  # noqa: E731
    assert uri(plain) == "k8s/_cluster/Namespace/both" and uri(named) == "k8s/prod/_cluster/Namespace/both"
    assert fp(plain) != fp(named)


# -- baselines ------------------------------------------------------------------------------

def test_baseline_counts_only_new_findings_and_reports_fixed_ones(tmp_path):
    baseline = str(tmp_path / "baseline.json")
    first = run("scan", "-f", DEMO, "--write-baseline", baseline, "-q")
    assert first.exit_code == 1
    total = len(scan_json()[1]["findings"])
    recorded = json.loads(open(baseline).read())
    assert recorded["kind"] == "MeshAuditBaseline" and len(recorded["findings"]) == total
    again, doc = scan_json("--baseline", baseline)
    assert again.exit_code == 0  # nothing new
    assert doc["baseline"]["new"] == 0 and doc["baseline"]["unchanged"] == total and doc["baseline"]["fixed"] == []
    assert {f["baseline_state"] for f in doc["findings"]} == {"unchanged"}
    # Fix one finding and add one: the new one fails the gate, the fixed one is reported.
    shop = tmp_path / "shop"
    shop.mkdir()
    for name in ("istio-system.yaml", "storefront.yaml", "payments.yaml", "checkout.yaml", "legacy.yaml"):
        (shop / name).write_text((FIXTURES / "demo" / name).read_text())
    (shop / "catalog.yaml").write_text((FIXTURES / "demo" / "catalog.yaml").read_text().replace("catalog-waypoint", "gone"))
    (shop / "extra.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: new, namespace: catalog, "
                                     "labels: {istio.io/use-waypoint: nowhere}}\nspec: {selector: {app: x}}\n")
    result = run("scan", "-f", str(shop), "-o", "json", "--baseline", baseline)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    new = [(f["rule"], f["object"]["name"]) for f in doc["findings"] if f["baseline_state"] == "new"]
    assert ("waypoint-missing", "new") in new
    fixed = {(e["rule"], e["name"]) for e in doc["baseline"]["fixed"]}
    assert ("waypoint-missing", "catalog") not in fixed  # still missing: the label now names "gone"
    table = run("scan", "-f", str(shop), "--baseline", baseline).stdout
    assert "; baseline: 1 new," in table


def test_bad_baseline_file_is_a_usage_error(tmp_path):
    path = write(tmp_path, "b.json", '{"kind": "Other"}')
    result = run("scan", "-f", DEMO, "--baseline", path)
    assert result.exit_code == 2 and "not a mesh-audit baseline" in result.stderr


def test_fixed_findings_are_listed(tmp_path):
    baseline = write(tmp_path, "b.json", json.dumps({"kind": "MeshAuditBaseline", "schema_version": 1, "findings": [
        {"rule": "waypoint-missing", "group": "", "kind": "Service", "namespace": "shop", "name": "gone"}]}))
    result, doc = scan_json("--baseline", baseline)
    assert doc["baseline"]["fixed"] == [{"rule": "waypoint-missing", "group": "", "kind": "Service", "namespace": "shop", "name": "gone"}]
    table = run("scan", "-f", DEMO, "--baseline", baseline).stdout
    assert "Fixed since the baseline" in table and "\n  waypoint-missing  Service shop/gone\n" in table
    assert result.exit_code == 1  # everything else is new


# -- upgrade comparison -------------------------------------------------------------------

def test_compare_version_reports_what_the_upgrade_changes():
    result, doc = scan_json("--istio-version", "1.24.0", "--compare-version", "1.23.4")
    c = doc["comparison"]
    assert c["current"] == "1.23.4" and c["target"] == "1.24.0"
    assert {(f["rule"], f["object"]["kind"]) for f in c["removed"]} == {("egress-control-ambient", "ConfigMap"),
                                                                           ("egress-control-ambient", "ServiceEntry"),
                                                                           ("upgrade-alpha-feature", "Cluster")}
    assert {f["rule"] for f in c["added"]} == {"egress-gateway-route-ambient"}
    table = run("scan", "-f", DEMO, "--istio-version", "1.24.0", "--compare-version", "1.23.4").stdout
    assert "Upgrade from Istio 1.23.4 to 1.24.0: 1 added, 3 removed" in table
    assert "\n  - info  upgrade-alpha-feature  Cluster cluster\n" in table


def test_compare_version_needs_a_target():
    path = str(FIXTURES / "rules" / "mode-injection-and-revision" / "fail.both-labels.yaml")
    result = run("scan", "-f", path, "--compare-version", "1.23")
    assert result.exit_code == 2 and "--compare-version needs the target version" in result.stderr


def test_json_with_suppressions_baseline_and_comparison_matches_the_schema(tmp_path):
    import jsonschema
    from importlib import resources

    config = write(tmp_path, "c.yaml", "exemptions:\n  - {rule: waypoint-missing, object: Service/*/*, reason: NET-123}\n")
    baseline = str(tmp_path / "b.json")
    run("scan", "-f", DEMO, "--write-baseline", baseline, "-q")
    _, doc = scan_json("--config", config, "--baseline", baseline, "--istio-version", "1.24", "--compare-version", "1.23")
    schema = json.loads(resources.files("auditor.schemas").joinpath("report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["baseline"] and doc["comparison"] and doc["summary"]["suppressed"] == 1
