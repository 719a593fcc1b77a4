"""auditor.api as a Python user meets it: import, call, inspect the findings; and the same
report the CLI renders."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from auditor import api
from auditor.cli import cli
from conftest import DEMO, ROOT



def test_the_readme_example_runs_as_written():
    """The README's Python block, run from the repository root in a fresh interpreter."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## From Python.*?```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 5
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("error authz-l7-at-ztunnel AuthorizationPolicy payments/payments-read-only ") for line in lines)


def test_scan_gives_the_findings_the_cli_reports():
    report = api.scan([DEMO])
    cli_doc = json.loads(CliRunner().invoke(cli, ["scan", "-f", DEMO, "-o", "json"]).stdout)
    assert [f.to_dict() for f in report.findings] == cli_doc["findings"]
    assert report.exit_code() == 1 and report.fail_on == "error"
    assert report.collection == {"source": "files", "files_read": 8}


def test_load_then_audit_with_settings():
    snapshot = api.load([DEMO])
    assert len(snapshot) > 20 and snapshot.errors == [] and snapshot.collection["source"] == "files"
    report = api.audit(snapshot, api.Settings(istio_version="1.24", select=("waypoint-missing", "authz-l7-at-ztunnel")))
    assert report.istio_version == "1.24.0" and report.version_source == "--istio-version"
    assert {f.rule for f in report.findings} == {"waypoint-missing", "authz-l7-at-ztunnel"}  # and nothing else
    assert {r.id for r in report.rules} == {"waypoint-missing", "authz-l7-at-ztunnel"}


def test_a_config_file_and_ignores_apply(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_text("fail_on: warning\nrules:\n  authz-l7-at-ztunnel: off\n")
    report = api.scan([DEMO], api.Settings(config=str(config), ignores=("virtualservice-no-waypoint",)))
    assert "authz-l7-at-ztunnel" not in {f.rule for f in report.findings}
    ignored = [f for f in report.findings if f.rule == "virtualservice-no-waypoint"]
    assert ignored and all(f.suppressed for f in ignored)
    assert report.fail_on == "warning" and report.config_path == str(config)


def test_problems_in_the_input_do_not_raise(tmp_path):
    (tmp_path / "good.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: [\n")
    snapshot = api.load([str(tmp_path)])
    assert [o.name for o in snapshot] == ["shop"]
    assert [str(e) for e in snapshot.errors] == [f"{tmp_path / 'bad.yaml'}:3: invalid YAML: did not find expected node content"]
    report = api.audit(snapshot)
    assert [e["kind"] for e in report.errors] == ["input"]


@pytest.mark.parametrize("call, message", [
    (lambda: api.load(["/no/such/dir"]), "/no/such/dir: no such file or directory"),
    (lambda: api.scan([DEMO], api.Settings(select=("no-such-rule",))), "--select no-such-rule: no rule named 'no-such-rule'"),
    (lambda: api.scan([DEMO], api.Settings(istio_version="one")), "--istio-version: 'one' is not a version"),
    (lambda: api.load([DEMO], snapshot="x.json"), "use -f or --snapshot, not both"),
])
def test_what_cannot_go_on_raises_usage_error(call, message):
    with pytest.raises(api.UsageError) as info:
        call()
    assert str(info.value).startswith(message)


def test_a_live_cluster_through_the_api(api_server):
    snapshot = api.load(api.ClusterSource(kubeconfig=api_server.kubeconfig_path, namespaces=("payments",)))
    assert snapshot.collection["source"] == "cluster" and snapshot.collection["namespaces"] == ["payments"]
    report = api.audit(snapshot)
    assert report.findings and {f.object.namespace for f in report.findings} <= {"payments", None}


def test_context_exposes_the_facts_behind_a_finding():
    from auditor.facts.subjects import facts_for

    snapshot = api.load([DEMO])
    ctx = api.context(snapshot)
    policy = api.find_object(snapshot, "AuthorizationPolicy/payments/payments-read-only")
    facts = facts_for(ctx, policy)
    assert facts["enforced_by"] == ["ztunnel"] and "to.operation.methods" in facts["l7_attributes"]


@pytest.fixture
def api_server(tmp_path):
    from kube_api.server import ApiServer

    from conftest import cluster_objects

    with ApiServer(cluster_objects()) as server:
        server.kubeconfig_path = server.kubeconfig(tmp_path / "kubeconfig")
        yield server
