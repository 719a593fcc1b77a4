"""deploy/: a Kustomize base and two overlays (cronjob, serve) that render with `kubectl
kustomize`, run commands the CLI accepts, probe what serve serves, and grant exactly the
requests serve makes: reads of what it audits, writes of its reports only."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from auditor.cli import cli
from conftest import ROOT, cluster_objects
from test_cli_cluster import _allowed

DEPLOY = ROOT / "deploy"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def render(folder: Path) -> list[dict]:
    done = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def one(docs: list[dict], kind: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


@needs_kubectl
def test_both_overlays_render_on_the_shared_base():
    base = {(d["kind"], d["metadata"]["name"]) for d in render(DEPLOY / "base")}
    assert ("ServiceAccount", "mesh-audit") in base and ("ClusterRole", "mesh-audit-reports") in base
    for overlay, workload in (("cronjob", "CronJob"), ("serve", "Deployment")):
        docs = render(DEPLOY / overlay)
        assert base <= {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert one(docs, workload)["metadata"]["namespace"] == "mesh-audit"


@needs_kubectl
def test_the_serve_deployment_probes_and_scrapes_what_serve_serves():
    docs = render(DEPLOY / "serve")
    deployment, service = one(docs, "Deployment"), one(docs, "Service")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # never two writers
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    [container] = pod["containers"]
    assert container["args"][0] == "serve"
    params = cli.get_command(None, "serve").make_context("serve", list(container["args"][1:])).params
    port = params["metrics_addr"][1]
    [declared] = container["ports"]
    assert declared["containerPort"] == port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": declared["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": declared["name"]}
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == declared["name"]


@needs_kubectl
def test_the_servicemonitor_component_scrapes_the_metrics_service(tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY / "serve", overlay)],
        "components": [os.path.relpath(DEPLOY / "components" / "servicemonitor", overlay)]}))
    docs = render(overlay)
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def _verb(request) -> str:
    if request.method == "GET":
        if request.query.get("watch") == "1":
            return "watch"
        parts = request.path.strip("/").split("/")
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest and rest[0] == "namespaces" and len(rest) >= 3:
            rest = rest[2:]
        return "get" if len(rest) > 1 else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[request.method]


@needs_kubectl
def test_the_base_grants_every_request_serve_makes_and_writes_only_reports(tmp_path):
    from test_serve import Serving, crds, PAYMENTS_POLICY
    from kube_api.server import ApiServer

    docs = render(DEPLOY / "base")
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    writer = next(r for r in roles if r["metadata"]["name"] == "mesh-audit-reports")
    assert {res for rule in writer["rules"] for res in rule["resources"]} == {
        "policyreports", "clusterpolicyreports", "reports", "clusterreports"}
    readers = [r for r in roles if r is not writer]
    assert {v for r in readers for rule in r["rules"] for v in rule.get("verbs", [])} <= {"get", "list", "watch"}
    with ApiServer(cluster_objects() + crds()) as server:
        server.bookmark_interval = 0.1
        s = Serving(server, server.kubeconfig(tmp_path / "kc"))
        s.thread.start()
        try:
            s.wait_rounds(1)
            server.remove_object(*PAYMENTS_POLICY)
            s.wait_rounds(2)
        finally:
            s.stop.set()
            s.thread.join(10)
        checked = 0
        for r in list(server.requests):
            parts = r.path.strip("/").split("/")
            if parts[0] not in ("api", "apis") or len(parts) <= (2 if parts[0] == "api" else 3):
                continue  # discovery and /version
            group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
            namespace = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                namespace, rest = rest[1], rest[2:]
            name = rest[1] if len(rest) > 1 else None
            selector = r.query.get("fieldSelector") or ""
            if selector.startswith("metadata.name="):  # the API server authorizes such a list or watch by that name
                name = selector.partition("=")[2]
            assert _allowed(roles, group, rest[0], _verb(r), name, namespace), f"{r.method} {r.path} {r.query} is not granted"
            checked += 1
    assert checked
    # serve's watch threads end once the server has closed their streams: give them a moment.
    end = time.monotonic() + 10
    while threading.active_count() >= 50 and time.monotonic() < end:
        time.sleep(0.05)
    assert threading.active_count() < 50
