"""Credentials are never printed or stored: a password in the server URL, a token file
ending in a newline (kubectl trims it), a token an HTTP header cannot carry."""

from __future__ import annotations

import gzip
import json
import socket

import yaml

from auditor.collect.cluster.kubeconfig import shown_url
from conftest import cluster_objects, run
from kube_api.server import ApiServer

SECRET = "s3cret-Passw0rd"


def with_password(url: str) -> str:
    return url.replace("https://", f"https://admin:{SECRET}@")


def rewrite(kubeconfig, **cluster) -> None:
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["clusters"][0]["cluster"].update(cluster)
    kubeconfig.write_text(yaml.safe_dump(doc))


def test_shown_url_drops_user_info_and_query():
    assert shown_url(f"https://admin:{SECRET}@10.0.0.1:6443/prefix?token=x") == "https://10.0.0.1:6443/prefix"
    assert shown_url("https://10.0.0.1:6443") == "https://10.0.0.1:6443"
    assert shown_url(None) is None


def test_an_unreachable_server_is_named_without_its_password(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ApiServer([]) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
    rewrite(kubeconfig, server=with_password(f"https://127.0.0.1:{port}"))
    result = run("scan", "--kubeconfig", kubeconfig, "--timeout", "5")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"mesh-audit: error: cluster at https://127.0.0.1:{port} is unreachable")
    assert SECRET not in result.output and "admin:" not in result.output


def test_reports_and_snapshots_store_the_server_without_its_password(tmp_path):
    with ApiServer(cluster_objects()) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        rewrite(kubeconfig, server=with_password(server.url))
        report = run("scan", "--kubeconfig", kubeconfig, "-o", "json")
        assert report.exit_code == 1, report.output
        assert json.loads(report.stdout)["collection"]["server"] == server.url
        snapshot = tmp_path / "cluster.json.gz"
        assert run("snapshot", "--kubeconfig", kubeconfig, "-o", snapshot).exit_code == 0
    assert SECRET not in report.output
    assert SECRET.encode() not in gzip.decompress(snapshot.read_bytes())


def test_a_token_file_ending_in_a_newline_is_trimmed_as_kubectl_does(tmp_path):
    with ApiServer(cluster_objects()) as server:
        token = tmp_path / "token"
        token.write_text(server.token + "\n")
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", user={"tokenFile": str(token)})
        result = run("scan", "--kubeconfig", kubeconfig, "-o", "json", "--fail-on", "never")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["summary"]["objects"] > 0


def test_a_token_a_header_cannot_carry_is_one_line_without_the_token(tmp_path):
    with ApiServer(cluster_objects()) as server:
        token = tmp_path / "token"
        token.write_text(f"{SECRET}\nsecond-line\n")
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", user={"tokenFile": str(token)})
        result = run("scan", "--kubeconfig", kubeconfig)
    assert result.exit_code == 3
    assert result.stderr.startswith("mesh-audit: error: the credentials for https://127.0.0.1:")
    assert result.stderr.count("\n") == 1 and SECRET not in result.output
