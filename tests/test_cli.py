"""The command line as a user meets it: outputs, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest
from click.testing import CliRunner

from auditor.cli import cli
from sarif_check import check_sarif
from conftest import audit, DEMO, FIXTURES, ROOT, run

DEMO_RULES = {
    "authz-custom-at-ztunnel", "authz-l7-at-ztunnel", "policy-target-unbound", "waypoint-missing",
    "egress-control-ambient", "mode-namespace-conflict", "mode-sidecar-in-ambient", "sidecar-resource-ambient",
    "virtualservice-no-waypoint", "virtualservice-alpha", "upgrade-alpha-feature",
}


def demo_json(*extra):
    result = run("scan", "-f", DEMO, "-o", "json", *extra)
    return result, json.loads(result.stdout)


def test_demo_table_groups_by_rule_and_summarises():
    result = run("scan", "-f", DEMO)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ERROR  authz-custom-at-ztunnel")
    assert lines[-1] == "4 errors, 6 warnings, 2 info in 34 objects; 60 rules; Istio 1.23.4"


def test_demo_json_matches_schema_and_is_sorted():
    result, doc = demo_json()
    assert result.exit_code == 1
    schema = json.loads(resources.files("auditor.schemas").joinpath("report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert {f["rule"] for f in doc["findings"]} == DEMO_RULES
    ranks = {"error": 0, "warning": 1, "info": 2}
    keys = [(ranks[f["severity"]], f["rule"], f["object"]["namespace"] or "", f["object"]["kind"], f["object"]["name"]) for f in doc["findings"]]
    assert keys == sorted(keys)
    assert doc["summary"]["istio_version"] == "1.23.4"
    ns = next(f for f in doc["findings"] if f["rule"] == "mode-namespace-conflict")
    assert ns["object"] == {"apiVersion": "v1", "kind": "Namespace", "namespace": None, "name": "checkout"}
    assert ns["location"] == {"file": f"{DEMO}/checkout.yaml", "line": 9, "field": "/metadata/labels/istio-injection"}


def test_json_output_is_deterministic():
    assert run("scan", "-f", DEMO, "-o", "json").stdout == run("scan", "-f", DEMO, "-o", "json").stdout


@pytest.mark.parametrize("fail_on, code", [("error", 1), ("warning", 1), ("info", 1), ("never", 0)])
def test_fail_on(fail_on, code):
    assert run("scan", "-f", DEMO, "--fail-on", fail_on).exit_code == code


def test_fail_on_threshold_counts_only_severities_at_or_above(tmp_path):
    only_info = FIXTURES / "rules" / "virtualservice-alpha" / "fail.through-waypoint.yaml"
    assert run("scan", "-f", str(only_info), "--fail-on", "warning").exit_code == 0
    assert run("scan", "-f", str(only_info), "--fail-on", "info").exit_code == 1


def test_istio_version_flag_gates_rules():
    _, doc = demo_json("--istio-version", "1.24")
    assert "egress-control-ambient" not in {f["rule"] for f in doc["findings"]}
    assert doc["summary"]["istio_version_source"] == "--istio-version"
    # egress-control-ambient and telemetry-at-waypoint-before-1-24 (<1.24),
    # egress-wildcard-no-waypoint (>=1.28), and the four rules about ambient across clusters
    # that exist from 1.27 (serviceentry-waypoint-needs-dns-capture, <1.25, still applies)
    assert doc["summary"]["rules_skipped_for_version"] == 7


def test_bad_istio_version_is_a_usage_error():
    result = run("scan", "-f", DEMO, "--istio-version", "latest")
    assert result.exit_code == 2
    assert "is not a version like 1.24" in result.stderr


def test_sarif_passes_github_validation(tmp_path):
    out = tmp_path / "demo.sarif"
    assert run("scan", "-f", DEMO, "-o", "sarif", "--output-file", str(out)).exit_code == 1
    doc = check_sarif(out)
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == DEMO_RULES
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    # the mesh as a whole (sidecar and ambient workloads together) has a pseudo-path, the rest their files
    assert all(u.startswith("fixtures/demo/") for u in uris if u != "k8s/_cluster") and len(set(uris)) > 5


def test_sarif_from_stdin_uses_pseudo_paths(tmp_path):
    text = (FIXTURES / "demo" / "catalog.yaml").read_text()
    result = run("scan", "-f", "-", "-o", "sarif", input=text)
    doc = json.loads(result.stdout)
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"])
    assert uris == ["k8s/catalog/AuthorizationPolicy/catalog-writers", "k8s/catalog/Service/catalog"]
    assert all(r["message"]["text"].startswith(("AuthorizationPolicy catalog/", "Service catalog/")) for r in doc["runs"][0]["results"])


def test_malformed_input_exits_2_but_keeps_the_report(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    result = run("scan", "-f", DEMO, "-f", str(bad), "-o", "json")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"mesh-audit: error: {bad}:2: invalid YAML")
    doc = json.loads(result.stdout)
    assert doc["errors"][0]["kind"] == "input" and doc["errors"][0]["file"] == str(bad)
    assert {f["rule"] for f in doc["findings"]} == DEMO_RULES


def test_missing_input_exits_2():
    result = run("scan", "-f", "/nonexistent/path.yaml")
    assert result.exit_code == 2 and "no such file or directory" in result.stderr


def test_no_input_and_no_cluster_exits_3_with_one_line(tmp_path):
    env = {"KUBECONFIG": "", "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": ""}
    result = CliRunner().invoke(cli, ["scan"], env=env)
    assert result.exit_code == 3
    assert result.stderr.startswith("mesh-audit: error: no cluster to read: no kubeconfig")
    assert "give them as PATHs (or -f), or --snapshot FILE" in result.stderr
    snapshot = CliRunner().invoke(cli, ["snapshot", "-o", str(tmp_path / "s.json")], env=env)  # reads only clusters
    assert snapshot.exit_code == 3
    assert snapshot.stderr.strip().endswith("and not running in a pod")
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


def test_warnings_go_to_stderr_unless_quiet(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("hello: world\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    assert "skipped: not a Kubernetes object" in run("scan", "-f", str(path)).stderr
    assert run("scan", "-f", str(path), "-q").stderr == ""


def test_an_input_without_objects_is_not_a_clean_cluster(tmp_path):
    """`false | mesh-audit scan -f -` or a folder of Helm values must not pass as clean."""
    (tmp_path / "values.yaml").write_text("replicas: 3\n")
    result = run("scan", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"mesh-audit: warning: {tmp_path / 'values.yaml'}:1: skipped: not a Kubernetes object (needs apiVersion and kind)",
        "mesh-audit: error: no Kubernetes objects in the input (read 1 file; 1 document skipped, see the warnings); "
        "pass --allow-empty to accept that"]
    empty = CliRunner().invoke(cli, ["scan", "-f", "-"], input="")
    assert empty.exit_code == 2 and "no Kubernetes objects in the input (read 1 file)" in empty.stderr
    assert run("scan", str(tmp_path), "--allow-empty", "-q").exit_code == 0


def test_output_file_replaces_atomically(tmp_path):
    out = tmp_path / "report.json"
    out.write_text("old")
    run("scan", "-f", DEMO, "-o", "json", "--output-file", str(out))
    assert json.loads(out.read_text())["schema_version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_rules_list_and_show():
    result = run("rules", "list", "-o", "json")
    ids = [r["id"] for r in json.loads(result.stdout)]
    assert len(ids) == 66 and ids == sorted(ids)
    table = run("rules", "list").stdout
    assert "waypoint-missing" in table and "SEVERITY" in table
    shown = run("rules", "show", "authz-l7-at-ztunnel")
    assert shown.exit_code == 0
    assert "https://istio.io/latest/docs/ambient/usage/l4-policy/" in shown.stdout
    missing = run("rules", "show", "no-such-rule")
    assert missing.exit_code == 2 and "no rule named 'no-such-rule'" in missing.stderr


def test_console_script_runs_without_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    proc = subprocess.run([sys.executable, "-m", "auditor", "scan", "-f", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"mesh-audit: error: {bad}:1: invalid JSON")


def test_wrong_typed_fields_do_not_crash_the_scan():
    """Metadata, and fields facts read, that the API server's schema would reject are input
    errors at the object's line (the object is not audited under a wrong name, nor with a
    field read as absent); the rest of the input is still audited."""
    path = FIXTURES / "hostile" / "wrong-types.yaml"
    result = run("scan", "-f", str(path), "-o", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["summary"]["objects"] == 2  # the ConfigMap, and the Pod a server returned (uid: judged there)
    assert [(e["line"], e["message"]) for e in doc["errors"]] == [
        (2, "Namespace: metadata.labels is a list, not a mapping of strings"),
        (6, "Service: metadata.labels.istio.io/use-waypoint is the number 5, not a string; kubectl rejects it: quote the value"),
        (11, "VirtualService: spec.hosts is a string, not a list"),
        (16, "AuthorizationPolicy: spec.selector.matchLabels is a list, not a mapping"),
        (21, "Deployment: spec.template is a list, not a mapping"),
        (31, "Sidecar: spec.workloadSelector is a list, not a mapping"),
        (36, "ServiceEntry: spec.hosts is the number 5, not a list"),
        (41, "Gateway: spec.listeners is a string, not a list"),
    ]
    assert doc["findings"] == []
    manifest = run("scan", "-f", "-", "-o", "json", input="apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n"
                                                            "spec: {containers: x}\n")
    assert [e["message"] for e in json.loads(manifest.stdout)["errors"]] == ["Pod: spec.containers is a string, not a list"]


def test_unforeseen_facts_failure_is_reported_per_object(mocker, rules):
    from auditor import engine
    from conftest import load_snapshot

    original = engine.facts_for

    def flaky(ctx, obj):
        if obj.name == "payments-retries":
            raise KeyError("boom")
        return original(ctx, obj)

    mocker.patch.object(engine, "facts_for", flaky)
    report = audit(load_snapshot(FIXTURES / "demo"), rules)
    assert [(e["kind"], e["object"]) for e in report.errors] == [("object", "VirtualService payments/payments-retries")]
    assert "virtualservice-no-waypoint" not in {f.rule for f in report.findings}
    assert "authz-l7-at-ztunnel" in {f.rule for f in report.findings}


def test_strict_maturity_raises_alpha_features_to_warning():
    def severity(*extra):
        _, doc = demo_json(*extra)
        return {f["severity"] for f in doc["findings"] if f["rule"] == "upgrade-alpha-feature"}

    assert severity() == {"info"}
    assert severity("--strict-maturity") == {"warning"}


def test_sidecar_scope_threshold_option():
    path = str(FIXTURES / "rules" / "sidecar-scope-missing" / "pass.small-mesh.yaml")
    assert "sidecar-scope-missing" not in run("scan", "-f", path, "-o", "json").stdout
    result = run("scan", "-f", path, "-o", "json", "--sidecar-scope-threshold", "1")
    assert [f["object"]["kind"] for f in json.loads(result.stdout)["findings"] if f["rule"] == "sidecar-scope-missing"] == ["Cluster"]


def test_readme_demo_excerpt_matches_the_demo():
    """The headline findings the README quotes are what the command it shows prints on an
    80-column terminal, byte for byte."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## What the demo shows", 1)[1]
    command = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    quoted = section.split("```sh\n", 1)[1].split("\n```\n\n```\n", 1)[1].split("```", 1)[0]
    args = [word for word in command.split()[1:] if word != "\\"]
    assert args[:2] == ["scan", "fixtures/demo"]
    done = subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"})
    assert done.returncode == 1 and done.stdout == quoted


def test_readme_plan_excerpt_is_the_head_of_the_plan():
    text = (ROOT / "README.md").read_text()
    quoted = text.split("## Planning the move to ambient", 1)[1].split("```\n", 3)[2].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-m", "auditor", "plan", "-f", "fixtures/demo"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"})
    assert done.returncode == 0
    head, note = quoted.rstrip("\n").split("\n       legacy after orders", 1)
    assert done.stdout.startswith(head) and ("       legacy after orders" + note) in done.stdout


def test_the_console_script_flushes_its_report_and_exits_with_the_gate_code():
    """main() leaves through os._exit (no teardown of the objects): the report must be
    complete on a pipe, and the code the one the gate decided."""
    proc = subprocess.run([sys.executable, "-m", "auditor", "scan", str(FIXTURES / "demo"), "-o", "json"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["findings"] and report["summary"]["error"] > 0
    proc = subprocess.run([sys.executable, "-m", "auditor", "scan", str(FIXTURES / "demo"), "--fail-on", "never", "-q"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0 and b"authz-l7-at-ztunnel" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "auditor", "scan", "no/such/path"], capture_output=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith(b"mesh-audit: error:") and b"Traceback" not in proc.stderr


def test_exit_codes_follow_sys_exit(monkeypatch, capsys):
    import os

    from auditor import cli as cli_module

    left = []
    monkeypatch.setattr(os, "_exit", left.append)
    cli_module.leave(None)
    cli_module.leave(3)
    cli_module.leave("mesh-audit: gone")
    assert left == [0, 3, 1]
    assert capsys.readouterr().err == "mesh-audit: gone\n"


@pytest.mark.parametrize("value, message", [
    ("1.2x", "'1.2x' is not a version like 1.24 or 1.24.2 (mesh-audit knows Istio 1.10 to 1.31)"),
    ("1.9", "Istio 1.9 is not a release mesh-audit knows (mesh-audit knows Istio 1.10 to 1.31)"),
    ("2.0", "Istio 2.0 is not a release mesh-audit knows (mesh-audit knows Istio 1.10 to 1.31)"),
])
def test_an_istio_version_mesh_audit_does_not_know_is_refused(value, message):
    result = run("scan", "-f", str(DEMO), "--istio-version", value)
    assert result.exit_code == 2
    assert message in result.stderr
    from auditor import api

    with pytest.raises(api.UsageError, match=re.escape(message)):
        api.scan([str(DEMO)], api.Settings(istio_version=value))


def test_a_version_before_ambient_is_taken_with_a_note():
    result = run("scan", "-f", str(DEMO), "--istio-version", "1.20", "-o", "json")
    assert json.loads(result.stdout)["summary"]["istio_version"] == "1.20.0"
    assert ("mesh-audit: warning: Istio 1.20 predates ambient mode (Beta from 1.22): only sidecar mode applies, and "
            "rules about ambient mode read it as not in use") in result.stderr


def test_a_usage_error_is_one_line_from_the_console_script():
    done = subprocess.run([sys.executable, "-m", "auditor", "scan", "--istio-version", "1.2x"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "mesh-audit: error: Invalid value for '--istio-version': '1.2x' is not a version like 1.24 or 1.24.2 (mesh-audit "
        "knows Istio 1.10 to 1.31) (see 'mesh-audit scan --help')"]
