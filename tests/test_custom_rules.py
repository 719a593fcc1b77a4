"""Users' own rules: --rules-dir, `rules validate`, `rules test`."""

from __future__ import annotations

import json
import shutil


from conftest import ROOT, run

EXAMPLE = ROOT / "examples" / "custom-rules"


def copy_example(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(EXAMPLE, target)
    return target


def test_rules_dir_adds_a_users_rule_to_scans_and_listings(tmp_path):
    manifest = tmp_path / "pa.yaml"
    manifest.write_text("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                        "metadata: {name: default, namespace: prod-web}\nspec: {mtls: {mode: PERMISSIVE}}\n")
    result = run("scan", str(manifest), "--rules-dir", str(EXAMPLE), "-o", "json")
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["prod-permissive-mtls"]
    assert result.exit_code == 1
    assert "prod-permissive-mtls" in run("rules", "list", "--rules-dir", str(EXAMPLE)).stdout
    assert "Our production namespaces" in run("rules", "show", "prod-permissive-mtls", "--rules-dir", str(EXAMPLE)).stdout


def test_rules_test_runs_the_users_fixtures():
    result = run("rules", "test", str(EXAMPLE))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "1 rules, 2 fixtures, 0 failed"


def test_rules_test_says_what_is_wrong_with_a_fixture(tmp_path):
    rules = copy_example(tmp_path)
    fail = rules / "fixtures" / "prod-permissive-mtls" / "fail.permissive.yaml"
    fail.write_text(fail.read_text().replace("[error]", "[warning]").replace("prod-payments/default", "prod-payments/other", 1))
    (rules / "fixtures" / "prod-permissive-mtls" / "pass.bad.yaml").write_text(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: prod-a}\n"
        "spec: {mtls: {mode: DISABLE}}\n")
    (rules / "fixtures" / "no-such-rule").mkdir()
    result = run("rules", "test", str(rules))
    assert result.exit_code == 1
    out = result.stdout
    assert f"FAIL  {rules / 'fixtures' / 'no-such-rule'}: matches no rule" in out
    assert "        does not fire on PeerAuthentication prod-payments/other" in out
    assert "        fires on PeerAuthentication prod-payments/default, which the fixture does not expect" in out
    assert "        fires on PeerAuthentication prod-a/x: allows plaintext (DISABLE) in production namespace prod-a" in out
    assert out.splitlines()[-1] == "1 rules, 3 fixtures, 3 failed"


def test_rules_test_requires_pass_and_fail_fixtures(tmp_path):
    rules = copy_example(tmp_path)
    shutil.rmtree(rules / "fixtures")
    result = run("rules", "test", str(rules))
    assert result.exit_code == 1 and "prod-permissive-mtls: no fail fixture" in result.stdout


def test_rules_validate_reports_every_broken_file(tmp_path):
    rules = copy_example(tmp_path)
    (rules / "bad-cel.yaml").write_text((rules / "prod-permissive-mtls.yaml").read_text()
                                         .replace("id: prod-permissive-mtls", "id: bad-cel").replace("facts.namespace.startsWith", "facts.namespace.("))
    (rules / "waypoint-missing.yaml").write_text((rules / "prod-permissive-mtls.yaml").read_text()
                                                  .replace("id: prod-permissive-mtls", "id: waypoint-missing"))
    (rules / "misnamed.yaml").write_text((rules / "prod-permissive-mtls.yaml").read_text().replace("id: prod-permissive-mtls", "id: other"))
    result = run("rules", "validate", str(rules))
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert any(e.startswith(f"mesh-audit: error: {rules / 'bad-cel.yaml'}:") and "'when' is not valid CEL" in e for e in errors)
    assert f"mesh-audit: error: {rules / 'waypoint-missing.yaml'}:1: rule id or alias 'waypoint-missing' is already used by a built-in rule" in errors
    assert f"mesh-audit: error: {rules / 'misnamed.yaml'}:1: rule id 'other' does not match the file name 'misnamed.yaml'" in errors
    assert run("rules", "validate", str(EXAMPLE)).stdout == "1 rule file valid\n"


def test_a_broken_rules_dir_stops_a_scan_with_exit_2(tmp_path):
    rules = copy_example(tmp_path)
    (rules / "prod-permissive-mtls.yaml").write_text("id: prod-permissive-mtls\n")
    result = run("scan", "-f", str(ROOT / "fixtures" / "demo"), "--rules-dir", str(rules))
    assert result.exit_code == 2 and result.stderr == f"mesh-audit: error: {rules / 'prod-permissive-mtls.yaml'}:1: 'applies_to' is required\n"


import pytest  # noqa: E402

from conftest import FIXTURES  # noqa: E402


@pytest.mark.parametrize("stem, message", [
    ("when-not-bool", "'when' gave int, not a boolean"),
    ("message-not-string", "'message' gave bool, not a string"),
    ("bad-severity-expression", "'severity_expression' gave 'fatal', not one of error, warning, info"),
    ("type-error", "matching overload"),
])
def test_a_rule_that_fails_on_the_input_is_an_error_on_stderr_and_exit_2(tmp_path, stem, message):
    """A custom rule whose expression fails or gives the wrong type when evaluated is a
    rule to fix: one line on stderr naming its file, rule and object, exit 2 (never a
    green gate with the failure only in the report)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(FIXTURES / "broken-rules" / f"{stem}.yaml", rules / f"{stem}.yaml")
    manifest = tmp_path / "ns.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    result = run("scan", str(manifest), "--rules-dir", str(rules), "--select", stem, "-o", "json")
    assert result.exit_code == 2
    [line] = [x for x in result.stderr.splitlines() if x.startswith("mesh-audit: error:")]
    assert line.startswith(f"mesh-audit: error: {rules / (stem + '.yaml')}: rule {stem} on Namespace shop: ")
    assert message in line
    assert [e["rule"] for e in json.loads(result.stdout)["errors"]] == [stem]
