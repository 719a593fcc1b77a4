"""The GitHub Action, the example workflow and the pre-commit hooks, run locally as far as
they can be without GitHub: their shell steps execute here against the demo."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditor.cli import cli
from sarif_check import check_sarif
from conftest import FIXTURES, ROOT

BIN = Path(sys.executable).parent


def mesh_audit_on_path() -> dict:
    if not (BIN / "mesh-audit").exists():
        pytest.skip("the mesh-audit console script is not installed next to this Python")
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_step(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def validate(path: Path) -> None:
    check_sarif(path)


def action_env(action: dict, tmp_path: Path, **inputs) -> dict:
    """The environment GitHub gives the Scan step: its inputs (defaults, then these), and
    the runner's files for outputs and the step summary."""
    scan = next(s for s in action["runs"]["steps"] if s.get("name") == "Scan")
    values = {**{name: spec.get("default", "") for name, spec in action["inputs"].items()}, **inputs}
    env = {**mesh_audit_on_path(), "GITHUB_OUTPUT": str(tmp_path / "github_output"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"), "RUNNER_TEMP": str(tmp_path / "runner"),
           "GITHUB_ACTION_PATH": str(ROOT)}
    (tmp_path / "runner").mkdir(exist_ok=True)
    for key, template in scan["env"].items():
        if template.startswith("${{ inputs."):
            env[key] = values[template.removeprefix("${{ inputs.").removesuffix(" }}")]
        elif key == "MESH_AUDIT_BIN":  # the action's own environment: here, the one running the tests
            env[key] = str(BIN / "mesh-audit")
    return env


def outputs(tmp_path: Path) -> dict:
    return dict(line.split("=", 1) for line in (tmp_path / "github_output").read_text().splitlines())


def test_the_action_scans_once_for_sarif_annotations_summary_and_counts(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    scan = next(s for s in action["runs"]["steps"] if s.get("name") == "Scan")
    assert "${{" not in scan["run"], "inputs must reach the script through env, not be spliced into it"
    shutil.copytree(FIXTURES / "demo", tmp_path / "k8s")
    result = run_step(scan["run"], tmp_path, action_env(action, tmp_path, paths="k8s"))
    assert result.returncode == 1  # the demo has errors, and with no fail-on input the default gate is error
    assert result.stderr.count("mesh-audit: error") == 0
    out = outputs(tmp_path)
    assert out["exit-code"] == "1" and out["sarif-file"] == "mesh-audit.sarif"
    assert (out["errors"], out["warnings"], out["info"], out["findings"]) == ("4", "6", "2", "12")
    assert any(line.startswith("::error file=k8s/payments.yaml,line=50,") for line in result.stdout.splitlines())
    assert (tmp_path / "step_summary.md").read_text().startswith("<!-- mesh-audit -->\n## mesh-audit")
    validate(tmp_path / "mesh-audit.sarif")
    assert set(out) <= {o for o in action["outputs"]} | {"complete"}
    assert all(f"steps.scan.outputs.{name}" in spec["value"] for name, spec in action["outputs"].items())


def test_the_action_leaves_the_gate_to_the_configuration_unless_told(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    scan = next(s for s in action["runs"]["steps"] if s.get("name") == "Scan")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "vs.yaml").write_text((FIXTURES / "demo" / "storefront.yaml").read_text())
    (tmp_path / ".mesh-audit.yaml").write_text("fail_on: never\n")
    assert run_step(scan["run"], tmp_path, action_env(action, tmp_path, paths="k8s")).returncode == 0
    (tmp_path / ".mesh-audit.yaml").write_text("fail_on: info\n")
    assert run_step(scan["run"], tmp_path, action_env(action, tmp_path, paths="k8s")).returncode == 1
    (tmp_path / "step_summary.md").unlink()
    told = action_env(action, tmp_path, paths="k8s", **{"fail-on": "never", "category": "team-a", "summary": "false",
                                                         "annotations": "false"})
    result = run_step(scan["run"], tmp_path, told)
    assert result.returncode == 0 and result.stdout == "" and not (tmp_path / "step_summary.md").exists()
    assert json.loads((tmp_path / "mesh-audit.sarif").read_text())["runs"][0]["automationDetails"] == {"id": "team-a/"}


def test_the_readme_shows_the_job_ci_runs():
    """README "In CI" quotes .github/workflows/ci.yml's action job, which runs the Action on the demo."""
    import re

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## In CI.*?```yaml\n(.*?)```", readme, re.S).group(1)
    quoted = yaml.safe_load(block)
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert quoted == {"action": ci["jobs"]["action"]}
    uses = [s.get("uses") for s in ci["jobs"]["action"]["steps"]]
    assert "./" in uses and any(u and u.startswith("github/codeql-action/upload-sarif") for u in uses)
    assert next(s for s in ci["jobs"]["action"]["steps"] if s.get("uses") == "./")["with"]["paths"] == "fixtures/demo"


def test_example_workflow_uses_the_action(tmp_path):
    workflow = yaml.safe_load((ROOT / ".github" / "examples" / "mesh-audit.yml").read_text())
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["mesh-audit"]["steps"]
    mine = next(s for s in steps if s.get("uses", "").split("@")[0].endswith("/mesh-audit"))
    assert set(mine["with"]) <= set(action["inputs"])  # every input it sets exists
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == f"${{{{ steps.{mine['id']}.outputs.sarif-file }}}}" and upload["if"] == "always()"
    # and the Action does with those inputs what the workflow expects
    for folder in mine["with"]["paths"].split():
        shutil.copytree(FIXTURES / "demo", tmp_path / folder)
    scan = next(s for s in action["runs"]["steps"] if s.get("name") == "Scan")
    result = run_step(scan["run"], tmp_path, action_env(action, tmp_path, **mine["with"]))
    assert result.returncode == 1
    validate(tmp_path / outputs(tmp_path)["sarif-file"])


def test_pre_commit_hooks_run_on_changed_files_and_directories(tmp_path, monkeypatch):
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert not any("--fail-on" in h["entry"] for h in hooks.values())  # .mesh-audit.yaml decides
    changed = [str(FIXTURES / "demo" / "checkout.yaml"), str(FIXTURES / "demo" / "legacy.yaml")]
    argv = shlex.split(hooks["mesh-audit"]["entry"])[1:] + changed  # pre-commit appends the file names
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout  # checkout's conflict is a warning
    assert hooks["mesh-audit-all"]["pass_filenames"] is False
    argv = shlex.split(hooks["mesh-audit-all"]["entry"])[1:] + [str(FIXTURES / "demo")]  # args: [k8s/]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 1 and "authz-l7-at-ztunnel" in result.stdout
    shutil.copytree(FIXTURES / "demo", tmp_path / "k8s")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "a-cluster-it-must-not-touch"))
    result = CliRunner().invoke(cli, shlex.split(hooks["mesh-audit-all"]["entry"])[1:], catch_exceptions=False)  # no args
    assert result.exit_code == 1 and "k8s/payments.yaml" in result.stdout  # the repository, not a cluster


def test_the_changed_files_hook_passes_a_commit_with_no_kubernetes_yaml(tmp_path):
    """A commit touching only a workflow file and a Helm values file has nothing to audit:
    the hook passes instead of failing the commit with an error -q would hide."""
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    (tmp_path / "ci.yml").write_text("on: [push]\njobs: {build: {runs-on: ubuntu-latest, steps: []}}\n")
    (tmp_path / "values.yaml").write_text("replicas: 2\nimage: {tag: '1.0'}\n")
    argv = shlex.split(hooks["mesh-audit"]["entry"])[1:] + [str(tmp_path / "ci.yml"), str(tmp_path / "values.yaml")]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "No findings" in result.stdout
    broken = tmp_path / "broken.yaml"  # a file that does not parse still fails the commit
    broken.write_text("kind: [\n")
    assert CliRunner().invoke(cli, shlex.split(hooks["mesh-audit"]["entry"])[1:] + [str(broken)]).exit_code == 2


def test_the_action_keeps_the_jobs_python_and_caches_its_own_environment(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    steps = action["runs"]["steps"]
    assert not any(str(s.get("uses", "")).startswith("actions/setup-python") for s in steps)
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache"))
    assert cache["with"] == {"path": "${{ steps.env.outputs.venv }}", "key": "${{ steps.env.outputs.key }}"}
    locate = next(s for s in steps if s.get("id") == "env")

    def located(against: str) -> dict:
        out = tmp_path / f"out-{against or 'files'}"
        env = {**os.environ, "GITHUB_ACTION_PATH": str(ROOT), "RUNNER_TOOL_CACHE": str(tmp_path / "cache"),
               "GITHUB_OUTPUT": str(out), "MESH_AUDIT_AGAINST": against}
        assert run_step(locate["run"], tmp_path, env).returncode == 0
        return dict(line.split("=", 1) for line in out.read_text().splitlines())

    files, cluster = located(""), located("cluster")
    assert files["venv"].startswith(str(tmp_path / "cache" / "mesh-audit")) and files["extras"] == ""
    assert cluster["extras"] == "[cluster]" and cluster["venv"] != files["venv"] and cluster["key"] != files["key"]
    # A cached environment is used as it is: nothing is installed again.
    venv = Path(files["venv"])
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "mesh-audit").symlink_to(BIN / "mesh-audit")
    install = next(s for s in steps if s.get("name") == "Install mesh-audit")
    done = run_step(install["run"], tmp_path, {**os.environ, "GITHUB_ACTION_PATH": str(ROOT),
                                                "MESH_AUDIT_VENV": str(venv), "MESH_AUDIT_EXTRAS": ""})
    assert done.returncode == 0 and done.stdout.strip() == f"mesh-audit: using the cached install in {venv}"
