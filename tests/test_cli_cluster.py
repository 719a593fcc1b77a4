"""Live scans and snapshots from the command line, against the API test server."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import jsonschema
import pytest
import yaml
from importlib import resources

from auditor.cli import cli
from sarif_check import check_sarif
from conftest import FIXTURES, ROOT, run



def live(api, *args):
    return run("scan", "--kubeconfig", str(api.kubeconfig_path), *args)


def findings(stdout: str) -> list[tuple]:
    """Findings without their source location (files have lines, live objects do not)."""
    doc = json.loads(stdout)
    return [(f["rule"], f["severity"], f["message"], json.dumps(f["object"], sort_keys=True), f["pods"]) for f in doc["findings"]]


def test_live_scan_finds_exactly_what_a_scan_of_the_same_manifests_finds(api):
    from_files = run("scan", "-f", str(FIXTURES / "demo"), "-f", str(FIXTURES / "cluster"), "-o", "json")
    from_cluster = live(api, "-o", "json")
    assert from_cluster.exit_code == from_files.exit_code == 1
    assert findings(from_cluster.stdout) == findings(from_files.stdout)
    assert len(findings(from_cluster.stdout)) == 12
    doc = json.loads(from_cluster.stdout)
    assert doc["collection"]["source"] == "cluster" and doc["collection"]["context"] == "test"
    assert doc["summary"]["complete"] is True
    schema = json.loads(resources.files("auditor.schemas").joinpath("report.schema.json").read_text())
    jsonschema.validate(doc, schema)


@pytest.mark.parametrize("name", ["snap.json", "snap.json.gz"])
def test_snapshot_round_trip_gives_the_same_findings(api, tmp_path, name):
    path = tmp_path / name
    result = run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path))
    assert result.exit_code == 0, result.stderr
    data = path.read_bytes()
    head, *objects, end = [json.loads(line) for line in (gzip.decompress(data) if name.endswith(".gz") else data).splitlines()]
    doc = {**head, "objects": objects}
    assert f"wrote {path}: {len(doc['objects'])} objects from context test (Kubernetes v1.31.4)" in result.stderr
    assert end == {"kind": "MeshAuditSnapshotEnd", "objects": len(objects)} and head["objects"] == len(objects)
    assert {"Pod", "DaemonSet", "CustomResourceDefinition"} <= {o["kind"] for o in doc["objects"]}
    assert doc["kind"] == "MeshAuditSnapshot" and doc["schema_version"] == 3
    assert doc["collection"]["server_version"] == "v1.31.4" and doc["collection"]["context"] == "test"
    assert doc["collection"]["collected_at"].endswith("Z") and doc["collection"]["not_collected"] == []
    requests_before = len(api.requests)
    offline = run("scan", "--snapshot", str(path), "-o", "json")
    assert len(api.requests) == requests_before  # offline means offline
    assert findings(offline.stdout) == findings(live(api, "-o", "json").stdout)
    assert json.loads(offline.stdout)["collection"]["source"] == "snapshot"
    assert findings(run("scan", "-f", str(path), "-o", "json").stdout) == findings(offline.stdout)


def test_snapshot_objects_get_pseudo_paths_in_sarif(api, tmp_path):
    path = tmp_path / "snap.json"
    run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path), "-q")
    doc = json.loads(run("scan", "--snapshot", str(path), "-o", "sarif").stdout)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert "k8s/_cluster/Namespace/checkout" in uris and all(u.startswith("k8s/") for u in uris)


def test_forbidden_resource_exits_3_and_every_format_says_what_is_missing(api, tmp_path):
    api.fault("pods", status=403)
    table = live(api)
    assert table.exit_code == 3
    assert "Not collected (findings may be missing for these):\n  pods: forbidden (403)" in table.stdout
    assert table.stdout.rstrip().endswith("INCOMPLETE: 1 not collected")
    assert "mesh-audit: warning: not collected: pods: forbidden (403)" in table.stderr
    doc = json.loads(live(api, "-o", "json").stdout)
    assert doc["summary"]["complete"] is False
    assert [(g["resource"], g["status"]) for g in doc["collection"]["not_collected"]] == [("pods", 403)]
    sarif_path = tmp_path / "out.sarif"
    assert live(api, "-o", "sarif", "--output-file", str(sarif_path)).exit_code == 3
    sarif = json.loads(sarif_path.read_text())
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert any(n["message"]["text"].startswith("not collected: pods: forbidden (403)") for n in invocation["toolExecutionNotifications"])
    check_sarif(sarif_path)
    assert live(api, "--allow-partial").exit_code == 1  # the findings decide again


def test_version_1_snapshots_are_still_read(api, tmp_path):
    path = tmp_path / "snap.json"
    run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path), "-q")
    head, *objects = [json.loads(line) for line in path.read_text().splitlines()]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**head, "schema_version": 1, "objects": objects}))
    assert findings(run("scan", "--snapshot", str(old), "-o", "json").stdout) == findings(
        run("scan", "--snapshot", str(path), "-o", "json").stdout)


def test_snapshot_objects_are_complete_but_scans_project_pods(api, tmp_path):
    """The snapshot keeps pods as the API returned them; a scan keeps what it reads."""
    from auditor.collect.files import load_paths

    path = tmp_path / "snap.json"
    run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path), "-q")
    pods = [json.loads(line) for line in path.read_text().splitlines()[1:] if '"kind":"Pod"' in line]
    assert pods and all("resourceVersion" in p["metadata"] for p in pods)
    loaded = [o for o in load_paths([str(path)]).objects if o.kind == "Pod"]
    assert loaded and all(set(o.raw["metadata"]) <= {"name", "generateName", "namespace", "uid", "labels", "annotations",
                                                     "ownerReferences"} for o in loaded)


def test_partial_snapshot_keeps_its_gaps(api, tmp_path):
    api.fault("services", status=403)
    path = tmp_path / "snap.json"
    assert run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path), "-q").exit_code == 3
    assert run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path), "-q", "--allow-partial").exit_code == 0
    offline = run("scan", "--snapshot", str(path), "-o", "json")
    assert offline.exit_code == 3
    assert json.loads(offline.stdout)["collection"]["not_collected"][0]["resource"] == "services"


def test_unreachable_cluster_exits_3_in_one_line_and_writes_no_snapshot(api, tmp_path):
    kubeconfig = str(api.kubeconfig_path)
    api.stop()
    path = tmp_path / "snap.json"
    result = run("snapshot", "--kubeconfig", kubeconfig, "-o", str(path))
    assert result.exit_code == 3 and not path.exists() and list(tmp_path.glob(".snap.json*")) == []
    assert result.stderr.startswith("mesh-audit: error: cluster at https://127.0.0.1:")
    assert "Connection refused" in result.stderr and len(result.stderr.splitlines()) == 1
    scan = run("scan", "--kubeconfig", kubeconfig, "-o", "json")
    assert scan.exit_code == 3 and scan.stdout == ""


def test_missing_kubeconfig_file_is_a_usage_error(tmp_path):
    result = run("scan", "--kubeconfig", str(tmp_path / "nope"))
    assert result.exit_code == 2 and result.stderr == f"mesh-audit: error: {tmp_path / 'nope'}: kubeconfig not found\n"


def test_namespace_scope_limits_findings(api):
    doc = json.loads(live(api, "-n", "storefront", "-o", "json").stdout)
    assert doc["findings"]
    assert {f["object"]["namespace"] or f["object"]["name"] for f in doc["findings"]} == {"storefront"}
    assert doc["collection"]["namespaces"] == ["storefront"]


def test_client_chatter_on_stdout_cannot_corrupt_a_report(api, monkeypatch):
    from kubernetes.config import kube_config

    original = kube_config.KubeConfigLoader.load_and_set

    def chatty(self, config):
        print("Using inCluster Config. This might not work.")
        return original(self, config)

    monkeypatch.setattr(kube_config.KubeConfigLoader, "load_and_set", chatty)
    result = live(api, "-o", "json")
    assert json.loads(result.stdout)["collection"]["source"] == "cluster"


def test_file_and_snapshot_scans_never_import_the_kubernetes_client(api, tmp_path):
    path = tmp_path / "snap.json.gz"
    run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(path), "-q")
    code = (
        "import sys\nfrom auditor.cli import cli\n"
        "for args in (['scan', '-f', sys.argv[1], '-q'], ['scan', '--snapshot', sys.argv[2], '-q']):\n"
        "    try:\n        cli(args)\n    except SystemExit:\n        pass\n"
        "print('kubernetes' in sys.modules, 'urllib3' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "demo"), str(path)], capture_output=True, text=True)
    assert out.stderr.strip().splitlines()[-1] == "False False"


@pytest.mark.parametrize("content, message", [
    (b'{"kind": "PodList", "items": []}', "not a mesh-audit snapshot"),
    (b'{"kind": "MeshAuditSnapshot", "schema_version": 9, "collection": {}, "objects": []}', "schema_version 9 is newer"),
    (b"\x1f\x8b\x08garbage", "not a readable gzip file"),
])
def test_bad_snapshot_files_exit_2_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = run("scan", "--snapshot", str(path))
    assert result.exit_code == 2 and result.stderr.startswith(f"mesh-audit: error: {path}") and message in result.stderr


def test_snapshot_needs_a_json_file_name(api, tmp_path):
    result = run("snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", str(tmp_path / "snap.yaml"))
    assert result.exit_code == 2 and "must end in .json or .json.gz" in result.stderr


def test_f_and_snapshot_together_is_a_usage_error(tmp_path):
    assert run("scan", "-f", str(FIXTURES / "demo"), "--snapshot", str(tmp_path / "x.json")).exit_code == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_agrees_with_the_fixture(api):
    """Keeps the test server honest: the real client reads what the fixture holds."""
    out = subprocess.run(["kubectl", "--kubeconfig", str(api.kubeconfig_path), "get", "pods", "-A", "-o", "json",
                          "--chunk-size=2", "--show-managed-fields"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in json.loads(out.stdout)["items"]}
    fixture = [d for d in yaml.safe_load_all((FIXTURES / "cluster" / "observed.yaml").read_text()) if d["kind"] == "Pod"]
    assert set(got) == {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in fixture}
    for pod in fixture:
        served = got[(pod["metadata"]["namespace"], pod["metadata"]["name"])]
        assert served["metadata"].pop("resourceVersion") and served["metadata"].pop("creationTimestamp")
        assert served == pod
    crd = subprocess.run(["kubectl", "--kubeconfig", str(api.kubeconfig_path), "get", "envoyfilters,vs", "-A", "-o", "name"],
                         capture_output=True, text=True, timeout=60)
    assert crd.returncode == 0 and "virtualservice.networking.istio.io/frontend-canary" in crd.stdout


def _allowed(roles: list[dict], group: str, resource: str, verb: str, name: str | None, namespace: str | None) -> bool:
    """Whether any of the roles (a ClusterRole, or a Role in that namespace) grants it."""
    for role in roles:
        if role["kind"] == "Role" and role["metadata"]["namespace"] != namespace:
            continue
        for rule in role["rules"]:
            if "nonResourceURLs" in rule:
                continue
            if group in rule["apiGroups"] and (resource in rule["resources"] or "*" in rule["resources"]) and verb in rule["verbs"]:
                if "resourceNames" not in rule or name in rule["resourceNames"]:
                    return True
    return False


def _requests_granted(api, roles: list[dict]) -> set:
    """Every request the collector sent is granted; returns the (group, resource) pairs used."""
    used = set()
    for r in api.requests:
        parts = r.path.strip("/").split("/")
        if parts[0] not in ("api", "apis") or len(parts) <= (2 if parts[0] == "api" else 3):
            continue  # discovery and /version: granted to every authenticated user, and by the role
        group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        resource, name = rest[0], rest[1] if len(rest) > 1 else None
        verb = "get" if name else "list"
        assert _allowed(roles, group, resource, verb, name, namespace), \
            f"{verb} {group}/{resource}/{name or ''} in {namespace} is not granted"
        used.add((group, resource))
    return used


def test_deploy_rbac_grants_exactly_what_the_collector_reads(api):
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac.yaml").read_text()))
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    assert {v for role in roles for rule in role["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
    assert not any("secrets" in rule.get("resources", []) for role in roles for rule in role["rules"])
    bindings = [d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bindings} == {(r["kind"], r["metadata"]["name"]) for r in roles}
    live(api, "-o", "json")
    live(api, "-n", "storefront", "-o", "json")
    used = _requests_granted(api, roles)
    granted = {(g, res) for role in roles for rule in role["rules"] if "resources" in rule for g in rule["apiGroups"]
               for res in rule["resources"] if res != "*"}
    assert granted <= used, f"granted but never used: {granted - used}"


def test_deploy_rbac_lets_a_revisioned_istio_be_read(tmp_path):
    """A canary control plane (revision 1-24) keeps its config in istio-1-24: the collector
    asks for it by name, and the namespaced Role grants it, so the CronJob does not exit 3."""
    from conftest import cluster_objects
    from kube_api.server import ApiServer

    objects = cluster_objects()
    webhook = next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
    canary = {**webhook, "metadata": {**webhook["metadata"], "name": "istio-sidecar-injector-1-24",
                                      "labels": {**webhook["metadata"].get("labels", {}), "istio.io/rev": "1-24"}}}
    mesh = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio")
    objects += [canary, {**mesh, "metadata": {**mesh["metadata"], "name": "istio-1-24"}}]
    roles = [d for d in yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac.yaml").read_text()) if d["kind"] in ("ClusterRole", "Role")]
    with ApiServer(objects) as server:
        server.kubeconfig_path = server.kubeconfig(tmp_path / "kc")
        result = live(server, "-o", "json")
        assert result.exit_code in (0, 1)
        asked = {r.path.rsplit("/", 1)[1] for r in server.requests if "/configmaps/" in r.path}
        assert "istio-1-24" in asked and "istio-sidecar-injector-1-24" in asked
        _requests_granted(server, roles)


def test_deploy_cronjob_runs_a_valid_audit_as_the_rbac_service_account():
    rbac = list(yaml.safe_load_all((ROOT / "deploy" / "base" / "rbac.yaml").read_text()))
    account = next(d for d in rbac if d["kind"] == "ServiceAccount")["metadata"]
    binding = next(d for d in rbac if d["kind"] == "ClusterRoleBinding")
    assert all(b["subjects"] == binding["subjects"] for b in rbac if b["kind"] == "RoleBinding")
    [cronjob] = yaml.safe_load_all((ROOT / "deploy" / "cronjob" / "cronjob.yaml").read_text())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == account["name"] and cronjob["metadata"]["namespace"] == account["namespace"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    [container] = pod["spec"]["containers"]
    assert container["args"][:2] == ["serve", "--once"]
    serve_ctx = cli.get_command(None, "serve").make_context("serve", list(container["args"][1:]))
    assert serve_ctx.params["once"] and serve_ctx.params["report_kind"] == "policyreport"
    assert serve_ctx.params["metrics_addr"] is None


def test_missing_ztunnel_is_reported_for_a_live_cluster_only(tmp_path):
    from conftest import cluster_objects
    from kube_api.server import ApiServer

    objects = [o for o in cluster_objects() if o["metadata"]["name"] != "ztunnel"]
    with ApiServer(objects) as api:
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kc")
        doc = json.loads(live(api, "-o", "json").stdout)
    [finding] = [f for f in doc["findings"] if f["rule"] == "ambient-components-missing"]
    assert finding["object"] == {"apiVersion": "mesh-audit.io/v1", "kind": "Cluster", "namespace": None, "name": "cluster"}
    assert "no ztunnel DaemonSet" in finding["message"]
    manifests = tmp_path / "manifests.json"
    manifests.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    from_files = json.loads(run("scan", "-f", str(manifests), "-o", "json").stdout)
    assert "ambient-components-missing" not in {f["rule"] for f in from_files["findings"]}


def test_forbidden_daemonsets_are_not_taken_as_missing(api):
    api.fault("daemonsets.apps", status=403)
    doc = json.loads(live(api, "-o", "json", "--allow-partial").stdout)
    assert "ambient-components-missing" not in {f["rule"] for f in doc["findings"]}


def _gzip_members(data: bytes) -> int:
    import zlib

    members = 0
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data)
        data = d.unused_data
        members += 1
    return members


@pytest.mark.parametrize("name", ["big.json", "big.json.gz"])
def test_snapshot_spools_pages_and_restarts_cleanly(tmp_path, name):
    """Large lists go to the snapshot page by page (not held as objects): a list whose
    continue token expires is written once, complete; the file is the same every time."""
    from auditor.collect.cluster import Spool, collect, connect
    from kube_api.server import ApiServer

    objects = yaml.safe_load_all((FIXTURES / "cluster" / "crds.yaml").read_text())
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:04d}", "namespace": "bulk", "uid": f"u{i}"},
             "spec": {"containers": [{"name": "c", "image": "x"}]}, "status": {"phase": "Running"}} for i in range(1203)]
    with ApiServer([o for o in objects if o] + pods) as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kc"))
        api.fault("pods", gone_on_continue=True, times=1)
        first = tmp_path / name
        assert run("snapshot", "--kubeconfig", kubeconfig, "-o", str(first), "-q").exit_code == 0
        again = tmp_path / ("again-" + name)
        assert run("snapshot", "--kubeconfig", kubeconfig, "-o", str(again), "-q").exit_code == 0
        spooled = collect(connect(kubeconfig), spool=Spool())
    data = first.read_bytes()
    if name.endswith(".gz"):
        assert _gzip_members(data) >= 4  # the header and in-memory objects, then one member per page
        data = gzip.decompress(data)
    lines = data.splitlines()
    names = [o["metadata"]["name"] for o in map(json.loads, lines[1:]) if o["kind"] == "Pod"]
    assert names == [f"p{i:04d}" for i in range(1203)]
    assert json.loads(lines[0])["collection"]["counts"]["pods"] == 1203
    other = again.read_bytes()
    other = gzip.decompress(other) if name.endswith(".gz") else other
    assert other.splitlines()[1:] == lines[1:]  # only the header's collected_at may differ
    assert not any(o["kind"] == "Pod" for o in spooled.objects) and spooled.spool.count >= 1203
    assert spooled.object_count == len(spooled.objects) + spooled.spool.count


def test_a_list_that_fails_part_way_leaves_nothing_in_the_snapshot(tmp_path):
    """Pages already spooled are dropped when their list fails later: the snapshot names the
    list as not collected and holds none of it, as a scan of the live cluster would."""
    from kube_api.server import ApiServer

    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:04d}", "namespace": "bulk", "uid": f"u{i}"}}
            for i in range(1203)]
    with ApiServer(pods) as api:
        api.fault("pods", gone_on_continue=True)  # every continue token has expired: the list never completes
        path = tmp_path / "partial.json"
        result = run("snapshot", "--kubeconfig", str(api.kubeconfig(tmp_path / "kc")), "-o", str(path), "-q")
    assert result.exit_code == 3
    head, *objects = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [g["resource"] for g in head["collection"]["not_collected"]] == ["pods"]
    assert not [o for o in objects if o["kind"] == "Pod"] and "pods" not in head["collection"]["counts"]


def test_a_404_on_a_kind_discovery_serves_fails_the_gate_instead_of_dropping_its_findings(api):
    """AuthorizationPolicies served by discovery but whose list answers 404: their findings
    cannot be judged, so the scan is incomplete (exit 3), never a clean pass."""
    complete = json.loads(live(api, "-o", "json").stdout)
    assert any(f["object"]["kind"] == "AuthorizationPolicy" for f in complete["findings"])
    api.fault("authorizationpolicies.security.istio.io", status=404)
    result = live(api, "-o", "json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["summary"]["complete"] is False
    assert [(g["resource"], g["status"]) for g in doc["collection"]["not_collected"]] == [
        ("authorizationpolicies.security.istio.io", 404)]
    assert "authorizationpolicies.security.istio.io" not in doc["collection"]["not_installed"]


def test_an_odd_list_body_is_a_gap_not_a_traceback(api):
    api.fault("services", body=b'{"kind":"ServiceList","items":5}')
    result = live(api, "-o", "json")
    assert result.exit_code == 3
    assert "mesh-audit: warning: not collected: services: the API server sent a malformed list (items is a int)" in result.stderr
