"""The release path: the wheel holds everything mesh-audit needs (rules, schemas, every
package) and works installed away from the checkout, as the release workflow checks
before it publishes."""

from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import ROOT


def test_the_release_workflow_builds_tests_and_publishes_on_a_version_tag():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as true
    build = [s.get("run", s.get("uses", "")) for s in workflow["jobs"]["build"]["steps"]]
    assert any("python -m build" in s for s in build) and any(".ci/test-wheel dist/*.whl" in s for s in build)
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    assert publish["steps"][-1]["uses"].startswith("pypa/gh-action-pypi-publish@")


def test_the_release_workflow_builds_checks_and_pushes_the_pinned_image():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    image = workflow["jobs"]["image"]
    assert image["needs"] == "build" and image["permissions"]["packages"] == "write"
    push = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert push["with"]["file"] == "deploy/Dockerfile" and push["with"]["push"] is True
    assert "${{ github.ref_name }}" in push["with"]["tags"]
    check = next(s for s in image["steps"] if "docker run" in s.get("run", ""))
    assert "--version" in check["run"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    base = next(line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM "))
    assert base.count(".") >= 2 and "latest" not in base  # a patch release, not a moving tag
    assert "--constraint" in dockerfile and "[serve]" in dockerfile
    pins = [line for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
    names = {line.split("==")[0].lower().replace("_", "-") for line in pins}
    assert {"kubernetes", "prometheus-client", "click", "orjson"} <= names
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", "bench"} <= set(ignored)


def test_the_wheel_works_installed_away_from_the_checkout(tmp_path):
    """Build the wheel and run .ci/test-wheel on it: a fresh virtualenv, its dependencies
    from the package index, the demo scan, the catalog and a custom rule's tests."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("mesh_audit-*.whl")
    done = subprocess.run(["bash", str(ROOT / ".ci" / "test-wheel"), str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip().endswith(f"the wheel works: {wheel.name}")
