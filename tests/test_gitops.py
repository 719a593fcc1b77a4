"""A GitOps repository scanned in one command, as a CI job runs it (fixtures/gitops):
plain manifests, a Helm chart, a Kustomize base with two overlays, a folder the
configuration excludes and one .gitignore leaves out. Findings land on the right files
and lines: the template a chart object came from, the base file an overlay's object came
from, the field each finding is about.

This machine has no helm binary: the tests put tests/helm_standin.py on the PATH as
`helm`. Kustomize runs for real (`kubectl kustomize`, or `kustomize` when installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sarif_check import check_sarif
from conftest import FIXTURES, ROOT

HAS_KUSTOMIZE = bool(shutil.which("kustomize") or shutil.which("kubectl"))
needs_kustomize = pytest.mark.skipif(not HAS_KUSTOMIZE, reason="neither kustomize nor kubectl is installed here")

EXPECTED = [  # rule, object, file, line, field
    ("authz-l7-at-ztunnel", "AuthorizationPolicy orders-prod/orders-read", "kustomize/base/authz.yaml", 14,
     "/spec/rules/0/to/0/operation/methods"),
    ("authz-l7-at-ztunnel", "AuthorizationPolicy shop/shop-read-only", "charts/shop/templates/authz.yaml", 17,
     "/spec/rules/0/to/0/operation/methods"),
    ("waypoint-missing", "Namespace payments", "apps/payments.yaml", 8, "/metadata/labels/istio.io~1use-waypoint"),
]


@pytest.fixture
def repo(tmp_path) -> Path:
    """fixtures/gitops as a git work tree, with a rendered/ folder .gitignore leaves out."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "gitops", repo)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("rendered/\n")
    (repo / "rendered").mkdir()
    (repo / "rendered" / "scratch.yaml").write_text("kind: [this does not parse\n")
    return repo


@pytest.fixture
def helm_on_path(tmp_path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'helm_standin.py'} \"$@\"\n")
    helm.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def scan(repo: Path, *args, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "auditor", "scan", *args], cwd=cwd or repo, env=environment,
                          capture_output=True, text=True, timeout=300)


def findings(stdout: str) -> list[tuple]:
    doc = json.loads(stdout)
    ref = lambda o: f"{o['kind']} {o['namespace'] + '/' if o['namespace'] else ''}{o['name']}"  # noqa: E731
    return sorted((f["rule"], ref(f["object"]), f["location"]["file"], f["location"]["line"], f["location"].get("field"))
                  for f in doc["findings"])


@needs_kustomize
def test_the_repository_scans_in_one_command_with_findings_at_their_sources(repo, helm_on_path):
    result = scan(repo, ".", "-o", "json", "-o", "sarif=mesh-audit.sarif", env=helm_on_path)
    assert result.returncode == 1, result.stderr  # errors, and the config's fail_on is error
    assert result.stderr == ""  # legacy/ excluded, rendered/ ignored, .mesh-audit.yaml not taken for a manifest
    assert findings(result.stdout) == EXPECTED
    collection = json.loads(result.stdout)["collection"]
    assert collection["rendered"] == [
        {"path": "charts/shop", "by": "helm", "objects": 4},
        {"path": "kustomize/overlays/prod", "by": "kustomize", "objects": 4},
        {"path": "kustomize/overlays/staging", "by": "kustomize", "objects": 4},  # the base only through them
    ]
    assert collection["files_read"] == 1 and collection["not_rendered"] == []
    sarif = json.loads((repo / "mesh-audit.sarif").read_text())
    regions = sorted((r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                      r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in sarif["runs"][0]["results"])
    assert regions == sorted((file, line) for _, _, file, line, _ in EXPECTED)
    check_sarif(repo / "mesh-audit.sarif")


@needs_kustomize
def test_the_staging_overlay_runs_sidecars_so_its_policy_is_fine(repo, helm_on_path):
    """The same base policy: an error where ztunnel enforces it (prod), none where the
    sidecars do (staging), as each overlay deploys it."""
    doc = json.loads(scan(repo, "kustomize", "-o", "json", env=helm_on_path).stdout)
    namespaces = {f["object"]["namespace"] for f in doc["findings"]}
    assert namespaces == {"orders-prod"}


@needs_kustomize
def test_from_a_subdirectory_paths_still_land_on_the_repository(repo, helm_on_path):
    (repo / "ci").mkdir()
    result = scan(repo, "..", "-o", "sarif", "--config", "../.mesh-audit.yaml", env=helm_on_path, cwd=repo / "ci")
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads(result.stdout)["runs"][0]["results"]}
    assert uris == {"apps/payments.yaml", "charts/shop/templates/authz.yaml", "kustomize/base/authz.yaml"}


@needs_kustomize
def test_without_helm_the_chart_is_named_and_listed_not_silently_dropped(repo):
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "helm").exists())
    result = scan(repo, ".", "-o", "json", env={"PATH": path})
    assert result.returncode == 1  # the other findings still gate
    assert result.stderr.strip() == ("mesh-audit: warning: charts/shop: not audited: helm is not installed "
                                     "(put it on the PATH to audit the chart as it renders)")
    doc = json.loads(result.stdout)
    assert doc["collection"]["not_rendered"] == [
        {"path": "charts/shop", "by": "helm", "reason": "helm is not installed (put it on the PATH to audit the chart as it renders)"}]
    assert "charts/shop/templates/authz.yaml" not in {f["location"]["file"] for f in doc["findings"]}
    strict = scan(repo, ".", "-o", "table", "--require-rendering", env={"PATH": path})
    assert strict.returncode == 3
    assert "Not collected (findings may be missing for these):\n  charts/shop: not rendered by helm" in strict.stdout


def test_a_broken_template_is_an_input_error_at_the_chart(repo, helm_on_path):
    (repo / "charts" / "shop" / "Chart.yaml").write_text("apiVersion: v2\n")  # no name: helm (the stand-in) fails
    result = scan(repo, "charts", "-o", "json", env=helm_on_path)
    assert result.returncode == 2
    assert result.stderr.startswith("mesh-audit: error: charts/shop: helm template failed: ")


@pytest.mark.parametrize("args, excluded", [
    (["--exclude", "apps/"], "apps/payments.yaml"),
    (["--exclude", "*.yaml", "--exclude", "!charts/"], "apps/payments.yaml"),
])
def test_exclude_patterns_on_the_command_line(repo, helm_on_path, args, excluded):
    result = scan(repo, "apps", "charts", "-o", "json", "--allow-empty", *args, env=helm_on_path)
    files = {f["location"]["file"] for f in json.loads(result.stdout)["findings"]}
    assert excluded not in files


def test_gitignored_files_are_read_when_asked_or_named(repo, helm_on_path):
    asked = scan(repo, ".", "-o", "json", "--no-gitignore", "--exclude", "kustomize/", env=helm_on_path)
    assert asked.returncode == 2 and "rendered/scratch.yaml:2: invalid YAML" in asked.stderr
    named = scan(repo, "rendered", "-o", "json", env=helm_on_path)  # the folder itself is ignored: named, it is read
    assert named.returncode == 2 and "rendered/scratch.yaml:2: invalid YAML" in named.stderr


def test_outside_a_git_work_tree_nothing_is_gitignored(tmp_path):
    (tmp_path / ".gitignore").write_text("*.yaml\n")
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    assert b'"objects": 1' in subprocess.run([sys.executable, "-m", "auditor", "scan", str(tmp_path), "-o", "json"],
                                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True).stdout
