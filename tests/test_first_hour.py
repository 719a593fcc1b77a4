"""What a newcomer meets in the first hour: a table that fits the terminal, suggestions for
a mistyped rule, object or context, plain words in every format."""

from __future__ import annotations

import json
from pathlib import Path
import os
import re
import subprocess
import sys

import pytest

from conftest import DEMO, ROOT, run



@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", [("scan", "fixtures/demo"), ("plan", "fixtures/demo")])
def test_text_reports_fit_the_terminal_and_wrap_between_words(columns, command):
    result = subprocess.run([sys.executable, "-m", "auditor", *command], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)})
    lines = result.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= columns
    words = set(re.findall(r"[\w.-]+", result.stdout))
    for name in ("authz-l7-at-ztunnel", "payments/payments-read-only", "fixtures/demo/payments.yaml:50"):
        if command[0] == "scan":
            assert name.split("/")[-1] in words or name in result.stdout, name  # never cut inside a word
    assert "envoyfilter-" not in words  # a hyphenated rule id is not cut at its hyphen


def test_a_report_to_a_file_or_pipe_is_100_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS")
    result = run("scan", DEMO)
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


@pytest.mark.parametrize("args, suggestion", [
    (("scan", DEMO, "--select", "authz-l7-at-ztunel"), "(did you mean 'authz-l7-at-ztunnel'?)"),
    (("scan", DEMO, "--ignore", "waypoint-mising"), "(did you mean 'waypoint-missing'?)"),
    (("rules", "show", "waypont-missing"), "(did you mean 'waypoint-missing'?)"),
    (("explain", "Deployment/storefront/frontnd", "-f", DEMO), "(did you mean 'Deployment/storefront/frontend'?)"),
])
def test_a_mistyped_name_gets_a_suggestion(args, suggestion):
    result = run(*args)
    assert result.exit_code == 2
    assert suggestion in result.stderr


def test_an_unknown_context_lists_the_contexts_there_are(tmp_path):
    from kube_api.server import ApiServer

    with ApiServer([]) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", context="prod")
    result = run("scan", "--kubeconfig", kubeconfig, "--context", "prd")
    assert result.exit_code == 2
    assert result.stderr == (f"mesh-audit: error: {kubeconfig}: kubeconfig: no context named 'prd' (did you mean "
                             "'prod'?); it has: prod\n")


def test_a_finding_about_the_whole_cluster_has_a_plain_sarif_path():
    doc = json.loads(run("scan", DEMO, "-o", "sarif").stdout)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
            if r["properties"]["object"]["kind"] == "Cluster"}
    assert uris == {"k8s/_cluster"}
    named = json.loads(run("scan", DEMO, "-o", "sarif", "--cluster-name", "prod").stdout)
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in named["runs"][0]["results"]
            if r["properties"]["object"]["kind"] == "Cluster"} == {"k8s/prod/_cluster"}


def test_annotations_stop_at_what_github_shows_and_say_how_many_more(tmp_path):
    from auditor.model.report import Finding, ObjectRef, Report
    from auditor.reporters import github

    (tmp_path / "k8s.yaml").write_text("x\n" * 40)
    ref = lambda i: ObjectRef("v1", "Service", "shop", f"s{i}")  # noqa: E731
    findings = [Finding("r", "warning", f"w{i}", ref(i), (str(tmp_path / "k8s.yaml"), i + 1) if i % 3 == 0 else None,
                        False) for i in range(30)]
    findings += [Finding("e", "error", f"e{i}", ref(100 + i), None, True) for i in range(4)]
    text = github.render(Report(findings=findings, rules=[], objects=34, repo_root=str(tmp_path)))
    lines = text.splitlines()
    warnings = [x for x in lines if x.startswith("::warning ")]
    assert len(warnings) == 10 and len([x for x in lines if x.startswith("::error ")]) == 4
    assert all("file=k8s.yaml" in x for x in warnings)  # the ten on files of the repository come first
    assert ("mesh-audit: 20 more findings are not annotated (GitHub shows 10 of each severity per step); the step "
            "summary and the SARIF report list every one") in lines


def test_the_json_summary_names_input_errors_apart_from_error_findings(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    summary = json.loads(run("scan", DEMO, bad, "-o", "json").stdout)["summary"]
    assert summary["input_errors"] == summary["errors"] == 1 and summary["error"] == 4


def test_without_the_cluster_extra_a_live_scan_says_what_to_install(mocker, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    mocker.patch("importlib.util.find_spec", side_effect=lambda name, *a: None if name == "kubernetes" else real(name, *a))
    result = run("scan", "--kubeconfig", tmp_path / "kc")
    assert result.exit_code == 2
    assert result.stderr == ("mesh-audit: error: reading a live cluster needs the kubernetes client, which this install "
                             "of mesh-audit leaves out: pip install 'mesh-audit[cluster]' (files and snapshots need "
                             "nothing more)\n")
    assert run("scan", DEMO, "--fail-on", "never").exit_code == 0  # files need nothing more


class Terminal:
    """A stderr that says it is a terminal, and keeps what is written to it."""

    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_reading_a_large_input_shows_progress_on_a_terminal_and_clears_it(tmp_path, monkeypatch):
    from auditor.collect.files import load_paths
    from auditor.collect.status import Reading

    monkeypatch.setattr(Reading, "LARGE", 1000)  # the demo stands in for a large dump
    terminal = Terminal()
    result = load_paths([DEMO], progress=Reading(terminal))
    assert result.objects and not result.errors
    shown = [part.strip() for part in terminal.text.split("\r") if part.strip()]
    assert shown[0] == "reading: 1 of 8 files (0 MB of 0 MB)" and shown[-1].startswith("reading: 8 of 8 files (")
    assert terminal.text.endswith("\r") and terminal.text.rstrip("\r").split("\r")[-1].strip() == ""  # cleared
    one = Terminal()
    load_paths([str(Path(DEMO) / "payments.yaml")], progress=Reading(one))
    assert "reading: payments.yaml (0 MB)" in one.text
    quiet = Terminal()
    monkeypatch.setattr(Reading, "LARGE", 16 * 1024 * 1024)
    load_paths([DEMO], progress=Reading(quiet))
    assert quiet.text == ""  # a small input reads too fast to need it


def test_a_path_longer_than_the_terminal_is_the_one_thing_cut():
    from auditor.model.report import Finding, ObjectRef, Report
    from auditor.reporters import table
    from auditor.reporters.view import View

    path = "/" + "/".join(["a-rather-long-folder-name"] * 6) + "/policy.yaml"
    finding = Finding("r", "error", "the message of the finding", ObjectRef("v1", "Service", "shop", "cart"),
                      (path, 12), False)
    lines = table.render(Report(findings=[finding], rules=[], objects=1), View(width=80)).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "".join(line.strip() for line in lines).count(path.replace(" ", "") + ":12") == 1  # all of it, in pieces
