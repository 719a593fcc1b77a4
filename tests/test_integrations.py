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
from conftest import FIXTURES, ROOT

VALIDATOR = ROOT.parent / "shared" / "sarif" / "validate_sarif.py"
BIN = Path(sys.executable).parent


def mesh_audit_on_path() -> dict:
    if not (BIN / "mesh-audit").exists():
        pytest.skip("the mesh-audit console script is not installed next to this Python")
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_step(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def validate(path: Path) -> None:
    if VALIDATOR.exists():
        check = subprocess.run([sys.executable, str(VALIDATOR), str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_composite_action_scan_step(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = {s.get("name", s.get("uses")): s for s in action["runs"]["steps"]}
    scan = steps["Scan"]
    assert "${{" not in scan["run"], "inputs must reach the script through env, not be spliced into it"
    shutil.copytree(FIXTURES / "demo", tmp_path / "k8s")
    output = tmp_path / "github_output"
    env = {**mesh_audit_on_path(), "GITHUB_OUTPUT": str(output)}
    defaults = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    for key, template in scan["env"].items():
        name = template.removeprefix("${{ inputs.").removesuffix(" }}")
        env[key] = {**defaults, "paths": "k8s"}[name]
    result = run_step(scan["run"], tmp_path, env)
    assert result.returncode == 1  # the demo has errors and fail-on defaults to error
    assert output.read_text() == "exit-code=1\n"
    assert any(line.startswith("::error file=k8s/payments.yaml,line=35,") for line in result.stdout.splitlines())
    validate(tmp_path / defaults["sarif-file"])
    assert json.loads((tmp_path / defaults["sarif-file"]).read_text())["runs"][0]["results"]


def test_example_workflow_steps(tmp_path):
    workflow = yaml.safe_load((ROOT / ".github" / "examples" / "mesh-audit.yml").read_text())
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["mesh-audit"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    shutil.copytree(FIXTURES / "demo", tmp_path / "k8s")
    env = mesh_audit_on_path()
    codes = {}
    for step in steps:
        if "run" not in step or step["name"] == "Install mesh-audit":  # installing needs the package index
            continue
        result = run_step(step["run"], tmp_path, env)
        codes[step["name"]] = result.returncode
        if step["name"] == "Annotate the pull request":
            assert result.stdout.startswith("::")
    assert codes == {"Scan manifests": 0, "Annotate the pull request": 0, "Gate": 1}
    sarif = tmp_path / upload["with"]["sarif_file"]
    validate(sarif)


def test_pre_commit_hooks_run_on_changed_files_and_directories():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    changed = [str(FIXTURES / "demo" / "checkout.yaml"), str(FIXTURES / "demo" / "legacy.yaml")]
    argv = shlex.split(hooks["mesh-audit"]["entry"])[1:] + changed  # pre-commit appends the file names
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout  # checkout's conflict is a warning
    assert hooks["mesh-audit-all"]["pass_filenames"] is False
    argv = shlex.split(hooks["mesh-audit-all"]["entry"])[1:] + [str(FIXTURES / "demo")]  # args: [k8s/]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 1 and "authz-l7-at-ztunnel" in result.stdout
