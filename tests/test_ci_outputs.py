"""One scan, several reports, as a CI job wants them: SARIF GitHub can place from any
working directory, annotations, a summary; categories that keep scans apart; files with
the permissions the user's umask gives; colour only on a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sarif_check import check_sarif
from conftest import DEMO, ROOT, run

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio.io/use-waypoint: missing-wp}\n"


def test_one_scan_writes_every_report_asked_for(tmp_path):
    sarif, summary = tmp_path / "out.sarif", tmp_path / "summary.md"
    result = run("scan", "-f", DEMO, "-o", f"sarif={sarif}", "-o", "github", "-o", f"markdown={summary}")
    assert result.exit_code == 1
    assert result.stdout.startswith("::error file=fixtures/demo/")  # the annotations, on stdout
    assert json.loads(sarif.read_text())["runs"][0]["results"]
    assert summary.read_text().startswith("<!-- mesh-audit -->\n## mesh-audit")
    check_sarif(sarif)


@pytest.mark.parametrize("args, message", [
    (["-o", "json", "-o", "sarif"], "only one output can go to stdout"),
    (["-o", "yaml"], "'yaml' is not one of table, json, sarif, junit, markdown, github"),
    (["-o", "json", "-o", "sarif=x.sarif", "--output-file", "y.json"], "--output-file names the file of a single -o"),
])
def test_output_options_that_do_not_add_up(args, message):
    result = run("scan", "-f", DEMO, *args)
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.parametrize("args, expected", [
    ([], None),  # upload-sarif's category decides
    (["--category", "mesh-audit-prod"], "mesh-audit-prod/"),
    (["--cluster-name", "prod-eu1"], "mesh-audit/prod-eu1/"),
    (["--cluster-name", "prod-eu1", "--category", "eu"], "eu/"),
])
def test_automation_details_only_when_asked(args, expected):
    run_ = json.loads(run("scan", "-f", DEMO, "-o", "sarif", *args).stdout)["runs"][0]
    assert run_.get("automationDetails", {}).get("id") == expected


def _git_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "k8s").mkdir(parents=True)
    (repo / "ci").mkdir()
    (repo / "k8s" / "shop.yaml").write_text(NAMESPACE)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def test_paths_are_relative_to_the_repository_from_any_folder(tmp_path):
    repo = _git_repo(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "auditor", "scan", "../k8s", "-o", "sarif=../r.sarif", "-o", "github"],
                         cwd=repo / "ci", capture_output=True, text=True, env=env)
    doc = json.loads((repo / "r.sarif").read_text())
    [result] = doc["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "k8s/shop.yaml", "uriBaseId": "%SRCROOT%"}
    assert doc["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.as_uri() + "/"
    assert out.stdout.startswith("::error file=k8s/shop.yaml,line=5,")  # the label's line
    explicit = run("scan", str(repo / "k8s"), "-o", "sarif", "--repo-root", str(repo / "k8s"))
    [result] = json.loads(explicit.stdout)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "shop.yaml"


def test_source_map_moves_findings_of_a_dump_file_onto_the_manifests(tmp_path):
    (tmp_path / "git").mkdir()
    (tmp_path / "git" / "shop.yaml").write_text(NAMESPACE)
    live = {**__import__("yaml").safe_load(NAMESPACE), "status": {"phase": "Active"}}
    (tmp_path / "dump.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [live]}))
    doc = json.loads(run("scan", "-f", str(tmp_path / "dump.json"), "-o", "json", "--source-map", str(tmp_path / "git")).stdout)
    [finding] = doc["findings"]
    assert finding["location"] == {"file": str(tmp_path / "git" / "shop.yaml"), "line": 5,
                                   "field": "/metadata/labels/istio.io~1use-waypoint"}


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_report_files_get_the_umask_s_permissions(tmp_path, umask, mode):
    code = (f"import os, sys; os.umask({umask}); sys.argv = ['mesh-audit', 'scan', '-f', {DEMO!r}, '-o', "
            f"'json={tmp_path / 'r.json'}', '--write-baseline', {str(tmp_path / 'b.json')!r}]\n"
            "from auditor.cli import main\nmain()")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == mode


def test_colour_on_a_terminal_only():
    plain = run("scan", "-f", DEMO).stdout  # piped (the test runner is no terminal)
    assert "\x1b[" not in plain
    coloured = run("scan", "-f", DEMO, "--color", "always").stdout
    assert "\x1b[31m\x1b[1mERROR  authz-l7-at-ztunnel" in coloured and "\x1b[33m\x1b[22mWARNING" in coloured
    assert "\x1b[" not in run("scan", "-f", DEMO, "-o", "json", "--color", "always").stdout


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch):
    import importlib

    scan = importlib.import_module("auditor.cli.scan")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert scan.wants_color("auto") is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert scan.wants_color("auto") is False
    assert scan.wants_color("always") is True
