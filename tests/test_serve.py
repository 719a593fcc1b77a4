"""`mesh-audit serve` against the project's API test server: reports in the cluster that follow
the findings, metrics and probes, watches that survive expiry and dropped connections, an
incomplete collection that is never green, conflicting writes retried, SIGTERM, and a
process that writes nothing but its reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from auditor import api
from auditor.model.clusters import ClusterSource
from auditor.serve import ServeOptions, run
from auditor.serve.metrics import Metrics, start_server
from conftest import ROOT, cluster_objects
from crd_check import CRDS, check
from kube_api.server import ApiServer

REPORTS = ("wgpolicyk8s.io/v1alpha2", "PolicyReport")
CLUSTER_REPORTS = ("wgpolicyk8s.io/v1alpha2", "ClusterPolicyReport")
PAYMENTS_POLICY = ("security.istio.io/v1", "AuthorizationPolicy", "payments", "payments-read-only")
WAIT = 30.0


def crds() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))]


class Serving:
    """`serve` running in a thread against an ApiServer; `rounds` counts finished audits."""

    def __init__(self, server: ApiServer, kubeconfig: Path, **options):
        self.server, self.lines, self.stop = server, [], threading.Event()
        self.options = ServeOptions(source=ClusterSource(kubeconfig=str(kubeconfig), timeout=20),
                                    settings=api.resolve(api.Settings()), debounce=0.1, metrics_addr=("127.0.0.1", 0),
                                    log=self.lines.append, **options)
        self.code = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.code = run(self.options, self.stop)

    @property
    def rounds(self) -> list[str]:
        return [line for line in self.lines if " audit in " in line]

    def wait_rounds(self, n: int) -> str:
        end = time.monotonic() + WAIT
        while len(self.rounds) < n:
            assert time.monotonic() < end, f"only {len(self.rounds)} audits: {self.lines}"
            time.sleep(0.02)
        return self.rounds[n - 1]

    @property
    def metrics_url(self) -> str:
        line = next(line for line in self.lines if "metrics and probes on" in line)
        return "http://" + line.rsplit(" ", 1)[1]

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def metric(self, name: str, **labels) -> float | None:
        _, text = self.get("/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return None


@pytest.fixture
def serving(tmp_path):
    started = []

    def start(extra_objects=(), faults=(), **options) -> Serving:
        server = ApiServer(cluster_objects() + crds() + list(extra_objects)).start()
        server.bookmark_interval = 0.1
        for resource, fault in faults:
            server.fault(resource, **fault)
        s = Serving(server, server.kubeconfig(tmp_path / f"kubeconfig-{len(started)}"), **options)
        started.append(s)
        s.thread.start()
        return s

    yield start
    for s in started:
        s.stop.set()
        s.thread.join(10)
        s.server.stop()


def namespaces_with_reports(server: ApiServer) -> list[str]:
    return sorted(r["metadata"]["namespace"] for r in server.objects(*REPORTS))


def test_first_audit_writes_valid_reports_and_metrics(serving):
    s = serving()
    s.wait_rounds(1)
    reports = s.server.objects(*REPORTS)
    assert namespaces_with_reports(s.server) == ["catalog", "checkout", "istio-system", "payments", "storefront"]
    for report in reports + s.server.objects(*CLUSTER_REPORTS):
        stored = {k: v for k, v in report.items()}
        stored["metadata"] = {k: v for k, v in report["metadata"].items() if k in ("name", "namespace", "labels")}
        check(stored)
    payments = next(r for r in reports if r["metadata"]["namespace"] == "payments")
    result = next(r for r in payments["results"] if r["policy"] == "authz-l7-at-ztunnel")
    uid = s.server.get_object(*PAYMENTS_POLICY)["metadata"]["uid"]
    assert result["resources"][0]["uid"] == uid  # the live object's uid
    assert s.metric("mesh_audit_findings", namespace="payments", rule="authz-l7-at-ztunnel", severity="error") == 1
    assert s.metric("mesh_audit_coverage_complete") == 1
    assert s.metric("mesh_audit_last_audit_timestamp_seconds") > time.time() - 60
    assert s.metric("mesh_audit_audit_duration_seconds_count") == 1
    assert s.get("/readyz") == (200, "ok\n") and s.get("/healthz")[0] == 200


def test_changes_added_and_deleted_objects_and_a_namespace_whose_findings_go(serving):
    s = serving()
    assert "(cluster listed)" in s.wait_rounds(1)
    # Deleted: the payments policy's finding goes, and the report is replaced.
    s.server.remove_object(*PAYMENTS_POLICY)
    assert "(from watch events)" in s.wait_rounds(2)  # the change, not another list of the cluster
    payments = next(r for r in s.server.objects(*REPORTS) if r["metadata"]["namespace"] == "payments")
    assert "authz-l7-at-ztunnel" not in {r["policy"] for r in payments["results"]}
    assert s.metric("mesh_audit_findings", namespace="payments", rule="authz-l7-at-ztunnel", severity="error") is None
    # Added: a new namespace with a finding gets its report.
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "p", "namespace": "newshop"},
              "spec": {"targetRefs": [{"kind": "Service", "group": "", "name": "nowhere"}]}}
    s.server.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "newshop"}})
    s.server.put_object(policy)
    s.wait_rounds(3)
    assert "newshop" in namespaces_with_reports(s.server)
    # Changed: fixing it removes the namespace's only finding, and its report is deleted.
    s.server.remove_object("security.istio.io/v1", "AuthorizationPolicy", "newshop", "p")
    s.wait_rounds(4)
    assert "newshop" not in namespaces_with_reports(s.server)
    assert "1 deleted" in s.rounds[3]


def test_istios_config_maps_are_watched_by_name(serving):
    """The ConfigMaps read by name (mesh config, injector, istio-cni) are watched by name,
    present or not: a change to one, or one created, starts a round without a relist."""
    s = serving()
    s.wait_rounds(1)
    watched = {r.query.get("fieldSelector") for r in s.server.requests
               if r.path == "/api/v1/namespaces/istio-system/configmaps" and r.query.get("watch")}
    end = time.monotonic() + WAIT
    while len(watched) < 3 and time.monotonic() < end:  # the watches start after the first round
        time.sleep(0.05)
        watched = {r.query.get("fieldSelector") for r in s.server.requests
                   if r.path == "/api/v1/namespaces/istio-system/configmaps" and r.query.get("watch")}
    assert {"metadata.name=istio", "metadata.name=istio-sidecar-injector", "metadata.name=istio-cni-config"} <= watched
    mesh = s.server.get_object("v1", "ConfigMap", "istio-system", "istio")
    meta = {k: v for k, v in mesh["metadata"].items() if k != "resourceVersion"}
    s.server.put_object({**mesh, "metadata": meta, "data": {**mesh.get("data", {}), "mesh": "rootNamespace: istio-system\n"}})
    assert "(from watch events)" in s.wait_rounds(2)
    s.server.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-cni-config", "namespace": "istio-system"},
                         "data": {"AMBIENT_DNS_CAPTURE": "false"}})
    assert "(from watch events)" in s.wait_rounds(3)


def test_the_test_servers_watch_delivers_every_event_while_bookmarks_go_out():
    """An event stored while a watch waits is sent, not skipped by the bookmark that
    follows (a race that once made serve's benchmark miss changes)."""
    server = ApiServer(cluster_objects())
    server.bookmark_interval = 0  # a bookmark every time round the watch's loop
    deployment = server.objects("apps/v1", "Deployment")[0]
    path = f"/apis/apps/v1/deployments?watch=1&resourceVersion={server.version}&allowWatchBookmarks=true&timeoutSeconds=5"
    status, _, lines = server.handle("GET", path, {"authorization": "Bearer test-token"})
    assert status == 200

    def write():
        for i in range(40):
            time.sleep(0.013)
            meta = {k: v for k, v in deployment["metadata"].items() if k != "resourceVersion"}
            server.put_object({**deployment, "metadata": {**meta, "annotations": {"stamp": str(i)}}})

    writer = threading.Thread(target=write)
    writer.start()
    stamps = []
    for line in lines:
        event = yaml.safe_load(line)
        if event["type"] == "MODIFIED":
            stamps.append(event["object"]["metadata"]["annotations"]["stamp"])
            if len(stamps) == 40:
                break
    writer.join()
    assert stamps == [str(i) for i in range(40)]


def test_watch_expiry_relists_and_a_dropped_watch_starts_again(serving):
    s = serving()
    s.wait_rounds(1)
    s.server.compact()
    s.server.break_watches()  # every watch starts again from a version the server has forgotten: 410
    s.wait_rounds(2)  # the relist is a round of its own
    s.server.break_watches()  # dropped, not expired: the watches resume where they were
    time.sleep(0.5)
    s.server.remove_object(*PAYMENTS_POLICY)
    s.wait_rounds(3)
    assert s.metric("mesh_audit_watch_restarts_total") >= 1
    watches = [r for r in s.server.requests if r.query.get("watch") == "1"]
    assert watches and all(r.query.get("allowWatchBookmarks") == "true" for r in watches)


def test_a_failing_list_makes_coverage_incomplete_and_readyz_stale(serving):
    s = serving()
    s.wait_rounds(1)
    s.server.fault("pods", status=403)
    s.server.compact()
    s.server.break_watches()  # 410 on every watch: the cluster is listed again, and pods fail
    line = s.wait_rounds(2)
    assert "(cluster listed)" in line and "coverage INCOMPLETE" in line
    assert s.metric("mesh_audit_coverage_complete") == 0
    status, body = s.get("/readyz")
    assert status == 200 and "stale" in body


def test_a_watch_that_keeps_failing_is_never_green(serving):
    s = serving(faults=[("services", dict(status=500, method="WATCH"))])
    s.wait_rounds(2)  # the failing watch asks for a round, which reports it
    assert "watches failing: /api/v1/services" in s.rounds[1]
    assert s.metric("mesh_audit_coverage_complete") == 0


def test_conflicting_report_writes_are_read_again_and_retried(serving):
    s = serving(faults=[("policyreports.wgpolicyk8s.io", dict(status=409, times=2, method="PUT"))])
    s.wait_rounds(1)
    s.server.remove_object(*PAYMENTS_POLICY)
    line = s.wait_rounds(2)
    assert "1 replaced" in line and "2 conflicts retried" in line
    payments = next(r for r in s.server.objects(*REPORTS) if r["metadata"]["namespace"] == "payments")
    assert "authz-l7-at-ztunnel" not in {r["policy"] for r in payments["results"]}


def test_openreports_and_once(serving):
    s = serving(report="openreports", once=True)
    s.thread.join(WAIT)
    assert s.code == 1  # the demo has errors: scan's exit code
    assert sorted(r["metadata"]["namespace"] for r in s.server.objects("openreports.io/v1alpha1", "Report"))
    assert len(s.server.objects("openreports.io/v1alpha1", "ClusterReport")) == 1
    assert not s.server.objects(*REPORTS)


def test_serve_reads_everything_and_writes_only_its_reports(serving):
    s = serving()
    s.wait_rounds(1)
    s.server.remove_object(*PAYMENTS_POLICY)
    s.wait_rounds(2)
    lists = [r for r in s.server.requests if r.path == "/api/v1/pods" and r.query.get("watch") != "1"]
    assert len(lists) == 1  # the change came from the watch: the cluster was not listed again
    writes = [r for r in s.server.requests if r.method != "GET"]
    assert writes
    assert all("/apis/wgpolicyk8s.io/" in r.path for r in writes), [r.path for r in writes]
    assert not any("/secrets" in r.path for r in s.server.requests)


def test_metrics_server_says_not_ready_before_the_first_complete_audit():
    metrics = Metrics()
    server = start_server(metrics, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(url + "/readyz", timeout=5)
        assert not_ready.value.code == 503
        metrics.record({}, 0.5, time.time(), complete=False)  # an incomplete first audit is not ready either
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "/readyz", timeout=5)
        metrics.record({("r", "error", "ns"): 2}, 0.5, time.time(), complete=True)
        assert urllib.request.urlopen(url + "/readyz", timeout=5).status == 200
        assert 'mesh_audit_findings{namespace="ns",rule="r",severity="error"} 2.0' in metrics.expose().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_stops_serve_within_five_seconds(tmp_path):
    with ApiServer(cluster_objects() + crds()) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        proc = subprocess.Popen([sys.executable, "-m", "auditor", "serve", "--kubeconfig", str(kubeconfig),
                                 "--metrics-addr", "127.0.0.1:0"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            end = time.monotonic() + WAIT
            while not server.objects(*REPORTS):
                assert time.monotonic() < end and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
                time.sleep(0.05)
            time.sleep(0.3)  # watching now
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
            assert time.monotonic() - sent < 5
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stderr.close()


def test_a_taken_metrics_address_is_one_error_line(tmp_path):
    import socket

    with socket.socket() as taken, ApiServer(cluster_objects()) as server:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "auditor", "serve", "--kubeconfig", str(server.kubeconfig(tmp_path / "kc")),
                                 "--metrics-addr", f"127.0.0.1:{port}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.startswith("mesh-audit: error: cannot serve on") and "Traceback" not in result.stderr


def test_the_store_folds_events_in_as_the_collector_prepares_lists():
    from auditor.collect.cluster.resources import NODES, WEBHOOKS, WORKLOAD_TYPES
    from auditor.collect.collection import Collection
    from auditor.serve.store import Store

    store = Store(Collection(objects=[]))
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u", "labels": {"zone": "a"},
                                                             "annotations": {"big": "x" * 100}}, "status": {"images": []}}
    assert store.apply(NODES, "ADDED", node)
    assert store.objects[("Node", None, "n1")].raw == {"apiVersion": "v1", "kind": "Node",
                                                           "metadata": {"name": "n1", "uid": "u", "labels": {"zone": "a"}}}
    other = {"metadata": {"name": "not-istio"}, "webhooks": [{"name": "x.example.com"}]}
    assert not store.apply(WEBHOOKS, "ADDED", other)  # not an injector webhook: the audit never reads it
    pods = next(t for t in WORKLOAD_TYPES if t.kind == "Pod")
    pod = {"metadata": {"name": "p", "namespace": "a", "managedFields": [{"manager": "kubectl"}]},
           "spec": {"containers": [{"name": "c", "image": "x"}]}, "status": {"phase": "Running"}}
    assert store.apply(pods, "MODIFIED", pod)
    kept = store.objects[("Pod", "a", "p")]
    assert kept.kind == "Pod" and "managedFields" not in kept.raw["metadata"]
    assert store.apply(pods, "DELETED", pod) and ("Pod", "a", "p") not in store.objects
    assert not store.apply(pods, "DELETED", pod)  # already gone
    assert store.snapshot().collection["source"] == "cluster"


def test_the_store_holds_the_only_reference_to_what_it_replaces():
    """The collection hands its objects over to the store: an object a watch event replaces
    is freed, not kept by the collection record until the next relist (serve's memory grew
    by every replaced object before)."""
    import gc
    import weakref

    from auditor.collect.cluster.resources import WORKLOAD_TYPES
    from auditor.collect.collection import Collection
    from auditor.serve.store import Store

    class Marker:  # something in the listed object that a weak reference can follow
        pass

    deployments = next(t for t in WORKLOAD_TYPES if t.kind == "Deployment")
    marker = Marker()
    listed = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"},
              "spec": {"marker": marker}}
    live = Collection(objects=[listed], counts={"deployments.apps": 1})
    store = Store(live)
    assert live.objects == [] and live.describe()["counts"] == {"deployments.apps": 1}  # the record stays
    first = weakref.ref(marker)
    del listed, marker
    gc.collect()
    assert first() is not None  # the store has it
    assert store.apply(deployments, "MODIFIED", {"metadata": {"name": "web", "namespace": "a", "labels": {"v": "2"}}})
    gc.collect()
    assert first() is None
    assert store.objects[("apps/Deployment", "a", "web")].labels == {"v": "2"}
