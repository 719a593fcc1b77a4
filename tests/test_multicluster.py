"""Several clusters audited as one mesh: from three API test servers (one per cluster),
from files named by cluster, from a snapshot holding every cluster; an unreachable
cluster; findings attributed to their cluster in every output; and the topology facts."""

from __future__ import annotations

import gzip
import json

import jsonschema
import pytest
import yaml
from importlib import resources

from auditor import api
from auditor.model.clusters import Clusters
from sarif_check import check_sarif
from conftest import FIXTURES, ROOT, run

MESH = FIXTURES / "multicluster"
NAMES = ("east", "west", "central")

# What the three-cluster fixture must give on 1.27.1: (rule, severity, object, cluster).
EXPECTED = {
    ("mesh-identity-mismatch", "error", "Cluster central", "central"),
    ("primary-remote-ambient", "warning", "Cluster central", "central"),
    ("headless-multicluster-ambient", "warning", "Service shop/db", "east"),
    ("headless-multicluster-ambient", "warning", "Service shop/db", "west"),
    ("service-multicluster-conflict", "warning", "Service shop/payments", "central"),
    ("waypoint-multicluster-mismatch", "warning", "Service shop/cart", "central"),
    ("waypoint-multicluster-mismatch", "warning", "Service shop/payments", "central"),
    ("multicluster-ambient", "info", "Cluster east", "east"),
    ("multicluster-ambient", "info", "Cluster west", "west"),
    ("multicluster-ambient", "info", "Cluster central", "central"),
}


def objects(name: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all((MESH / f"{name}.yaml").read_text()) if d]
    return docs + [d for d in yaml.safe_load_all((FIXTURES / "cluster" / "crds.yaml").read_text()) if d]


def found(doc: dict) -> set[tuple]:
    return {(f["rule"], f["severity"], f"{f['object']['kind']} " + (f"{f['object']['namespace']}/" if f["object"]["namespace"]
             else "") + f["object"]["name"], f["object"].get("cluster")) for f in doc["findings"]}


def file_args() -> list[str]:
    return [arg for name in NAMES for arg in ("-f", f"{name}={MESH / name}.yaml")]


@pytest.fixture
def mesh(tmp_path):
    """Three API test servers, one per cluster, and a kubeconfig with a context for each
    (and `gone`, a context nothing answers)."""
    from kube_api.server import ApiServer, mesh_kubeconfig

    servers = {name: ApiServer(objects(name)) for name in NAMES}
    for server in servers.values():
        server.__enter__()
    try:
        path = mesh_kubeconfig(tmp_path / "kubeconfig", servers, unreachable=("gone",))
        yield servers, str(path)
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)


def test_three_clusters_scan_in_one_command_with_findings_on_the_right_cluster(mesh):
    servers, kubeconfig = mesh
    result = run("scan", "--kubeconfig", kubeconfig, *[a for n in NAMES for a in ("--context", n)],
                 "--istio-version", "1.27.1", "-o", "json")
    assert result.exit_code == 1, result.stderr  # an error-level finding, nothing missing
    doc = json.loads(result.stdout)
    assert found(doc) == EXPECTED
    assert doc["collection"]["source"] == "clusters"
    assert [c["name"] for c in doc["collection"]["clusters"]] == list(NAMES)
    assert all(c["context"] == c["name"] and c["source"] == "cluster" for c in doc["collection"]["clusters"])
    assert doc["summary"]["complete"] is True
    jsonschema.validate(doc, json.loads(resources.files("auditor.schemas").joinpath("report.schema.json").read_text()))
    for server in servers.values():  # every cluster was read, with GETs only, never a Secret
        assert server.methods() == {"GET"} and not any("/secrets" in p for p in server.paths())


def test_live_clusters_and_their_manifests_give_the_same_findings(mesh):
    _, kubeconfig = mesh
    live = run("scan", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "--context", "central",
               "--istio-version", "1.27.1", "-o", "json")
    files = run("scan", *file_args(), "--istio-version", "1.27.1", "-o", "json")
    assert found(json.loads(live.stdout)) == found(json.loads(files.stdout)) == EXPECTED
    assert files.exit_code == live.exit_code == 1


def test_the_detected_version_is_each_clusters_own(mesh):
    """Without --istio-version each cluster is judged on its own istiod's version; central
    runs none, so its version is unknown and only version-free rules judge it."""
    _, kubeconfig = mesh
    doc = json.loads(run("scan", "--kubeconfig", kubeconfig, *[a for n in NAMES for a in ("--context", n)], "-o", "json").stdout)
    assert doc["summary"]["istio_version"] == "1.27.1 (east), 1.27.1 (west), unknown (central)"
    assert ("multicluster-ambient", "info", "Cluster east", "east") in found(doc)
    assert not any(f[0] == "multicluster-ambient" and f[3] == "central" for f in found(doc))


def test_an_unreachable_cluster_is_a_gap_and_the_others_are_audited(mesh):
    _, kubeconfig = mesh
    result = run("scan", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "--context", "gone",
                 "--istio-version", "1.27.1", "-o", "json")
    assert result.exit_code == 3  # incomplete
    doc = json.loads(result.stdout)
    gaps = doc["collection"]["not_collected"]
    assert [(g["cluster"], g["resource"]) for g in gaps] == [("gone", "everything")]
    assert "unreachable" in gaps[0]["reason"]
    assert "mesh-audit: warning: not collected: cluster gone: everything: cluster at" in result.stderr
    # east and west are still a mesh of two: their findings are there, none is on `gone`
    assert ("multicluster-ambient", "info", "Cluster east", "east") in found(doc)
    assert {f[3] for f in found(doc)} == {"east", "west"}
    allowed = run("scan", "--kubeconfig", kubeconfig, "--context", "east", "--context", "gone", "--allow-partial",
                  "--istio-version", "1.27.1", "-o", "json")
    assert allowed.exit_code == 0 and json.loads(allowed.stdout)["summary"]["complete"] is False


def test_all_contexts_reads_every_context_and_names_clusters_by_context(mesh):
    _, kubeconfig = mesh
    result = run("scan", "--kubeconfig", kubeconfig, "--all-contexts", "--istio-version", "1.27.1", "-o", "json")
    doc = json.loads(result.stdout)
    assert [c["name"] for c in doc["collection"]["clusters"]] == [*NAMES, "gone"]
    assert found(doc) >= EXPECTED and result.exit_code == 3
    both = run("scan", "--kubeconfig", kubeconfig, "--all-contexts", "--context", "east")
    assert both.exit_code == 2 and "use --context or --all-contexts, not both" in both.stderr


def test_contexts_can_be_renamed_and_names_must_be_distinct(mesh):
    _, kubeconfig = mesh
    result = run("scan", "--kubeconfig", kubeconfig, "--context", "eu=east", "--context", "us=central",
                 "--istio-version", "1.27.1", "-o", "json")
    doc = json.loads(result.stdout)
    assert {c["name"]: c["context"] for c in doc["collection"]["clusters"]} == {"eu": "east", "us": "central"}
    assert ("primary-remote-ambient", "warning", "Cluster us", "us") in found(doc)
    twice = run("scan", "--kubeconfig", kubeconfig, "--context", "a=east", "--context", "a=west")
    assert twice.exit_code == 2 and "two clusters named 'a'" in twice.stderr
    missing = run("scan", "--kubeconfig", kubeconfig, "--context", "east", "--context", "nowhere")
    assert missing.exit_code == 2 and "mesh-audit: error: cluster nowhere: " in missing.stderr
    assert "no context named 'nowhere'; it has: east, west, central, gone" in missing.stderr


@pytest.mark.parametrize("name", ["mesh.json", "mesh.json.gz"])
def test_one_snapshot_holds_every_cluster_and_scans_like_the_clusters(mesh, tmp_path, name):
    _, kubeconfig = mesh
    path = tmp_path / name
    result = run("snapshot", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "--context", "central",
                 "-o", str(path))
    assert result.exit_code == 0, result.stderr
    assert f"wrote {path}: 3 clusters (east: " in result.stderr
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    heads = [json.loads(line) for line in data.splitlines() if line.startswith(b'{"kind":"MeshAuditSnapshot"')]
    assert [(h["cluster"], h["schema_version"], h["clusters"]) for h in heads] == [(n, 4, list(NAMES)) for n in NAMES]
    scanned = run("scan", "--snapshot", str(path), "--istio-version", "1.27.1", "-o", "json")
    doc = json.loads(scanned.stdout)
    assert found(doc) == EXPECTED and scanned.exit_code == 1
    assert [c["source"] for c in doc["collection"]["clusters"]] == ["snapshot"] * 3
    assert found(json.loads(run("scan", "-f", str(path), "--istio-version", "1.27.1", "-o", "json").stdout)) == EXPECTED


def test_snapshots_of_clusters_can_be_read_together_but_each_cluster_once(mesh, tmp_path):
    _, kubeconfig = mesh
    run("snapshot", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "-o", str(tmp_path / "a.json"))
    run("snapshot", "--kubeconfig", kubeconfig, "--context", "central", "--context", "gone", "-o", str(tmp_path / "b.json"))
    doc = json.loads(run("scan", "-f", str(tmp_path / "a.json"), "-f", str(tmp_path / "b.json"), "--istio-version", "1.27.1",
                         "--allow-partial", "-o", "json").stdout)
    assert [c["name"] for c in doc["collection"]["clusters"]] == ["east", "west", "central", "gone"]
    assert found(doc) == EXPECTED
    twice = run("scan", "-f", str(tmp_path / "a.json"), "-f", str(tmp_path / "a.json"))
    assert twice.exit_code == 2 and "cluster 'east' is also in an earlier snapshot" in twice.stderr
    mixed = run("scan", "-f", str(tmp_path / "a.json"), "-f", str(MESH / "central.yaml"))
    assert mixed.exit_code == 2 and "not with other inputs" in mixed.stderr


def test_clusters_are_collected_in_forked_processes_with_the_same_report(mesh):
    """The CLI in a process of its own (single-threaded, so it forks one collector per
    cluster; inside pytest the servers' threads make it collect one after another)."""
    import subprocess
    import sys

    _, kubeconfig = mesh
    args = [sys.executable, "-m", "auditor", "scan", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west",
            "--context", "central", "--context", "gone", "--istio-version", "1.27.1", "-o", "json", "-q"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 3, done.stderr
    doc = json.loads(done.stdout)
    assert found(doc) == EXPECTED
    assert [(g["cluster"], g["resource"]) for g in doc["collection"]["not_collected"]] == [("gone", "everything")]
    assert [c["counts"].get("services", 0) for c in doc["collection"]["clusters"]] == [3, 3, 2, 0]


def test_a_snapshot_of_clusters_with_an_unreachable_one_keeps_its_gap(mesh, tmp_path):
    _, kubeconfig = mesh
    path = tmp_path / "mesh.json"
    result = run("snapshot", "--kubeconfig", kubeconfig, "--context", "east", "--context", "gone", "-o", str(path))
    assert result.exit_code == 3 and "cluster gone: everything:" in result.stderr
    doc = json.loads(run("scan", "--snapshot", str(path), "-o", "json").stdout)
    assert [(g["cluster"], g["resource"]) for g in doc["collection"]["not_collected"]] == [("gone", "everything")]


def test_a_cut_snapshot_of_clusters_is_an_error_at_its_line(mesh, tmp_path):
    _, kubeconfig = mesh
    path = tmp_path / "mesh.json"
    run("snapshot", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "-o", str(path))
    lines = path.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.json"
    cut.write_bytes(b"".join(lines[:-3]))  # west's last objects and end marker are missing
    result = run("scan", "--snapshot", str(cut))
    assert result.exit_code == 2
    assert f"mesh-audit: error: {cut}:" in result.stderr and "cut short" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cut_compressed_snapshot_of_clusters_is_an_error_however_it_is_given(mesh, tmp_path):
    _, kubeconfig = mesh
    path = tmp_path / "mesh.json.gz"
    run("snapshot", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "-o", str(path))
    data = path.read_bytes()
    for keep in (len(data) - 200, len(data) // 2):
        cut = tmp_path / "cut.json.gz"
        cut.write_bytes(data[:keep])
        for args in (["--snapshot", str(cut)], ["-f", str(cut)]):
            result = run("scan", *args)
            assert result.exit_code == 2, (keep, args, result.stdout)
            assert "cut short" in result.stderr and "Traceback" not in result.stderr


def test_a_snapshot_of_clusters_cut_between_segments_is_an_error(mesh, tmp_path):
    _, kubeconfig = mesh
    for name in ("mesh.json", "mesh.json.gz"):
        path = tmp_path / name
        run("snapshot", "--kubeconfig", kubeconfig, "--context", "east", "--context", "west", "-o", str(path))
        data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        first = data[:data.index(b'{"kind":"MeshAuditSnapshot"', 1)]  # east's segment, whole
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(gzip.compress(first) if name.endswith(".gz") else first)
        result = run("scan", "--snapshot", str(cut))
        assert result.exit_code == 2
        assert "the snapshot names the clusters east, west but holds east: it is cut short" in result.stderr


def test_files_name_their_cluster_and_must_all_do_so(tmp_path):
    result = run("scan", *file_args(), "--istio-version", "1.27.1")
    assert result.exit_code == 1
    assert "Service shop/cart @central" in result.stdout and "Cluster east @east" in result.stdout
    mixed = run("scan", "-f", f"east={MESH / 'east.yaml'}", "-f", str(MESH / "west.yaml"))
    assert mixed.exit_code == 2 and "give every input a cluster (-f NAME=PATH), or none" in mixed.stderr
    one = run("scan", "-f", f"east={MESH / 'east.yaml'}")
    assert one.exit_code == 2 and "name at least two clusters" in one.stderr
    # a file whose name holds '=' is still a file
    odd = tmp_path / "a=b.yaml"
    odd.write_text((MESH / "east.yaml").read_text())
    assert run("scan", "-f", str(odd), "--fail-on", "never").exit_code == 0


def test_sarif_paths_fingerprints_and_baselines_carry_the_cluster(tmp_path):
    sarif = tmp_path / "mesh.sarif"
    run("scan", *file_args(), "--istio-version", "1.27.1", "-o", f"sarif={sarif}", "--write-baseline",
        str(tmp_path / "baseline.json"))
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    by_object = {(r["ruleId"], r["properties"]["object"].get("cluster"), r["properties"]["object"]["name"]): r for r in results}
    east = by_object[("headless-multicluster-ambient", "east", "db")]
    west = by_object[("headless-multicluster-ambient", "west", "db")]
    assert east["partialFingerprints"] != west["partialFingerprints"]
    cluster_result = by_object[("multicluster-ambient", "east", "east")]
    assert cluster_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "k8s/east/_cluster"
    assert "@east" in cluster_result["message"]["text"]
    check_sarif(sarif)
    entries = json.loads((tmp_path / "baseline.json").read_text())["findings"]
    assert {e["cluster"] for e in entries} == set(NAMES)
    again = run("scan", *file_args(), "--istio-version", "1.27.1", "--baseline", str(tmp_path / "baseline.json"))
    assert again.exit_code == 0, again.stdout  # every finding is in the baseline
    # the same object in another cluster is a new finding, not the baselined one
    only_east = [e for e in entries if e["cluster"] != "west"]
    (tmp_path / "partial.json").write_text(json.dumps({"kind": "MeshAuditBaseline", "schema_version": 1,
                                                       "findings": only_east}))
    partial = json.loads(run("scan", *file_args(), "--istio-version", "1.27.1", "--baseline", str(tmp_path / "partial.json"),
                             "-o", "json").stdout)
    new = {(f["rule"], f["object"]["cluster"]) for f in partial["findings"] if f["baseline_state"] == "new"}
    assert new == {("headless-multicluster-ambient", "west"), ("multicluster-ambient", "west")}


def test_ignores_and_exemptions_can_name_clusters(tmp_path):
    result = run("scan", *file_args(), "--istio-version", "1.27.1", "-o", "json",
                 "--ignore", "headless-multicluster-ambient=Service/shop/db@west",
                 "--ignore", "multicluster-ambient=Cluster/*@[ec]*")
    doc = json.loads(result.stdout)
    suppressed = {(f["rule"], f["object"]["cluster"]) for f in doc["findings"] if f["suppressed"]}
    assert suppressed == {("headless-multicluster-ambient", "west"), ("multicluster-ambient", "east"),
                          ("multicluster-ambient", "central")}
    config = tmp_path / ".mesh-audit.yaml"
    config.write_text("exemptions:\n"
                      "  - {rule: mesh-identity-mismatch, object: 'Cluster/*@central', reason: migrating the trust domain}\n"
                      "  - {rule: service-multicluster-conflict, object: 'Service/shop/*@north', reason: no such cluster,"
                      " expires: 2020-01-01}\n")
    result = run("scan", *file_args(), "--istio-version", "1.27.1", "--config", str(config), "-o", "json")
    doc = json.loads(result.stdout)
    assert [f["object"]["cluster"] for f in doc["findings"] if f["suppressed"]] == ["central"]
    assert [w["message"] for w in doc["warnings"]].count(
        "exemption expired on 2020-01-01 and no longer suppresses: service-multicluster-conflict on Service/shop/*@north "
        "(until 2020-01-01): "
        "no such cluster") == 1  # once, though every cluster's audit saw it
    single = run("scan", "-f", str(MESH / "east.yaml"), "--ignore", "*=Cluster/*@east", "-o", "json")
    assert not any(f["suppressed"] for f in json.loads(single.stdout)["findings"])  # one cluster has no name


def test_the_same_warning_from_two_clusters_names_each():
    from auditor.model.snapshot import K8sObject, Snapshot

    broken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
              "data": {"mesh": "trustDomain: [unclosed"}}
    mesh = Clusters({name: Snapshot([K8sObject(broken)]) for name in ("east", "west")})
    report = api.audit(mesh)
    messages = [w["message"] for w in report.warnings]
    assert [m.split(":")[0] for m in messages] == ["cluster east", "cluster west"]
    assert all("data.mesh is not valid YAML" in m for m in messages)


def test_explain_takes_the_cluster():
    result = run("explain", "Service/shop/cart", "--cluster", "central", *file_args(), "--istio-version", "1.27.1",
                 "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["facts"]["multicluster"]["waypoint"] == {"here": "", "expected": "shop/waypoint", "clusters": ["east", "west"]}
    assert [f["rule"] for f in doc["findings"]] == ["waypoint-multicluster-mismatch"]
    east = json.loads(run("explain", "Service/shop/cart", "--cluster", "east", *file_args(), "-o", "json").stdout)
    assert east["findings"] == [] and east["waypoint"]["bound_to"] == "shop/waypoint"
    unnamed = run("explain", "Service/shop/cart", *file_args())
    assert unnamed.exit_code == 2 and "name the cluster (one of east, west, central)" in unnamed.stderr
    wrong = run("explain", "Service/shop/cart", "--cluster", "north", *file_args())
    assert wrong.exit_code == 2 and "no cluster named 'north'" in wrong.stderr


def test_messages_name_what_each_cluster_shows():
    report = api.audit(api.load({name: [str(MESH / f"{name}.yaml")] for name in NAMES}), api.Settings(istio_version="1.27.1"))
    messages = {(f.rule, f.object.cluster, f.object.name): f.message for f in report.findings}
    assert messages[("primary-remote-ambient", "central", "central")].startswith(
        "this cluster runs no istiod (a remote whose control plane runs in east) while the mesh runs ambient workloads "
        "in east, west, central")
    assert messages[("mesh-identity-mismatch", "central", "central")] == \
        "trust domain central.local here, cluster.local in east, west"
    assert messages[("service-multicluster-conflict", "central", "payments")] == (
        "this Service differs from its copies in the other clusters: ports grpc 9091/TCP here, grpc 9090/TCP in east, west")
    assert messages[("multicluster-ambient", "east", "east")] == (
        "ambient workloads run in this cluster, one of the 3 clusters of the mesh (east, west, central): ambient "
        "multicluster is Alpha in Istio 1.27.1, with no compatibility promise across upgrades")


def test_plan_refuses_several_clusters():
    result = run("plan", *file_args())
    assert result.exit_code == 2 and "plan reads one cluster" in result.stderr


def test_the_library_audits_a_mapping_of_clusters():
    mesh = api.load({name: [str(MESH / f"{name}.yaml")] for name in NAMES})
    assert isinstance(mesh, Clusters) and list(mesh.members) == list(NAMES) and len(mesh) == 27
    report = api.audit(mesh, api.Settings(istio_version="1.27.1"))
    assert {(f.rule, f.object.cluster) for f in report.findings} == {(r, c) for r, _, _, c in EXPECTED}
    assert str(next(f.object for f in report.findings if f.rule == "primary-remote-ambient")) == "Cluster central @central"
    with pytest.raises(api.UsageError, match="at least two"):
        api.load({"east": [str(MESH / "east.yaml")]})
    with pytest.raises(api.UsageError, match="cluster name 'a/b'"):
        api.load({"a/b": [str(MESH / "east.yaml")], "c": [str(MESH / "west.yaml")]})


def test_a_single_cluster_report_names_no_cluster():
    doc = json.loads(run("scan", "-f", str(MESH / "east.yaml"), "--istio-version", "1.27.1", "-o", "json").stdout)
    assert doc["findings"] == [] or all("cluster" not in f["object"] for f in doc["findings"])
    assert doc["collection"]["source"] == "files"
    assert not any(f["rule"].startswith(("multicluster", "mesh-identity")) for f in doc["findings"])


def test_multi_network_upgrade_finding_is_left_to_the_dedicated_rules():
    """A mesh audited as several clusters reports multi-network through multicluster-ambient
    only; upgrade-alpha-feature keeps the single-cluster view (one cluster's labels)."""
    mesh = api.load({name: [str(MESH / f"{name}.yaml")] for name in NAMES})
    report = api.audit(mesh, api.Settings(istio_version="1.27.1"))
    assert not [f for f in report.findings if f.rule == "upgrade-alpha-feature"]
    alone = api.audit(api.load([str(MESH / "central.yaml")]), api.Settings(istio_version="1.27.1"))
    assert [str(f.object) for f in alone.findings if f.rule == "upgrade-alpha-feature"] == ["Namespace istio-system"]
