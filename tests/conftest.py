from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.collect.files import load_paths
from auditor.engine import evaluate
from auditor.facts.context import Context
from auditor.rulebook import load_rules
from auditor.rulebook.cel import BACKEND_NAMES, get_backend
from auditor.model.snapshot import K8sObject, Snapshot

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DEMO = str(FIXTURES / "demo")  # the bundled demo: the README's first command scans it


def run(*args, input=None, env=None):
    """mesh-audit's command line, in this process (click's runner); arguments may be paths."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)

# Tables as wide as a finding's line: where a checkout lies (its path's length) must not
# decide where a message wraps. The tests of wrapping set COLUMNS themselves.
os.environ["COLUMNS"] = "250"


def available_backends() -> list[str]:
    names = []
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
        except Exception:
            continue
        names.append(name)
    return names


@pytest.fixture(scope="session")
def rules():
    return load_rules()


def snapshot_of(*docs: dict) -> Snapshot:
    return Snapshot(K8sObject(d) for d in docs)


def context_of(*docs: dict, **kwargs) -> Context:
    return Context(snapshot_of(*docs), **kwargs)


def audit(snapshot: Snapshot, rules, istio_version=None, options=None, jobs=None, backend=None):
    """The engine on its own: rules over a snapshot's context, nothing of the CI gate."""
    return evaluate(Context(snapshot, istio_version, options), rules, backend=backend, jobs=jobs)


def load_snapshot(*paths) -> Snapshot:
    result = load_paths([str(p) for p in paths])
    assert not result.errors, result.errors
    return result.snapshot()


def findings_for(rule_id: str, *paths, rules=None, **kwargs) -> set[str]:
    report = audit(load_snapshot(*paths), rules or load_rules(), **kwargs)
    assert not report.errors, report.errors
    return {str(f.object) for f in report.findings if f.rule == rule_id}


def cluster_objects() -> list[dict]:
    """The demo shop as a live cluster holds it: manifests plus CRDs, pods, webhooks, a Secret
    (read as written: the loader's projection of running pods must not reach the server)."""
    import yaml

    docs = []
    for path in sorted((FIXTURES / "demo").glob("*.yaml")) + sorted((FIXTURES / "cluster").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.fixture
def api(tmp_path):
    """The API test server with the demo cluster; `api.kubeconfig_path` points at it."""
    from kube_api.server import ApiServer

    with ApiServer(cluster_objects()) as server:
        server.kubeconfig_path = server.kubeconfig(tmp_path / "kubeconfig")
        yield server
