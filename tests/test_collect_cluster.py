"""The live collector against the API test server: what it reads, how, and how it fails."""

from __future__ import annotations

import io
import time

import pytest

from auditor.collect.cluster import ClusterError, Progress, RetryPolicy, collect, connect
from conftest import cluster_objects
from kube_api.server import ApiServer

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)
ISTIO_CONFIGMAPS = {"istio", "istio-sidecar-injector", "istio-cni-config"}



def _demo_counts() -> dict:
    from collections import Counter

    from conftest import cluster_objects

    return Counter(d["kind"] for d in cluster_objects())


DEMO_COUNTS = _demo_counts()

def run_collect(api, **kwargs):
    kwargs.setdefault("retry", FAST)
    return collect(connect(str(api.kubeconfig_path)), **kwargs)


def kinds(collection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for o in collection.objects:
        out.setdefault(o["kind"], set()).add(o["apiVersion"])
    return out


def test_collects_every_audited_kind_with_kind_and_api_version(api):
    c = run_collect(api)
    assert c.complete and c.not_installed == []
    assert c.server_version == "v1.31.4" and c.context == "test" and c.server == api.url
    found = kinds(c)
    assert found["Pod"] == {"v1"} and found["ReplicaSet"] == {"apps/v1"}
    assert found["VirtualService"] == {"networking.istio.io/v1"}
    assert found["AuthorizationPolicy"] == {"security.istio.io/v1"}
    assert found["Gateway"] == {"gateway.networking.k8s.io/v1"}
    assert found["CustomResourceDefinition"] == {"apiextensions.k8s.io/v1"}
    assert c.counts["pods"] == 3 and c.counts["virtualservices.networking.istio.io"] == 3


def test_each_kind_is_read_at_the_most_preferred_version_that_serves_it(api):
    run_collect(api)
    lists = {r.path for r in api.requests if r.query.get("limit")}
    assert "/apis/networking.istio.io/v1/virtualservices" in lists
    assert "/apis/networking.istio.io/v1alpha3/envoyfilters" in lists  # EnvoyFilter has no v1
    assert "/apis/networking.istio.io/v1beta1/proxyconfigs" in lists
    assert "/apis/gateway.networking.k8s.io/v1alpha2/tcproutes" in lists
    assert not any("/v1beta1/virtualservices" in p or "/v1alpha3/virtualservices" in p for p in lists)


def test_only_gets_no_secrets_and_only_istio_configmaps(api):
    c = run_collect(api)
    assert api.methods() == {"GET"}
    assert not any("secrets" in p for p in api.paths())
    cm_requests = [p for p in api.paths() if "/configmaps" in p]
    assert cm_requests and all(p.rsplit("/", 1)[1] in ISTIO_CONFIGMAPS for p in cm_requests)
    names = {o["metadata"]["name"] for o in c.objects if o["kind"] == "ConfigMap"}
    assert names == {"istio"}  # payments-settings and istio-ca-root-cert exist but are never read


def test_only_istio_injector_webhooks_are_kept(api):
    c = run_collect(api)
    assert [o["metadata"]["name"] for o in c.objects if o["kind"] == "MutatingWebhookConfiguration"] == ["istio-sidecar-injector"]


def test_managed_fields_and_last_applied_are_dropped(api):
    c = run_collect(api)
    pod = next(o for o in c.objects if o["metadata"]["name"] == "frontend-6d8f7c9b5-x2k4q")
    assert "managedFields" not in pod["metadata"]
    assert pod["metadata"]["annotations"] == {"ambient.istio.io/redirection": "enabled"}


def test_crds_are_read_as_metadata_only(api):
    c = run_collect(api)
    crd_lists = [r for r in api.requests if r.path.endswith("/customresourcedefinitions")]
    assert crd_lists and "as=PartialObjectMetadataList" in crd_lists[0].headers["accept"]
    crds = [o for o in c.objects if o["kind"] == "CustomResourceDefinition"]
    assert "virtualservices.networking.istio.io" in {o["metadata"]["name"] for o in crds}
    assert all(set(o) == {"apiVersion", "kind", "metadata"} for o in crds)


def test_lists_are_paginated_with_limit_and_continue(tmp_path):
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:04d}", "namespace": "bulk"},
             "spec": {"containers": [{"name": "c", "image": "x"}]}} for i in range(1203)]
    with ApiServer(pods) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        c = run_collect(api)
    pod_lists = [r for r in api.requests if r.path == "/api/v1/pods"]
    assert [r.query.get("limit") for r in pod_lists] == ["500"] * 3
    assert [bool(r.query.get("continue")) for r in pod_lists] == [False, True, True]
    assert len([o for o in c.objects if o["kind"] == "Pod"]) == 1203 == c.counts["pods"]


def test_replicas_in_a_pod_list_share_their_parts_and_read_as_projected(tmp_path):
    """Running pods alike but for identity, node and status details (items of a PodList
    carry no kind): each collected pod is the projection of what was served, and the
    replicas share one copy of what they have in common, across pages."""
    import orjson

    from auditor.model.snapshot import project

    def pod(i: int, app: str = "web") -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{app}-{i:04d}", "generateName": f"{app}-", "namespace": "shop", "uid": f"u{i}",
                             "labels": {"app": app}, "ownerReferences": [{"kind": "ReplicaSet", "name": app, "uid": "r"}]},
                "spec": {"nodeName": f"node-{i % 7}", "containers": [{"name": app, "image": "x", "env": [{"name": "I"}]}]},
                "status": {"phase": "Running", "podIP": f"10.0.{i // 250}.{i % 250}"}}

    served = [pod(i) for i in range(600)] + [pod(i, "api") for i in range(3)]
    with ApiServer(served) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        c = run_collect(api, projected=True)  # as a scan collects
    pods = sorted((o for o in c.objects if o["kind"] == "Pod"), key=lambda o: o["metadata"]["name"])
    expected = sorted((project(p) for p in served), key=lambda o: o["metadata"]["name"])
    assert [orjson.dumps(o) for o in pods] == [orjson.dumps(o) for o in expected]  # key order included
    web = [o for o in pods if o["metadata"]["labels"]["app"] == "web"]
    assert len({id(o["spec"]) for o in web}) == len({id(o["metadata"]["labels"]) for o in web}) == 1
    assert web[0]["spec"] is not pods[0]["spec"]  # "api" pods have theirs
    # The lister's replica signatures reach the audit (facts need not compute them again),
    # and they are the ones facts would compute.
    from auditor.model.snapshot import replica_signature

    audited = [o for o in c.audit_objects() if o.kind == "Pod"]
    assert len(audited) == 603 and all(o.signature == replica_signature(o.raw) is not None for o in audited)
    assert len({o.signature for o in audited}) == 2


def test_expired_continue_token_restarts_that_list(tmp_path):
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:04d}", "namespace": "bulk"}} for i in range(1100)]
    with ApiServer(pods) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        api.fault("pods", gone_on_continue=True, times=1)
        c = run_collect(api)
    pod_lists = [r for r in api.requests if r.path == "/api/v1/pods"]
    assert [bool(r.query.get("continue")) for r in pod_lists] == [False, True, False, True, True]
    names = [o["metadata"]["name"] for o in c.objects if o["kind"] == "Pod"]
    assert len(names) == len(set(names)) == 1100 and c.complete


def test_a_list_started_again_keeps_only_its_last_runs_signatures(tmp_path):
    """A pod list whose continue token expires is read again from the start; a pod that
    changed meanwhile and is read by the general path this time (a label that is not a
    string) must not keep the replica signature the first run gave the pod it replaced."""
    from auditor.model.snapshot import replica_signature

    def pod(i: int, labels=None) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"web-{i:04d}", "namespace": "shop", "uid": f"u{i}", "labels": labels or {"app": "web"},
                             "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "uid": "r", "controller": True}]},
                "spec": {"containers": [{"name": "web", "image": "x"}]}, "status": {"phase": "Running"}}

    with ApiServer([pod(i) for i in range(600)]) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        api.fault("pods", gone_on_continue=True, times=1, then=lambda: api.put_object(pod(0, {"app": "web", "tier": 2})))
        c = run_collect(api, projected=True)
    pods = {o.name: o for o in c.audit_objects() if o.kind == "Pod"}
    assert len(pods) == 600 and pods["web-0000"].labels == {"app": "web", "tier": "2"}
    assert pods["web-0000"].signature is None  # read by the general path: facts signs it
    assert all(o.signature == replica_signature(o.raw) for name, o in pods.items() if name != "web-0000")


def test_forbidden_resource_is_reported_and_the_rest_collected(api):
    api.fault("pods", status=403)
    c = run_collect(api)
    assert not c.complete
    [gap] = c.not_collected
    assert (gap.resource, gap.status, gap.namespace) == ("pods", 403, None)
    assert gap.reason.startswith("forbidden (403)")
    assert "Pod" not in kinds(c) and "Deployment" in kinds(c)


def test_a_group_discovery_lacks_is_not_installed_a_404_on_a_served_list_is_a_gap(tmp_path):
    """Only discovery decides "not installed": a list that 404s although discovery serves its
    kind is a gap, or a scan would turn green for what it could not read."""
    objects = [o for o in cluster_objects() if "gateway.networking.k8s.io" not in o["apiVersion"]
               and not o["metadata"]["name"].endswith(".gateway.networking.k8s.io")]
    with ApiServer(objects) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        api.fault("cronjobs.batch", status=404)
        c = run_collect(api)
    assert not c.complete
    assert set(c.not_installed) == {"gateway.networking.k8s.io"}
    [gap] = c.not_collected
    assert (gap.resource, gap.status) == ("cronjobs.batch", 404) and gap.reason.startswith("not found (404)")


def test_failed_discovery_of_one_version_falls_back_to_the_next(api):
    api.fault("/apis/security.istio.io/v1", status=403)
    c = run_collect(api)
    assert [g.resource for g in c.not_collected] == ["/apis/security.istio.io/v1"]
    assert c.not_collected[0].reason.startswith("discovery failed: forbidden (403)")
    assert kinds(c)["AuthorizationPolicy"] == {"security.istio.io/v1beta1"}


def test_429_is_retried_after_the_servers_retry_after(api):
    api.fault("services", status=429, retry_after=1, times=1)
    started = time.monotonic()
    c = run_collect(api)
    assert time.monotonic() - started >= 1.0
    assert c.complete and c.counts["services"] == DEMO_COUNTS["Service"]
    assert len([r for r in api.requests if r.path == "/api/v1/services"]) == 2


@pytest.mark.parametrize("fault", [dict(status=500, times=2), dict(drop=True, times=2)], ids=["5xx", "dropped"])
def test_transient_failures_are_retried(api, fault):
    api.fault("deployments.apps", **fault)
    c = run_collect(api)
    assert c.complete and c.counts["deployments.apps"] == DEMO_COUNTS["Deployment"]
    assert len([r for r in api.requests if r.path == "/apis/apps/v1/deployments"]) == 3


def test_retries_are_bounded(api):
    api.fault("deployments.apps", status=500)
    c = run_collect(api)
    [gap] = c.not_collected
    assert gap.resource == "deployments.apps" and gap.status == 500
    assert "gave up after 4 attempts" in gap.reason
    assert len([r for r in api.requests if r.path == "/apis/apps/v1/deployments"]) == 4


def test_timeout_bounds_the_whole_collection(api):
    api.fault("pods", delay=3.0)
    started = time.monotonic()
    c = run_collect(api, timeout=1.0)
    assert time.monotonic() - started < 2.9
    assert any(g.resource == "pods" and "timed out" in g.reason for g in c.not_collected)


def test_several_faults_at_once_end_in_a_complete_record(api):
    api.fault("pods", status=403)
    api.fault("services", status=500)
    api.fault("virtualservices.networking.istio.io", drop=True, times=1)
    api.fault("deployments.apps", status=429, retry_after=0, times=2)
    c = run_collect(api)
    assert {(g.resource, g.status) for g in c.not_collected} == {("pods", 403), ("services", 500)}
    assert c.counts["virtualservices.networking.istio.io"] == 3 and c.counts["deployments.apps"] == DEMO_COUNTS["Deployment"]


def test_unreachable_cluster_is_one_clear_error(api, tmp_path):
    kc = api.kubeconfig(tmp_path / "kc")
    api.stop()
    with pytest.raises(ClusterError, match=r"^cluster at https://127\.0\.0\.1:\d+ is unreachable: cannot connect: Connection refused"):
        collect(connect(str(kc)), retry=FAST)


def test_rejected_credentials(api, tmp_path):
    kc = api.kubeconfig(tmp_path / "kc", token="wrong")
    with pytest.raises(ClusterError, match="rejected the credentials"):
        collect(connect(str(kc)), retry=FAST)


def test_untrusted_server_certificate(api, tmp_path):
    kc = api.kubeconfig(tmp_path / "kc")
    kc.write_text(kc.read_text().replace("certificate-authority-data", "x-unused"))
    with pytest.raises(ClusterError, match="TLS handshake with .* failed: certificate verify failed"):
        collect(connect(str(kc)), retry=FAST)


def test_gzip_is_asked_for_remote_servers_only(api):
    run_collect(api)
    assert not any("gzip" in r.headers.get("accept-encoding", "") for r in api.requests)
    api.requests.clear()
    c = run_collect(api, compress=True)
    assert all("gzip" in r.headers.get("accept-encoding", "") for r in api.requests)
    assert c.complete and c.counts["customresourcedefinitions.apiextensions.k8s.io"] == 21


def test_namespace_scope_lists_those_namespaces_and_istios(api):
    c = run_collect(api, namespaces=["storefront"])
    listed = {r.path for r in api.requests if r.query.get("limit")}
    assert "/api/v1/namespaces/storefront/pods" in listed and "/api/v1/namespaces/istio-system/pods" in listed
    assert not any(p.startswith("/api/v1/namespaces/payments") for p in api.paths())
    assert "/api/v1/pods" not in listed and "/api/v1/namespaces" not in listed
    assert {o["metadata"]["name"] for o in c.objects if o["kind"] == "Namespace"} == {"storefront", "istio-system"}
    assert c.namespaces == ["storefront"]


def test_kubeconfig_context_and_exec_plugin(api, tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',"
        f" 'status': {{'token': '{api.token}'}}}}))\n"
    )
    import sys

    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": [str(plugin)],
                     "interactiveMode": "Never"}}
    kc = api.kubeconfig(tmp_path / "kc", context="prod", user=user)
    c = collect(connect(str(kc), context="prod"), retry=FAST)
    assert c.complete and c.context == "prod"


def test_unknown_context_is_a_usage_error(api):
    from auditor.core.errors import UsageError

    with pytest.raises(UsageError, match="kubeconfig: .*nope"):
        connect(str(api.kubeconfig_path), context="nope")


def test_kubeconfig_env_is_read_at_call_time(api):
    conn = connect(environ={"KUBECONFIG": str(api.kubeconfig_path)})
    assert conn.server == api.url


def test_in_cluster_service_account(api, tmp_path, monkeypatch):
    from auditor.collect.cluster import kubeconfig as cluster
    from kube_api.server import CA_FILE

    (tmp_path / "token").write_text(api.token)
    (tmp_path / "ca.crt").write_bytes(CA_FILE.read_bytes())
    monkeypatch.setattr(cluster, "SERVICE_ACCOUNT_DIR", tmp_path)
    port = api.url.rsplit(":", 1)[1]
    environ = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}
    conn = connect(environ=environ)
    assert conn.context == "in-cluster"
    assert collect(conn, retry=FAST).complete


def test_progress_on_a_terminal_only():
    stream = io.StringIO()
    progress = Progress(stream=stream, enabled=True)
    progress.add("pods", 500)
    progress.add("pods", 3)
    progress.done()
    assert "\rcollecting: pods (503 objects)" in stream.getvalue()
    assert Progress(stream=io.StringIO()).enabled is False  # StringIO is not a terminal
    quiet = io.StringIO()
    Progress(stream=quiet, enabled=False).add("pods", 1)
    assert quiet.getvalue() == ""


def test_the_next_page_is_requested_while_this_one_is_read(tmp_path, monkeypatch):
    """Read-ahead: page 2 reaches the server before page 1's items are processed (bounded
    wait; without read-ahead the wait runs out and the test fails)."""
    from auditor.collect.cluster import lister

    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:04d}", "namespace": "bulk"}} for i in range(1100)]
    seen_early = []
    prepare = lister.prepare_item

    def watching_prepare(item, rtype, projected=False):
        if item["metadata"]["name"] == "p0000":
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not _continued(api):
                time.sleep(0.01)
            seen_early.append(_continued(api))
        return prepare(item, rtype, projected)

    monkeypatch.setattr(lister, "prepare_item", watching_prepare)
    with ApiServer(pods) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        c = run_collect(api)
    assert seen_early == [True]
    pod_lists = [r for r in api.requests if r.path == "/api/v1/pods"]
    assert [bool(r.query.get("continue")) for r in pod_lists] == [False, True, True]  # each page once
    names = [o["metadata"]["name"] for o in c.objects if o["kind"] == "Pod"]
    assert names == [f"p{i:04d}" for i in range(1100)]


def _continued(api) -> bool:
    return any(r.path == "/api/v1/pods" and r.query.get("continue") for r in list(api.requests))


def test_a_page_read_ahead_under_the_wrong_token_is_not_used():
    """The token seen early is checked against the parsed page; on a mismatch the page is
    requested again with the right one (here a page names `continue` twice: JSON takes the last)."""
    from concurrent.futures import ThreadPoolExecutor

    from auditor.collect.cluster.http import Response
    from auditor.collect.cluster.lister import Lister
    from auditor.collect.cluster.resources import ResourceType

    pages = {
        None: b'{"metadata":{"continue":"early","continue":"real"},"items":[{"metadata":{"name":"a"}}]}',
        "early": b'{"metadata":{},"items":[{"metadata":{"name":"wrong"}}]}',
        "real": b'{"metadata":{},"items":[{"metadata":{"name":"b"}}]}',
    }

    class Http:
        asked: list = []

        def get(self, path, query=None, accept=None, attempts=None):
            token = (query or {}).get("continue")
            self.asked.append(token)
            return Response(200, pages[token], "OK")

    with ThreadPoolExecutor(1) as ahead:
        collector = Lister(Http(), None, False, ahead)
        items = collector.list(ResourceType("", "v1", "pods", "Pod", True))
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert sorted(Http.asked, key=str) == sorted([None, "early", "real"], key=str)


@pytest.mark.parametrize("body, token", [
    (b'{"kind":"PodList","metadata":{"resourceVersion":"9","continue":"eyJ2IjoxfQ=="},"items":[]}', "eyJ2IjoxfQ=="),
    (b'{"metadata": {"continue" : "a\\u002fb\\"c"}, "items": []}', 'a/b"c'),
    (b'{"metadata":{"resourceVersion":"9"},"items":[{"metadata":{"annotations":{"continue":"x"}}}]}', None),
    (b'{"items":[],"metadata":{"continue":"late"}}', None),  # ListMeta after the items: not read early
    (b'{"metadata":{"continue":""},"items":[]}', None),
    (b'not json', None),
])
def test_continue_token_is_read_from_the_list_head(body, token):
    from auditor.collect.cluster.pages import continue_token

    assert continue_token(body) == token


# -- odd answers a list can get (issue: a gate that never goes green by accident) -----------

@pytest.mark.parametrize("body, reason", [
    (b'{"kind":"PodList","metadata":{},"items":5}', "the API server sent a malformed list (items is a int)"),
    (b'{"kind":"PodList","metadata":"x","items":[]}', "the API server sent a malformed list (metadata is a str)"),
    (b'[1, 2]', "the API server sent a list, not a list"),
    (b'{}', "the API server sent a malformed list (no items)"),
    (b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","code":500}',
     "the API server answered the list with a Status: etcdserver: request timed out"),
    (b'{"kind":"PodList","metadata":{},"items":[{"metadata":{"name":"a","namespace":"b"}},5]}',
     "the API server sent a malformed list (an item is an int)"),
    (b'{"kind":"PodList","metadata":{},"items":["x"]}', "the API server sent a malformed list (an item is a str)"),
    (b'{"kind":"PodList","metadata":{},"items":[{"kind":"Pod"}]}',
     "the API server sent a malformed list (an item is an object without metadata)"),
    (b'{"kind":"PodList","metadata":{"remainingItemCount":120},"items":[]}',
     "the API server sent a list that says 120 more items remain but gives no continue token to fetch them"),
    (b'<html>502 Bad Gateway</html>', "the API server sent a list that is not JSON (unexpected character, expected a JSON value)"),
    (b'{"items":' + b'[' * 2000 + b']' * 2000 + b'}', "the API server sent a list that is not JSON (nested more than 1,024 levels deep)"),
])
def test_a_list_that_is_not_a_list_is_a_gap(api, body, reason):
    api.fault("pods", body=body)
    api.fault("services", body=body.replace(b"PodList", b"ServiceList"))  # read whole, not projected
    c = run_collect(api)
    assert sorted((g.resource, g.reason) for g in c.not_collected) == [("pods", reason), ("services", reason)]
    assert "Pod" not in kinds(c) and "Service" not in kinds(c) and "Deployment" in kinds(c)


def test_a_body_cut_short_is_retried_then_a_gap(api):
    api.fault("services", truncate=True, times=1)
    api.fault("pods", truncate=True)
    c = run_collect(api)
    assert [(g.resource, g.reason) for g in c.not_collected] == [
        ("pods", f"connection dropped by the server (gave up after {FAST.attempts} attempts)")]
    assert "Service" in kinds(c)  # the retry read it whole


def test_a_continue_token_handed_out_twice_ends_the_list_with_a_gap(api):
    api.fault("pods", repeat_continue=True)
    with_small_pages = pytest.MonkeyPatch()
    from auditor.collect.cluster import pages

    with_small_pages.setattr(pages, "PAGE_SIZE", 2)
    try:
        c = run_collect(api)
    finally:
        with_small_pages.undo()
    [gap] = c.not_collected
    assert (gap.resource, gap.reason) == ("pods", "the API server sent the same continue token twice; the list would never end")
    assert len([r for r in api.requests if r.path == "/api/v1/pods"]) <= 3


def test_a_slow_server_ends_in_timeout_gaps_within_the_time_limit(api):
    api.fault("pods", delay=3)
    started = time.monotonic()
    c = run_collect(api, timeout=1.5)
    assert time.monotonic() - started < 5
    assert ("pods", "timed out (--timeout)") in [(g.resource, g.reason) for g in c.not_collected]


def test_a_group_whose_every_version_is_missing_is_a_gap(api):
    for version in ("v1", "v1beta1"):
        api.fault(f"/apis/security.istio.io/{version}", status=404)
    c = run_collect(api)
    assert [(g.resource, g.status) for g in c.not_collected] == [("/apis/security.istio.io", 404)]
    assert "security.istio.io" not in c.not_installed


def test_a_failing_exec_plugin_is_named_not_blamed_on_the_server(api, tmp_path, capfd):
    """The client logs a failed exec plugin (ERROR:root:...) and carries on without a token;
    the user must read that the plugin failed, not that the server rejected credentials."""
    import sys

    plugin = tmp_path / "plugin.py"
    plugin.write_text("import sys\nsys.stderr.write('token expired, run: cloud login')\nsys.exit(1)\n")
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": [str(plugin)],
                     "interactiveMode": "Never"}}
    kc = api.kubeconfig(tmp_path / "kc", context="prod", user=user)
    with pytest.raises(ClusterError) as info:
        connect(str(kc), context="prod")
    assert str(info.value).startswith("credentials for context prod: exec: process returned 1")
    assert "ERROR:root" not in capfd.readouterr().err
    assert api.requests == []  # it never got as far as a request


def test_a_kubeconfig_that_is_not_yaml_is_a_usage_error_at_its_line(tmp_path):
    from auditor.core.errors import UsageError

    kc = tmp_path / "kc"
    kc.write_text("apiVersion: v1\nclusters: [\n  - {name: a\n")
    with pytest.raises(UsageError) as info:
        connect(str(kc))
    assert str(info.value) == f"{kc}:3: kubeconfig is not valid YAML: expected the node content, but found '-'"


def test_an_explicit_kubeconfig_path_is_not_split_on_colons(api, tmp_path):
    odd = tmp_path / "team:prod"
    odd.mkdir()
    kc = api.kubeconfig(odd / "config")
    assert connect(str(kc)).server == api.url
    # $KUBECONFIG is a list, as kubectl reads it
    assert connect(environ={"KUBECONFIG": f"{tmp_path / 'none'}:{api.kubeconfig_path}"}).server == api.url
