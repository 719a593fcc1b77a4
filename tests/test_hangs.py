"""--timeout bounds everything a collection waits on: an exec credential plugin that never
finishes, and an API server that trickles its answer a byte at a time (each byte resets a
socket timeout, so only a clock on the whole exchange ends it). All against the API test
server on 127.0.0.1, bounded in time."""

from __future__ import annotations

import sys
import time

import pytest

from conftest import cluster_objects, run
from kube_api.server import ApiServer


@pytest.fixture(autouse=True)
def no_thread_outlives_the_test():
    """A request cut at the deadline is left on a daemon thread until the server hangs up;
    the server stops its trickle when it stops, so by the next test (which may fork) it has
    ended: wait for that, bounded."""
    import threading

    before = threading.active_count()
    yield
    deadline = time.monotonic() + 20
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]


def test_an_exec_plugin_that_never_finishes_is_stopped_at_the_timeout(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import time\ntime.sleep(600)\n")
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": [str(plugin)],
                     "interactiveMode": "Never"}}
    with ApiServer(cluster_objects()) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", context="prod", user=user)
        started = time.monotonic()
        result = run("scan", "--kubeconfig", kubeconfig, "--timeout", "2")
        took = time.monotonic() - started
        assert server.requests == []
    assert result.exit_code == 3
    assert result.stderr == ("mesh-audit: error: credentials for context prod: exec: the credential plugin did not "
                             "finish within 2 s (--timeout)\n")
    assert took < 60  # bounded: the plugin alone would take ten minutes


def test_a_version_answer_that_trickles_is_cut_at_the_timeout(tmp_path):
    with ApiServer(cluster_objects()) as server:
        server.fault("/version", trickle=0.5)
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        started = time.monotonic()
        result = run("scan", "--kubeconfig", kubeconfig, "--timeout", "2")
        assert time.monotonic() - started < 60
    assert result.exit_code == 3
    assert result.stderr.startswith("mesh-audit: error: timed out connecting to https://127.0.0.1:")


def test_a_list_that_trickles_is_a_gap_at_the_timeout(tmp_path):
    with ApiServer(cluster_objects()) as server:
        server.fault("pods", trickle=0.5)
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        started = time.monotonic()
        result = run("scan", "--kubeconfig", kubeconfig, "--timeout", "3", "-o", "json")
        assert time.monotonic() - started < 60
    assert result.exit_code == 3
    assert "mesh-audit: warning: not collected: pods:" in result.stderr
