"""A change judged against the cluster it lands in: `--against SNAPSHOT|cluster`,
`--delete`, `--diff-base` and `--changes-only` (auditor/change).

The base is fixtures/change/cluster written as a snapshot (shop in ambient mode: cart with
no waypoint, checkout behind checkout-waypoint with an L7 policy on it); the change is
fixtures/change/pr or files the test writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from auditor import api
from auditor.change import apply_change, parse_deletion
from auditor.collect.collection import Collection
from auditor.collect.snapshot.file import write_snapshot
from auditor.core.errors import UsageError
from auditor.model.snapshot import K8sObject, Snapshot
from conftest import FIXTURES, ROOT, run

CLUSTER = FIXTURES / "change" / "cluster"
PR = FIXTURES / "change" / "pr"
HAS_KUSTOMIZE = bool(shutil.which("kustomize") or shutil.which("kubectl"))

POLICY_ON_CART = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: cart-admin, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
"""


def cluster_docs(*extra: str) -> list[dict]:
    docs = []
    for path in sorted(CLUSTER.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for text in extra:
        docs += [d for d in yaml.safe_load_all(text) if d]
    for i, doc in enumerate(docs):  # read back from a cluster, as a snapshot holds them
        doc["metadata"]["uid"] = f"uid-{i}"
    return docs


def served_docs() -> list[dict]:
    """The cluster as the API test server serves it: with the CRDs of Istio and the Gateway API."""
    return cluster_docs() + [d for d in yaml.safe_load_all((FIXTURES / "cluster" / "crds.yaml").read_text()) if d]


def write_base(path: Path, *extra: str) -> Path:
    write_snapshot(Collection(objects=cluster_docs(*extra), context="prod", server="https://prod.example:6443",
                              server_version="v1.31.4", counts={"namespaces": 2}), str(path))
    return path


@pytest.fixture
def base(tmp_path) -> Path:
    return write_base(tmp_path / "cluster.json")


def doc_of(result) -> dict:
    return json.loads(result.stdout)


def found(doc: dict) -> set[tuple[str, str]]:
    ref = lambda o: f"{o['kind']} {o['namespace'] + '/' if o['namespace'] else ''}{o['name']}"  # noqa: E731
    return {(f["rule"], ref(f["object"])) for f in doc["findings"]}


# -- an added object ------------------------------------------------------------------------

def test_the_change_alone_says_nothing_but_against_the_cluster_it_is_an_error(base):
    alone = run("scan", PR / "cart-admin.yaml", "-o", "json")
    assert alone.exit_code == 0 and doc_of(alone)["findings"] == []
    judged = run("scan", "--against", base, PR / "cart-admin.yaml", "-o", "json")
    assert judged.exit_code == 1
    doc = doc_of(judged)
    assert found(doc) == {("authz-l7-at-ztunnel", "AuthorizationPolicy shop/cart-admin")}
    [finding] = doc["findings"]
    assert finding["location"] == {"file": str(PR / "cart-admin.yaml"), "line": 8,
                                   "field": "/spec/rules/0/to/0/operation/paths"}
    assert doc["collection"]["source"] == "snapshot" and doc["collection"]["change"] == {"applied": 1, "deleted": 0}


def test_snapshot_with_paths_means_against(base):
    against = run("scan", "--against", base, "-f", PR / "cart-admin.yaml", "-o", "json")
    snapshot = run("scan", "--snapshot", base, "-f", PR / "cart-admin.yaml", "-o", "json")
    assert against.exit_code == snapshot.exit_code == 1
    assert against.stdout == snapshot.stdout


def test_the_library_call_returns_the_combined_state_and_what_changed(base):
    applied = api.apply([str(PR)], str(base))
    assert len(applied.combined) == len(applied.base) + 1
    assert applied.combined.get("security.istio.io/AuthorizationPolicy", "shop", "cart-admin") is not None
    assert applied.base.get("security.istio.io/AuthorizationPolicy", "shop", "cart-admin") is None
    [changed] = applied.all_changed()
    assert (changed.ref, changed.location, changed.deleted) == ("AuthorizationPolicy shop/cart-admin",
                                                                (str(PR / "cart-admin.yaml"), 2), False)
    report = api.audit_change(applied)
    assert [f.rule for f in report.findings] == ["authz-l7-at-ztunnel"]


# -- a replaced object, and findings on objects the change does not hold --------------------

def test_a_replaced_object_changes_findings_on_unchanged_objects_and_names_itself_as_cause(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    service = Path("svc.yaml")  # the PR takes checkout off its waypoint
    service.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: checkout\n  namespace: shop\n"
                       "spec:\n  selector: {app: checkout}\n  ports:\n    - {name: http, port: 8080}\n")
    result = run("scan", "--against", base, service, "--changes-only", "-o", "json")
    assert result.exit_code == 1
    doc = doc_of(result)
    assert ("policy-target-unbound", "AuthorizationPolicy shop/checkout-post-only") in found(doc)
    unbound = next(f for f in doc["findings"] if f["rule"] == "policy-target-unbound")
    assert unbound["location"] is None  # the policy lives in the cluster
    assert unbound["caused_by"] == [{"object": "Service shop/checkout", "change": "applied",
                                     "location": {"file": str(service), "line": 1}}]
    table = run("scan", "--against", base, service, "--changes-only")
    assert "because of: Service shop/checkout (svc.yaml:1)" in table.stdout


def test_the_cause_reaches_sarif_related_locations_and_the_annotation_sits_on_the_change(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("checkout.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: checkout\n  namespace: shop\n"
                                     "spec:\n  selector: {app: checkout}\n")
    sarif = run("scan", "--against", base, "checkout.yaml", "--changes-only", "-o", "sarif", "--repo-root", ".")
    results = json.loads(sarif.stdout)["runs"][0]["results"]
    unbound = next(r for r in results if r["ruleId"] == "policy-target-unbound")
    assert unbound["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("k8s/")
    assert unbound["relatedLocations"] == [{
        "id": 1, "message": {"text": "Service shop/checkout (checkout.yaml:1)"},
        "physicalLocation": {"artifactLocation": {"uri": "checkout.yaml", "uriBaseId": "%SRCROOT%"},
                             "region": {"startLine": 1}}}]
    assert "because of the change: Service shop/checkout (checkout.yaml:1)" in unbound["message"]["text"]
    github = run("scan", "--against", base, "checkout.yaml", "--changes-only", "-o", "github", "--repo-root", ".")
    line = next(x for x in github.stdout.splitlines() if "policy-target-unbound" in x)
    assert line.startswith("::error file=checkout.yaml,line=1,title=policy-target-unbound")


def test_sarif_with_causes_passes_githubs_ingestion_rules(base, tmp_path):
    from sarif_check import check_sarif

    out = tmp_path / "out.sarif"
    run("scan", "--against", base, "--delete", "Gateway/shop/checkout-waypoint", "--changes-only", "-o", f"sarif={out}")
    assert check_sarif(out)["runs"][0]["results"][0]["relatedLocations"]


# -- deletions ------------------------------------------------------------------------------

def test_delete_removes_a_cluster_object_and_is_named_as_the_cause(base):
    result = run("scan", "--against", base, "--delete", "Gateway/shop/checkout-waypoint", "--changes-only", "-o", "json")
    assert result.exit_code == 1
    doc = doc_of(result)
    assert found(doc) == {("waypoint-missing", "Service shop/checkout"),
                          ("policy-target-unbound", "AuthorizationPolicy shop/checkout-post-only")}
    assert all(f["caused_by"] == [{"object": "Gateway shop/checkout-waypoint", "change": "deleted", "location": None,
                                   "why": "--delete"}] for f in doc["findings"])
    assert doc["change"]["deleted"] == 1 and doc["change"]["applied"] == 0
    assert doc["summary"]["objects"] == len(cluster_docs()) - 1


def test_delete_with_a_group_and_case_insensitive_kind(base):
    doc = doc_of(run("scan", "--against", base, "--delete", "gateway.gateway.networking.k8s.io/shop/checkout-waypoint",
                     "-o", "json"))
    assert ("waypoint-missing", "Service shop/checkout") in found(doc)


def test_delete_of_an_object_the_base_lacks_is_a_warning_not_silence(base):
    result = run("scan", "--against", base, "--delete", "Gateway/shop/nope", "-o", "json")
    assert result.exit_code == 0
    assert "mesh-audit: warning: --delete Gateway/shop/nope: no such object in the base; nothing deleted" in result.stderr


@pytest.mark.parametrize("ref, message", [
    ("Gateway", "--delete Gateway: name the object as KIND/NAMESPACE/NAME (or KIND/NAME when cluster-scoped)"),
    ("Gateway/checkout-waypoint", "--delete Gateway/checkout-waypoint: Gateway is namespaced: write "
                                  "Gateway/NAMESPACE/checkout-waypoint"),
    ("a//b", "--delete a//b: name the object as KIND/NAMESPACE/NAME (or KIND/NAME when cluster-scoped)"),
])
def test_a_malformed_delete_is_one_error_line(base, ref, message):
    result = run("scan", "--against", base, "--delete", ref)
    assert result.exit_code == 2
    assert result.stderr == f"mesh-audit: error: {message}\n"


def test_an_ambiguous_delete_asks_for_the_group(tmp_path):
    istio_gateway = ("apiVersion: networking.istio.io/v1\nkind: Gateway\n"
                     "metadata: {name: checkout-waypoint, namespace: shop}\nspec: {selector: {istio: ingressgateway}}\n")
    base = write_base(tmp_path / "cluster.json", istio_gateway)
    result = run("scan", "--against", base, "--delete", "Gateway/shop/checkout-waypoint")
    assert result.exit_code == 2
    assert "is ambiguous (Gateway.gateway.networking.k8s.io, Gateway.networking.istio.io)" in result.stderr


def test_deleting_what_the_change_writes_is_refused(base):
    result = run("scan", "--against", base, PR, "--delete", "AuthorizationPolicy/shop/cart-admin")
    assert result.exit_code == 2
    assert result.stderr == (f"mesh-audit: error: --delete AuthorizationPolicy/shop/cart-admin: the change also writes "
                             f"this object ({PR / 'cart-admin.yaml'}:2); delete it or write it, not both\n")


def test_only_deletions_with_no_objects_is_a_valid_change(base, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("scan", "--against", base, empty, "--delete", "Gateway/shop/checkout-waypoint", "-o", "json")
    assert result.exit_code == 1
    assert ("waypoint-missing", "Service shop/checkout") in found(doc_of(result))
    assert run("scan", "--against", base, "-o", "json").exit_code == 0  # the base, unchanged


@pytest.mark.parametrize("args, message", [
    (("--delete", "Gateway/shop/x"), "--delete judges a change against a base: add --against SNAPSHOT or --against cluster"),
    (("--changes-only",), "--changes-only judges a change against a base: add --against SNAPSHOT or --against cluster"),
    (("--diff-base", "HEAD"), "--diff-base judges a change against a base: add --against SNAPSHOT or --against cluster"),
    (("--against", "cluster", "--no-cluster"), "--against cluster reads the live cluster, which --no-cluster rules "
                                               "out: give a snapshot"),
    (("--against", "missing.json"), "--against missing.json: no such file (give a snapshot written by 'mesh-audit "
                                    "snapshot', or 'cluster')"),
])
def test_change_options_without_a_base_are_refused_in_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("scan", str(PR), *args)
    assert result.exit_code == 2
    assert result.stderr == f"mesh-audit: error: {message}\n"


def test_against_a_file_that_is_not_a_snapshot_is_refused(tmp_path):
    result = run("scan", "--against", PR / "cart-admin.yaml", PR)
    assert result.exit_code == 2
    assert "not a mesh-audit snapshot" in result.stderr


def test_a_broken_change_is_an_input_error_at_its_line(base, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [oops\n")
    result = run("scan", "--against", base, broken, "--changes-only")
    assert result.exit_code == 2
    assert f"mesh-audit: error: {broken}:" in result.stderr


# -- --diff-base in a git repository --------------------------------------------------------

WAYPOINT = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: checkout-waypoint
  namespace: shop
  labels: {istio.io/waypoint-for: service}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A manifest repository whose main holds the waypoint and a policy; the working tree
    (the pull request) removes the waypoint's file."""
    repo = tmp_path / "repo"
    (repo / "k8s").mkdir(parents=True)
    (repo / "ci").mkdir()
    (repo / "k8s" / "waypoint.yaml").write_text(WAYPOINT)
    (repo / "k8s" / "policy.yaml").write_text(POLICY_ON_CART.replace("cart-admin", "cart-from-shop").replace(
        'rules: [{to: [{operation: {paths: ["/admin"]}}]}]', "rules: [{from: [{source: {namespaces: [shop]}}]}]"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "main")
    (repo / "k8s" / "waypoint.yaml").unlink()
    return repo


def test_diff_base_deletes_what_the_pull_request_removed(repo, base, monkeypatch):
    monkeypatch.chdir(repo)
    result = run("scan", "--against", base, "k8s", "--diff-base", "main", "--changes-only", "-o", "json")
    doc = doc_of(result)
    assert ("waypoint-missing", "Service shop/checkout") in found(doc)
    cause = next(f for f in doc["findings"] if f["rule"] == "waypoint-missing")["caused_by"]
    assert cause == [{"object": "Gateway shop/checkout-waypoint", "change": "deleted", "why": "removed since main",
                      "location": {"file": os.path.join("k8s", "waypoint.yaml"), "line": 1}}]
    assert doc["change"]["deleted"] == 1
    assert result.exit_code == 1


def test_diff_base_from_a_subdirectory(repo, base, monkeypatch):
    monkeypatch.chdir(repo / "ci")
    doc = doc_of(run("scan", "--against", base, "../k8s", "--diff-base", "main", "--changes-only", "-o", "json"))
    cause = next(f for f in doc["findings"] if f["rule"] == "waypoint-missing")["caused_by"][0]
    assert cause["location"] == {"file": os.path.join("..", "k8s", "waypoint.yaml"), "line": 1}


def test_diff_base_keeps_what_was_only_moved_and_what_is_excluded(repo, base, monkeypatch):
    monkeypatch.chdir(repo)
    (repo / "k8s" / "moved.yaml").write_text(WAYPOINT)  # the same Gateway, in another file
    doc = doc_of(run("scan", "--against", base, "k8s", "--diff-base", "main", "--changes-only", "-o", "json"))
    assert doc["change"]["deleted"] == 0 and doc["findings"] == []
    (repo / "k8s" / "moved.yaml").unlink()
    excluded = doc_of(run("scan", "--against", base, "k8s", "--diff-base", "main", "--exclude", "waypoint.yaml",
                          "--changes-only", "-o", "json"))
    assert excluded["change"]["deleted"] == 0


def test_diff_base_renders_a_configured_chart_at_the_ref_as_configured(repo, base, tmp_path, monkeypatch):
    """A chart the configuration gives a release name: read at the ref it renders under the
    same name, so an unchanged chart deletes nothing; deleting its template deletes the
    object, named at the template's path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'helm_standin.py'} \"$@\"\n")
    (bin_dir / "helm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    chart = repo / "charts" / "cart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: cart\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("{}\n")
    (chart / "templates" / "policy.yaml").write_text(POLICY_ON_CART.replace("cart-admin", "{{ .Release.Name }}").replace(
        'rules: [{to: [{operation: {paths: ["/admin"]}}]}]', "rules: [{from: [{source: {namespaces: [shop]}}]}]"))
    (repo / ".mesh-audit.yaml").write_text("helm:\n  charts:\n    charts/cart: {release: cart-from-chart}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "chart")
    monkeypatch.chdir(repo)
    kept = doc_of(run("scan", "--against", base, "charts", "--diff-base", "HEAD", "--changes-only", "-o", "json"))
    assert kept["change"]["deleted"] == 0 and kept["change"]["applied"] == 1
    assert kept["change"]["objects"][0]["object"] == "AuthorizationPolicy shop/cart-from-chart"
    (chart / "templates" / "policy.yaml").unlink()
    deployed = write_base(tmp_path / "deployed.json", POLICY_ON_CART.replace("cart-admin", "cart-from-chart"))
    applied = api.apply(["charts"], str(deployed), diff_base="HEAD", settings=api.Settings(config=".mesh-audit.yaml"))
    [gone] = applied.all_changed()
    assert (gone.deleted, gone.ref, gone.why) == (True, "AuthorizationPolicy shop/cart-from-chart", "removed since HEAD")
    assert gone.location[0] == os.path.join("charts", "cart", "templates", "policy.yaml")


def test_diff_base_with_a_ref_that_is_no_commit(repo, base, monkeypatch):
    monkeypatch.chdir(repo)
    result = run("scan", "--against", base, "k8s", "--diff-base", "no-such-branch")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mesh-audit: error: --diff-base no-such-branch: no such commit in {repo}")


def test_diff_base_outside_a_git_work_tree(base, tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    monkeypatch.chdir(tmp_path / "plain")
    result = run("scan", "--against", base, ".", "--diff-base", "main")
    assert result.exit_code == 2
    assert result.stderr == "mesh-audit: error: --diff-base main: . is not in a git work tree\n"


# -- --changes-only: added, resolved, exit codes ---------------------------------------------

def test_changes_only_reports_what_the_change_adds_and_resolves(tmp_path):
    base = write_base(tmp_path / "cluster.json", POLICY_ON_CART.replace("cart-admin", "cart-old"))
    fix = tmp_path / "fix.yaml"  # the PR replaces the L7 policy with one ztunnel can enforce
    fix.write_text(POLICY_ON_CART.replace("cart-admin", "cart-old").replace(
        'rules: [{to: [{operation: {paths: ["/admin"]}}]}]', "rules: [{from: [{source: {namespaces: [shop]}}]}]"))
    whole = run("scan", "--against", base, fix, "-o", "json")
    assert whole.exit_code == 0 and doc_of(whole)["findings"] == []
    only = run("scan", "--against", base, fix, "--changes-only", "-o", "json")
    assert only.exit_code == 0
    doc = doc_of(only)
    assert doc["findings"] == [] and doc["change"]["added"] == []
    assert [(f["rule"], f["object"]["name"]) for f in doc["change"]["resolved"]] == [("authz-l7-at-ztunnel", "cart-old")]
    table = run("scan", "--against", base, fix, "--changes-only")
    assert "Resolved by the change:\n  error  authz-l7-at-ztunnel  AuthorizationPolicy shop/cart-old" in table.stdout
    assert table.stdout.rstrip().endswith("change: 0 added, 1 resolved")
    markdown = run("scan", "--against", base, fix, "--changes-only", "-o", "markdown")
    assert "the change brings 0 added, 1 resolved finding(s)" in markdown.stdout


def test_changes_only_never_fails_on_what_was_already_wrong(tmp_path):
    base = write_base(tmp_path / "cluster.json", POLICY_ON_CART.replace("cart-admin", "cart-old"))
    harmless = tmp_path / "harmless.yaml"
    harmless.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {a: b}\n")
    assert run("scan", "--against", base, harmless).exit_code == 1  # the cluster's own error
    only = run("scan", "--against", base, harmless, "--changes-only", "-o", "json")
    assert only.exit_code == 0 and doc_of(only)["summary"]["error"] == 0
    adds = run("scan", "--against", base, harmless, PR, "--changes-only", "-o", "json")
    assert adds.exit_code == 1
    assert found(doc_of(adds)) == {("authz-l7-at-ztunnel", "AuthorizationPolicy shop/cart-admin")}
    github = run("scan", "--against", base, harmless, PR, "--changes-only", "-o", "github")
    assert github.stdout.rstrip().endswith("1 errors, 0 warnings, 0 info added by the change (0 resolved) in 15 objects")


def test_changes_only_json_matches_the_report_schema(base):
    import jsonschema

    schema = json.loads((ROOT / "auditor" / "schemas" / "report.schema.json").read_text())
    doc = doc_of(run("scan", "--against", base, PR, "--delete", "Gateway/shop/checkout-waypoint", "--changes-only",
                     "-o", "json"))
    jsonschema.validate(doc, schema)
    assert set(doc["change"]) == {"added", "resolved", "applied", "deleted", "objects"}
    assert doc["change"]["added"] == doc["findings"]
    caused = next(f for f in doc["findings"] if "caused_by" in f)
    caused["caused_by"][0]["change"] = "renamed"  # the schema describes causes, it does not just allow them
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


# -- where objects land -----------------------------------------------------------------------

NAMELESS = ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: cart-admin}\n"
            "spec:\n  selector: {matchLabels: {app: cart}}\n  action: ALLOW\n"
            "  rules: [{to: [{operation: {paths: [\"/admin\"]}}]}]\n")


def test_an_object_with_no_namespace_lands_in_default_or_in_the_one_namespace_given(base, tmp_path):
    change = tmp_path / "nameless.yaml"
    change.write_text(NAMELESS)
    in_default = doc_of(run("scan", "--against", base, change, "-o", "json"))
    assert in_default["findings"] == []  # nothing selects app=cart in default
    in_shop = doc_of(run("scan", "--against", base, change, "-n", "shop", "-o", "json"))
    assert found(in_shop) == {("authz-l7-at-ztunnel", "AuthorizationPolicy shop/cart-admin")}
    applied = api.apply([str(change)], str(base), namespace="shop")
    assert applied.combined.get("security.istio.io/AuthorizationPolicy", "shop", "cart-admin") is not None
    assert applied.combined.get("security.istio.io/AuthorizationPolicy", "default", "cart-admin") is None


@pytest.mark.skipif(not HAS_KUSTOMIZE, reason="neither kustomize nor kubectl is installed here")
def test_an_overlay_as_the_change_renders_as_in_a_plain_scan(base):
    doc = doc_of(run("scan", "--against", base, FIXTURES / "gitops" / "kustomize" / "overlays" / "prod", "-o", "json"))
    assert ("authz-l7-at-ztunnel", "AuthorizationPolicy orders-prod/orders-read") in found(doc)
    finding = next(f for f in doc["findings"] if f["object"]["name"] == "orders-read")
    assert finding["location"]["file"].endswith(os.path.join("kustomize", "base", "authz.yaml"))
    assert doc["collection"]["rendered"] == [
        {"path": str(FIXTURES / "gitops" / "kustomize" / "overlays" / "prod"), "by": "kustomize", "objects": 4}]


def test_a_chart_that_cannot_be_rendered_is_named_and_with_require_rendering_a_gap(base, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no helm here
    chart = FIXTURES / "gitops" / "charts" / "shop"
    doc = doc_of(run("scan", "--against", base, chart, "--changes-only", "-o", "json"))
    assert [n["path"] for n in doc["collection"]["not_rendered"]] == [str(chart)]
    strict = run("scan", "--against", base, chart, "--changes-only", "--require-rendering", "-o", "json")
    assert strict.exit_code == 3
    assert [g["resource"] for g in doc_of(strict)["collection"]["not_collected"]] == [str(chart)]


def test_a_chart_as_the_change_renders_with_helm(base, tmp_path, monkeypatch):
    """The chart of the change is rendered (helm: the tests' stand-in) and its findings
    land on the template the object came from."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'helm_standin.py'} \"$@\"\n")
    helm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    chart = tmp_path / "cart-policy"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: cart-policy\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("path: /admin\n")
    (chart / "templates" / "authz.yaml").write_text(POLICY_ON_CART.replace("cart-admin", "{{ .Release.Name }}").replace(
        '"/admin"', '"{{ .Values.path }}"'))
    report = api.audit_change(api.apply([str(chart)], str(base)), changes_only=True)
    assert [(f.rule, str(f.object), f.location[0]) for f in report.findings] == [
        ("authz-l7-at-ztunnel", "AuthorizationPolicy shop/cart-policy", str(chart / "templates" / "authz.yaml"))]


# -- other commands, a live cluster, several clusters -------------------------------------------

def test_explain_and_plan_read_the_combined_state(base):
    explained = run("explain", "AuthorizationPolicy/shop/cart-admin", "--against", base, "-f", PR)
    assert explained.exit_code == 0
    assert "authz-l7-at-ztunnel" in explained.stdout
    assert run("explain", "AuthorizationPolicy/shop/cart-admin", "--snapshot", base).exit_code == 2
    sidecar = "apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy, labels: {istio-injection: enabled}}\n"
    planned = run("plan", "--against", base, "-o", "json", "-f", "-", input=sidecar)
    assert planned.exit_code == 0, planned.output
    assert [n["name"] for n in json.loads(planned.stdout)["namespaces"]] == ["legacy"]


def test_against_the_live_cluster(tmp_path):
    from kube_api.server import ApiServer

    with ApiServer(served_docs()) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        result = run("scan", "--against", "cluster", "--kubeconfig", kubeconfig, PR, "--changes-only", "-o", "json")
        assert result.exit_code == 1, result.output
        doc = doc_of(result)
        assert found(doc) == {("authz-l7-at-ztunnel", "AuthorizationPolicy shop/cart-admin")}
        assert doc["collection"]["source"] == "cluster" and doc["collection"]["change"]["applied"] == 1
        assert not [r for r in server.requests if r.method != "GET"]


def test_several_clusters_with_a_change_pinned_to_one(tmp_path):
    east, west = tmp_path / "east.json", tmp_path / "west.json"
    write_base(east)
    write_base(west)
    joined = tmp_path / "mesh.json"
    with open(joined, "wb") as out:
        for name, part in (("east", east), ("west", west)):
            lines = part.read_bytes().split(b"\n", 1)
            head = json.loads(lines[0])
            head.update(schema_version=4, cluster=name, clusters=["east", "west"])
            out.write(json.dumps(head, separators=(",", ":")).encode() + b"\n" + lines[1])
    pinned = run("scan", "--against", joined, f"east={PR}", "--changes-only", "-o", "json")
    doc = doc_of(pinned)
    assert [(f["rule"], f["object"]["cluster"]) for f in doc["findings"]] == [("authz-l7-at-ztunnel", "east")]
    everywhere = doc_of(run("scan", "--against", joined, PR, "--changes-only", "-o", "json"))
    assert sorted(f["object"]["cluster"] for f in everywhere["findings"]) == ["east", "west"]
    unknown = run("scan", "--against", joined, f"north={PR}")
    assert unknown.exit_code == 2 and "the base has no cluster named 'north' (it has east, west)" in unknown.stderr


# -- the library, on its own ---------------------------------------------------------------

def obj(kind: str, name: str, namespace: str | None = None, api_version: str = "v1", **meta) -> K8sObject:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {}), **meta}
    return K8sObject({"apiVersion": api_version, "kind": kind, "metadata": metadata})


def test_apply_replaces_by_group_kind_namespace_and_name_and_adds_the_rest():
    base = Snapshot([obj("Service", "a", "shop", labels={"v": "1"}), obj("ConfigMap", "a", "shop")])
    change = Snapshot([obj("Service", "a", "shop", labels={"v": "2"}), obj("Service", "b", "shop")])
    applied = apply_change(base, change)
    assert applied.combined.get("Service", "shop", "a").labels == {"v": "2"}
    assert applied.combined.get("ConfigMap", "shop", "a") is not None
    assert len(applied.combined) == 3 and len(base) == 2  # the base is left as it was
    assert [c.ref for c in applied.all_changed()] == ["Service shop/a", "Service shop/b"]


def test_an_applied_manifest_keeps_the_live_objects_uid_and_status():
    live = K8sObject({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                      "metadata": {"name": "w", "namespace": "shop", "uid": "u-1"}, "spec": {"listeners": []},
                      "status": {"addresses": [{"value": "10.0.0.1"}]}})
    manifest = K8sObject({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                          "metadata": {"name": "w", "namespace": "shop", "labels": {"a": "b"}},
                          "spec": {"listeners": [{"port": 15008}]}}, "pr.yaml", 3)
    got = apply_change(Snapshot([live]), Snapshot([manifest])).combined.get(*live.key)
    assert got.spec == manifest.spec and got.labels == {"a": "b"}
    assert got.raw["status"] == live.raw["status"] and got.metadata["uid"] == "u-1" and got.observed
    assert (got.file, got.line) == ("pr.yaml", 3)


def test_applying_what_the_cluster_already_holds_changes_nothing(tmp_path):
    """Each namespace's manifests of a generated cluster, applied over its own snapshot:
    nothing added, nothing resolved."""
    sys.path.insert(0, str(ROOT / "bench"))
    from generate import write

    write(300, tmp_path)
    settings = api.resolve(api.Settings())
    manifests = sorted((tmp_path / "manifests").glob("*.yaml"))
    assert len(manifests) >= 3
    for path in manifests:
        report = api.audit_change(api.apply([str(path)], str(tmp_path / "snapshot.json")), settings, changes_only=True)
        assert (report.findings, report.change["resolved"]) == ([], []), path.name
        assert report.change["applied"] >= 3


def test_apply_keeps_the_inputs_problems_apart_from_the_base():
    base, change = Snapshot([obj("Service", "a", "shop")]), Snapshot([obj("Service", "b", "shop")])
    change.errors.append(UsageError("bad", "pr.yaml", 3))
    applied = apply_change(base, change, deletions=("Service/shop/zzz",))
    assert [str(e) for e in applied.combined.errors] == ["pr.yaml:3: bad"] and base.errors == []
    assert [str(w) for w in applied.combined.warnings] == [
        "--delete Service/shop/zzz: no such object in the base; nothing deleted"]


def test_parse_deletion_forms():
    assert parse_deletion("Namespace/shop").namespace is None
    assert parse_deletion("Service.core/shop/a").group == ""
    assert parse_deletion("Gateway/shop/w").group is None
    with pytest.raises(UsageError):
        parse_deletion("Service/a")


def test_the_combined_audit_shares_the_base_yet_equals_a_full_audit_of_each_change():
    """--changes-only audits the combined state on a what-if copy of the base's context
    (facts.derive); for a change to each kind of object of the demo it must report what a
    full audit of the same state reports."""
    from auditor.change.compare import audit_change as compare

    demo = api.load([str(FIXTURES / "demo")])
    settings = api.resolve(api.Settings())
    base_report = api.audit(demo, settings)
    tried = 0
    for victim in list(demo):
        if victim.kind in ("Namespace", "Service", "Gateway", "AuthorizationPolicy", "Deployment", "VirtualService"):
            labels = {**victim.labels, "mesh-audit.test/changed": "yes"}
            changed = K8sObject({**victim.raw, "metadata": {**victim.metadata, "labels": labels}}, victim.file, victim.line)
            for applied in (apply_change(demo, Snapshot([changed])),
                            apply_change(demo, Snapshot(), deletions=(f"{victim.kind}/{victim.namespace}/{victim.name}"
                                                                      if victim.namespace else
                                                                      f"{victim.kind}/{victim.name}",))):
                shared = api.audit_change(applied, settings, changes_only=True)
                full = compare(applied, base_report, api.audit(applied.combined, settings))
                uncaused = lambda report: [{**f.to_dict(), "caused_by": None} for f in report.findings]  # noqa: E731
                assert uncaused(shared) == uncaused(full), victim
                assert shared.change["resolved"] == full.change["resolved"], victim
                tried += 1
    assert tried > 20


# -- pipelines: the Action, the example workflow, the snapshot CronJob -----------------------

def test_the_pull_request_recipe_end_to_end(tmp_path, repo, monkeypatch):
    """The README's recipe as the example workflow runs it: the CronJob's command writes a
    snapshot of the cluster (the API test server), the pull request removes the waypoint's
    file and adds an L7 policy, and the Action, with against, diff-base and changes-only,
    fails on what the change adds, with the cause's annotation on the pull request."""
    from kube_api.server import ApiServer
    from test_integrations import action_env, outputs, run_step, validate

    cronjob = next(d for d in yaml.safe_load_all((ROOT / "deploy" / "snapshot-cronjob.yaml").read_text())
                   if d["kind"] == "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    mount = container["volumeMounts"][0]["mountPath"]
    assert args[0] == "snapshot" and args[args.index("-o") + 1].startswith(mount + "/")
    snapshot = tmp_path / "cluster.json.gz"
    with ApiServer(served_docs()) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        taken = run(*[a if not a.startswith(mount) else snapshot for a in args], "--kubeconfig", kubeconfig)
        assert taken.exit_code == 0, taken.output
    (repo / "k8s" / "cart-admin.yaml").write_text(POLICY_ON_CART)
    workflow = yaml.safe_load((ROOT / ".github" / "examples" / "mesh-audit-pr.yml").read_text())
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in workflow["jobs"]["mesh-audit"]["steps"] if s.get("id") == "mesh-audit")
    assert set(step["with"]) <= set(action["inputs"])
    checkout = workflow["jobs"]["mesh-audit"]["steps"][0]
    assert checkout["uses"].startswith("actions/checkout") and checkout["with"]["fetch-depth"] == 0
    inputs = {**step["with"], "against": str(snapshot), "diff-base": "main"}  # GitHub fills origin/<base> in
    scan = next(s for s in action["runs"]["steps"] if s.get("name") == "Scan")
    result = run_step(scan["run"], repo, action_env(action, tmp_path, **inputs))
    assert result.returncode == 1, result.stderr
    out = outputs(tmp_path)
    assert (out["errors"], out["findings"], out["complete"]) == ("3", "3", "true")
    lines = result.stdout.splitlines()
    assert any(x.startswith("::error file=k8s/cart-admin.yaml,line=7,title=authz-l7-at-ztunnel") for x in lines), lines
    waypoint = next(x for x in lines if "waypoint-missing" in x)
    assert "because of the change: deleted Gateway shop/checkout-waypoint (removed since main" in waypoint
    assert "3 added, 0 resolved" in (tmp_path / "step_summary.md").read_text()
    validate(repo / "mesh-audit.sarif")


def test_the_action_refuses_changes_only_without_a_base(tmp_path):
    from test_integrations import action_env, run_step

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    scan = next(s for s in action["runs"]["steps"] if s.get("name") == "Scan")
    shutil.copytree(PR, tmp_path / "k8s")
    result = run_step(scan["run"], tmp_path, action_env(action, tmp_path, paths="k8s", **{"changes-only": "true"}))
    assert result.returncode == 2
    assert result.stderr == ("mesh-audit: error: the changes-only and diff-base inputs judge a change against a base: "
                             "set against\n")


def test_causes_are_tried_nearest_first_and_at_most_eight_times():
    from auditor.change import Applied, Changed
    from auditor.change.compare import MAX_TRIALS, attribute
    from auditor.model.report import Finding, ObjectRef

    far = [Changed(("ConfigMap", f"ns{i}", "c"), f"ConfigMap ns{i}/c", ("far.yaml", i + 1)) for i in range(12)]
    near = Changed(("Service", "shop", "checkout"), "Service shop/checkout", ("svc.yaml", 1))
    scoped = Changed(("Namespace", None, "shop"), "Namespace shop", ("ns.yaml", 1))
    applied = Applied(Snapshot(), Snapshot(), {None: [*far, scoped, near]})
    finding = Finding("policy-target-unbound", "error", "m",
                      ObjectRef("security.istio.io/v1", "AuthorizationPolicy", "shop", "p"), None, True)
    tried = []

    def trial(item, findings):
        tried.append(item.ref)
        return {finding.identity()} if item is near else set()

    [out] = attribute(applied, [finding], trial)
    assert tried[:2] == ["Service shop/checkout", "Namespace shop"] and len(tried) == MAX_TRIALS == 8
    assert out.causes == [near.to_dict()]
    [nearby] = attribute(applied, [finding], lambda item, findings: set())  # no single change reproduces it
    assert [c["object"] for c in nearby.causes] == ["Namespace shop", "Service shop/checkout"]
