"""Hostile input, interruption and determinism: every case ends in a report, a clear
message or exit 2 (130 for Ctrl-C), within bounded time and memory; never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from auditor.collect.files import load_paths
from conftest import DEMO, FIXTURES, ROOT, run

BILLION_LAUGHS = """apiVersion: v1
kind: ConfigMap
metadata: {name: lol, namespace: x}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def errors_of(tmp_path, name, content) -> list[str]:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    started = time.monotonic()
    result = load_paths([str(path)])
    assert time.monotonic() - started < 10
    return [str(e) for e in result.errors]


@pytest.mark.parametrize("name, content, message", [
    ("bomb.yaml", BILLION_LAUGHS, "bomb.yaml:1: the document's aliases expand to more than 2,000,000 nodes (a YAML alias bomb?)"),
    ("self.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: r}\ndata: &a {x: *a}\n",
     "self.yaml:1: the document contains itself through an alias"),
    ("deep.yaml", "a: " + "[" * 50_000 + "]" * 50_000 + "\n", "deep.yaml:1: invalid YAML: exceeded maximum nesting depth"),
    ("deep.json", "[" * 50_000 + "]" * 50_000, "deep.json:1: invalid JSON"),
    ("binary.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary.yaml: a binary file, not a manifest (it contains NUL bytes)"),
    ("latin1.yaml", "kind: Pod\nmetadata: {name: caf\xe9}\n".encode("latin-1"), "latin1.yaml:2: not valid UTF-8 (byte 30)"),
])
def test_hostile_files_give_one_clear_error(tmp_path, name, content, message):
    [error] = errors_of(tmp_path, name, content)
    assert error.startswith(f"{tmp_path}/{message}"), error


def test_binary_files_in_a_directory_are_not_read_as_manifests(tmp_path):
    (tmp_path / "logo.png").write_bytes(os.urandom(4096))
    (tmp_path / "app.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    result = load_paths([str(tmp_path)])
    assert [o.name for o in result.objects] == ["a"] and result.errors == []


def test_a_bad_file_does_not_lose_the_others(tmp_path):
    (tmp_path / "a.yaml").write_text(BILLION_LAUGHS)
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: both\n"
                                     "  labels: {istio.io/dataplane-mode: ambient, istio-injection: enabled}\n")
    result = run("scan", str(tmp_path), "-o", "json")
    assert result.stdout, (result.exit_code, result.stderr)
    doc = json.loads(result.stdout)
    assert result.exit_code == 2
    assert [f["rule"] for f in doc["findings"]] == ["mode-namespace-conflict"]
    assert doc["errors"][0]["message"].startswith("the document's aliases expand")


def _peak_rss_mb_of(*args) -> tuple[subprocess.CompletedProcess, float]:
    # main() leaves through os._exit; the peak is printed on the way out.
    code = ("import os, resource, sys\nfrom auditor.cli import main\nsys.argv = ['mesh-audit', *sys.argv[1:]]\n"
            "leave = os._exit\n"
            "def report_peak(code):\n"
            "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr, flush=True)\n"
            "    leave(code)\n"
            "os._exit = report_peak\nmain()\n")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return result, int(result.stderr.strip().splitlines()[-1]) / 1024


def test_100_mb_yaml_is_refused_quickly(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        line = b"# " + b"x" * 1022 + b"\n"
        for _ in range(100 * 1024):
            fh.write(line)
    started = time.monotonic()
    result, rss = _peak_rss_mb_of("scan", str(path), "-q")
    assert time.monotonic() - started < 30 and rss < 600
    assert result.returncode == 2
    assert "huge.yaml: 100 MiB of YAML is over the 64 MiB limit; export it as JSON" in result.stderr


def test_100_mb_json_is_scanned_in_bounded_time_and_memory(tmp_path):
    path = tmp_path / "huge.json"
    blob = "x" * (1024 * 1024)
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}", "namespace": "big"}, "data": {"blob": blob}}
             for i in range(100)]
    items.append({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": "big", "labels": {"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"}}})
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    started = time.monotonic()
    result, rss = _peak_rss_mb_of("scan", str(path), "-o", "json", "-q")
    assert time.monotonic() - started < 60 and rss < 1200
    assert result.returncode == 0  # one warning, no errors
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["mode-namespace-conflict"]


# -- interruption -------------------------------------------------------------------------

def _interrupt(args, tmp_path, after: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "auditor", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_during_a_live_scan_exits_130_and_leaves_no_report(api, tmp_path):
    api.fault("pods", delay=8.0)
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    result = _interrupt(["scan", "--kubeconfig", str(api.kubeconfig_path), "-o", "sarif", "--output-file", "report.sarif"],
                        out, after=2.0)
    assert result.returncode == 130
    assert time.monotonic() - started < 6  # does not wait for the slow request
    assert result.stderr.strip().splitlines()[-1] == "mesh-audit: interrupted"
    assert "Traceback" not in result.stderr
    assert list(out.iterdir()) == []  # no report, no temporary file


def test_ctrl_c_during_a_snapshot_leaves_no_file(api, tmp_path):
    api.fault("services", delay=8.0)
    out = tmp_path / "out"
    out.mkdir()
    result = _interrupt(["snapshot", "--kubeconfig", str(api.kubeconfig_path), "-o", "snap.json.gz"], out, after=2.0)
    assert result.returncode == 130 and list(out.iterdir()) == []


def test_interrupted_write_leaves_no_partial_report(tmp_path, mocker):
    from auditor.cli import write_output

    mocker.patch("os.replace", side_effect=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        write_output("report\n", str(tmp_path / "report.json"))
    assert list(tmp_path.iterdir()) == []


def test_write_error_midway_removes_the_temporary_file(tmp_path, mocker):
    from auditor.cli import write_output

    target = tmp_path / "report.json"
    target.write_text("previous report\n")
    mocker.patch("os.replace", side_effect=OSError(28, "No space left on device"))
    with pytest.raises(SystemExit) as exited:  # one error line and exit 2, never a traceback
        write_output("new report\n", str(target))
    assert exited.value.code == 2
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"] and target.read_text() == "previous report\n"


# -- determinism --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "markdown", "github", "policyreport", "openreports"])
def test_same_input_gives_byte_identical_output_across_hash_seeds(fmt, tmp_path):
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-m", "auditor", "scan", DEMO, "-o", fmt, "--fail-on", "never"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout)
    assert len(outputs) == 1


def test_live_scan_output_differs_only_in_documented_fields(api):
    def scan():
        doc = json.loads(run("scan", "--kubeconfig", str(api.kubeconfig_path), "-o", "json").stdout)
        doc["collection"].pop("collected_at")
        return doc

    assert scan() == scan()


# -- the live collector under several faults at once ----------------------------------------

FAULT_MATRIX = {
    "forbidden+flaky": [("pods", dict(status=403)), ("services", dict(status=500, times=2)), ("deployments.apps", dict(drop=True, times=1))],
    "throttled+gone": [("replicasets.apps", dict(status=429, retry_after=0, times=3)), ("namespaces", dict(gone_on_continue=True, times=1)),
                       ("virtualservices.networking.istio.io", dict(status=404))],
    "broken-group+down": [("/apis/security.istio.io/v1", dict(status=403)), ("authorizationpolicies.security.istio.io", dict(status=500)),
                          ("daemonsets.apps", dict(drop=True))],
}


@pytest.mark.parametrize("case", sorted(FAULT_MATRIX))
def test_every_resource_type_is_either_collected_or_accounted_for(api, case):
    from auditor.collect.cluster import RetryPolicy, collect, connect

    for resource, fault in FAULT_MATRIX[case]:
        api.fault(resource, **fault)
    c = collect(connect(str(api.kubeconfig_path)), retry=RetryPolicy(attempts=4, base=0.01, cap=0.05))
    listed = {r.path for r in api.requests if r.query.get("limit")}
    accounted = set(c.counts) | {g.resource for g in c.not_collected} | set(c.not_installed)
    for path in listed:
        parts = path.strip("/").split("/")
        resource = parts[-1] if parts[0] == "api" else f"{parts[-1]}.{parts[1]}"
        assert resource in accounted, f"{resource} was listed but neither collected nor reported"
    gaps = {g.resource for g in c.not_collected}
    permanent = []
    for resource, fault in FAULT_MATRIX[case]:
        if fault.get("status") == 404:  # served by discovery: a 404 on its list is a gap, not "not installed"
            assert resource in gaps and resource not in c.not_installed, resource
            permanent.append(resource)
        elif fault.get("times") is None and (fault.get("status") or fault.get("drop")):
            assert resource in gaps, resource
            permanent.append(resource)
        elif not resource.startswith("/"):
            assert resource in c.counts and resource not in gaps, resource
    assert c.complete is (not permanent)


def test_main_turns_usage_errors_into_exit_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "auditor", "scan", "--no-such-flag"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "No such option" in result.stderr


_SLOW_CHILD = """
import os, sys, time
from auditor.collect import files
files.PARALLEL_MIN_BYTES = 0
parent, load, pid_file = os.getpid(), files._load_file, sys.argv[1]
def slow_in_child(path, result, stdin=None):
    if os.getpid() != parent:
        with open(pid_file, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(60)
    return load(path, result, stdin)
files._load_file = slow_in_child
from auditor.cli import main
sys.argv = ["mesh-audit", "scan", "-j", "2", *sys.argv[2:]]
main()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="children are forked on Linux only")
@pytest.mark.parametrize("whole_group", [True, False], ids=["terminal-ctrl-c", "signal-to-the-parent"])
def test_ctrl_c_while_a_forked_loader_works_exits_130_and_leaves_no_process(tmp_path, whole_group):
    out = tmp_path / "out"
    out.mkdir()
    pid_file = tmp_path / "child.pid"
    inputs = [str(FIXTURES / "demo"), str(FIXTURES / "cluster")]
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CHILD, str(pid_file), *inputs, "-o", "sarif",
                             "--output-file", str(out / "report.sarif")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    if whole_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "mesh-audit: interrupted"
    assert "Traceback" not in err
    assert not os.path.exists(f"/proc/{child}")  # killed and reaped, not left sleeping
    assert list(out.iterdir()) == []
