"""Hostile inputs, each run as a user runs mesh-audit: a separate process that must end on
its own, with no signal and no traceback, and with the one error line (or warning) and
exit code the input deserves. Deep nesting is refused before any native parser or the
CEL runtime sees it; files that are not files are not read; a cut or odd input names
itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
POLICY = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\n"


def run(*args, cwd=None, stdin: bytes | None = None, env: dict | None = None, timeout: float = 60):
    """mesh-audit in its own process; fails the test on a signal, a traceback or a hang."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, input=stdin, capture_output=True,
                          env=environment, timeout=timeout)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode >= 0, f"killed by {signal.Signals(-done.returncode).name}: {stderr[-500:]}"
    assert "Traceback" not in stderr, stderr
    return done.returncode, stderr, done.stdout


def deep_block(depth: int) -> str:
    """A block sequence nested `depth` levels on one line: `- - - ... x`."""
    return "- " * depth + "x"


@pytest.mark.parametrize("name, text, message", [
    ("deep-policy.yaml", POLICY + "spec:\n  rules:\n  " + deep_block(7000) + "\n",
     "deep-policy.yaml:6: invalid YAML: exceeded maximum nesting depth"),
    ("dashes.yaml", deep_block(20000) + "\n", "dashes.yaml:1: invalid YAML: exceeded maximum nesting depth"),
    ("indented.yaml", "a:\n" + "".join(" " * (i + 1) + "b:\n" for i in range(2000)) + " " * 2001 + "c\n",
     "indented.yaml:1000: invalid YAML: exceeded maximum nesting depth"),
    ("deep-annotation.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  annotations:\n    a:\n"
     + "".join(" " * (6 + i) + "- " + "\n" for i in range(0)) + "      " + deep_block(10000) + "\n",
     "deep-annotation.yaml:7: invalid YAML: exceeded maximum nesting depth"),
    ("deep-policy.json", '{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"p"},'
     '"spec":{"rules":' + "[" * 1100 + "]" * 1100 + "}}", "deep-policy.json:1: invalid JSON: nested more than 1,024 levels deep"),
])
def test_deep_nesting_is_refused_at_its_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    code, stderr, stdout = run("scan", "-f", str(tmp_path), "-o", "json", cwd=tmp_path)
    assert code == 2
    assert f"mesh-audit: error: {tmp_path / message}" in stderr
    assert b'"objects": 1' in stdout  # the rest of the input was still audited


def test_deep_nesting_through_stdin_and_a_snapshot(tmp_path):
    deep = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":' + b"[" * 2000 + b"]" * 2000 + b"}"
    code, stderr, _ = run("scan", "-f", "-", stdin=deep)
    assert code == 2 and "mesh-audit: error: <stdin>:1: invalid JSON: nested more than 1,024 levels deep" in stderr
    header = b'{"kind":"MeshAuditSnapshot","schema_version":3,"objects":1,"collection":{}}\n'
    (tmp_path / "deep.json").write_bytes(header + deep + b"\n" + b'{"kind":"MeshAuditSnapshotEnd","objects":1}\n')
    code, stderr, _ = run("scan", "--snapshot", str(tmp_path / "deep.json"))
    assert code == 2 and f"{tmp_path / 'deep.json'}:2: invalid JSON: nested more than 1,024 levels deep" in stderr


def test_a_deep_structure_below_the_limit_reaches_the_rules_without_a_crash(tmp_path):
    """900 levels pass every parser; the CEL runtime (which crashes past several thousand)
    then evaluates the object like any other. (Deep lists where the API server's schema
    wants a mapping are an input error: the depth sits in a field the schema leaves open.)"""
    rule = ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: shop}\n"
            "spec:\n  host: a.shop.svc.cluster.local\n  trafficPolicy: " + "{a: " * 400 + "x" + "}" * 400 + "\n")
    (tmp_path / "p.yaml").write_text(NAMESPACE + "---\n" + rule)
    code, stderr, stdout = run("scan", "-f", str(tmp_path / "p.yaml"), "-o", "json", "--fail-on", "never")
    assert code == 0, stderr
    assert b'"objects": 2' in stdout


def test_files_that_are_not_files_are_skipped_in_a_directory(tmp_path):
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    os.mkfifo(tmp_path / "pipe.yaml")  # reading it would wait forever
    os.symlink("/dev/zero", tmp_path / "zero.yaml")  # reading it would never end
    os.symlink("/", tmp_path / "root")  # walking it would scan the machine
    os.symlink(tmp_path / "missing.yaml", tmp_path / "dangling.yaml")
    code, stderr, stdout = run("scan", str(tmp_path), "-o", "json", timeout=30)
    assert code == 0
    assert f"warning: {tmp_path / 'pipe.yaml'}: skipped: not a regular file (a named pipe)" in stderr
    assert f"warning: {tmp_path / 'zero.yaml'}: skipped: a symlink to /dev/zero, outside the directory scanned" in stderr
    assert f"warning: {tmp_path / 'root'}: skipped: a symlink to /, outside the directory scanned" in stderr
    assert f"warning: {tmp_path / 'dangling.yaml'}: skipped: No such file or directory (a broken symlink?)" in stderr
    assert b'"objects": 1' in stdout


def test_symlinks_inside_the_tree_are_followed_and_outside_ones_on_request(tmp_path):
    tree, elsewhere = tmp_path / "tree", tmp_path / "elsewhere"
    (tree / "real").mkdir(parents=True)
    elsewhere.mkdir()
    (tree / "real" / "ns.yaml").write_text(NAMESPACE)
    (elsewhere / "other.yaml").write_text(NAMESPACE.replace("shop", "other"))
    os.symlink(tree / "real", tree / "alias")  # inside: read (once: the same files)
    os.symlink(elsewhere, tree / "out")
    code, stderr, stdout = run("scan", str(tree), "-o", "json")
    assert b'"objects": 1' in stdout and "skipped: a symlink to" in stderr
    code, stderr, stdout = run("scan", str(tree), "-o", "json", "--follow-symlinks")
    assert b'"objects": 2' in stdout and "skipped" not in stderr


def test_a_device_named_on_the_command_line_is_refused_but_a_pipe_is_read(tmp_path):
    code, stderr, _ = run("scan", "-f", "/dev/zero")
    assert code == 2 and "mesh-audit: error: /dev/zero: not a file or a pipe (a device)" in stderr
    pipe = tmp_path / "manifests"
    os.mkfifo(pipe)
    writer = subprocess.Popen(["sh", "-c", f"printf '%s' '{NAMESPACE}' > {pipe}"])
    code, stderr, stdout = run("scan", "-f", str(pipe), "-o", "json")
    writer.wait(timeout=10)
    assert code == 0 and b'"objects": 1' in stdout


def test_an_input_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    (tmp_path / "big.yaml").write_text(NAMESPACE + "#" * 3 * 1024 * 1024)
    code, stderr, _ = run("scan", "-f", str(tmp_path / "big.yaml"), env={"MESH_AUDIT_MAX_FILE_MB": "2"})
    assert code == 2 and f"{tmp_path / 'big.yaml'}: 3 MiB is over the 2 MiB limit for one input" in stderr
    code, stderr, _ = run("scan", "-f", "-", stdin=b"x" * (3 * 1024 * 1024), env={"MESH_AUDIT_MAX_FILE_MB": "2"})
    assert code == 2 and "<stdin>: 2 MiB is over the 2 MiB limit for one input (raise MESH_AUDIT_MAX_FILE_MB); it goes on" in stderr


@pytest.mark.parametrize("name, content, message", [
    (".mesh-audit.yaml", "fail_on: error\nrules:\n  \x07: off\n",
     ".mesh-audit.yaml:3: invalid YAML: U+0007 is not allowed in YAML (a control character or binary data?)"),
    (".mesh-audit.yaml", "fail_on: info\nfail_on: never\n",
     ".mesh-audit.yaml:2: the key 'fail_on' appears twice in one mapping (first at line 1); only one may stay"),
])
def test_a_broken_configuration_is_one_line_and_exit_2(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    code, stderr, _ = run("scan", "ns.yaml", cwd=tmp_path)
    assert (code, stderr.strip()) == (2, f"mesh-audit: error: {message}")


def test_a_binary_rule_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "my-rule.yaml").write_bytes(b"id: my-rule\ntitle: \x01\x02\x03\n")
    code, stderr, _ = run("scan", str(FIXTURES / "demo"), "--rules-dir", str(tmp_path / "rules"))
    assert code == 2
    assert stderr.strip() == (f"mesh-audit: error: {tmp_path / 'rules' / 'my-rule.yaml'}:2: invalid YAML: U+0001 is not "
                              "allowed in YAML (a control character or binary data?)")


def test_a_report_to_a_folder_that_does_not_exist(tmp_path):
    code, stderr, _ = run("scan", str(FIXTURES / "demo"), "--output-file", str(tmp_path / "no" / "such" / "r.json"))
    assert code == 2
    assert stderr.strip() == f"mesh-audit: error: {tmp_path / 'no' / 'such' / 'r.json'}: cannot write the report: No such file or directory"


@pytest.mark.parametrize("name, content, message", [
    ("dup.yaml", NAMESPACE + "metadata: {name: other}\n",
     "dup.yaml:4: the key 'metadata' appears twice in one mapping (first at line 3); only one may stay"),
    ("dup.json", '{"apiVersion": "v1", "kind": "Namespace",\n "metadata": {"name": "a",\n  "name": "b"}}',
     "dup.json:3: the key 'name' appears twice in one object (first at line 2); only one may stay"),
    ("bool-name.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: off}\n",
     "bool-name.yaml:1: Namespace: metadata.name is the boolean false, not a string; kubectl rejects it: quote the value"),
    ("bool-namespace.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: off}\n",
     "bool-namespace.yaml:1: Service: metadata.namespace is the boolean false, not a string; kubectl rejects it: quote the value"),
    ("number-name.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 1.10\n  namespace: shop\n",
     "number-name.yaml:1: ConfigMap: metadata.name is the number 1.1, not a string; kubectl rejects it: quote the value"),
    ("yes-label.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {istio-injection: yes}\n",
     "yes-label.yaml:1: Namespace: metadata.labels.istio-injection is the boolean true, not a string; kubectl rejects it: "
     "quote the value"),
])
def test_what_kubectl_rejects_is_an_input_error(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    code, stderr, _ = run("scan", "-f", str(tmp_path / name))
    assert code == 2 and f"mesh-audit: error: {tmp_path / message}" in stderr


def test_a_byte_order_mark_is_not_an_obstacle(tmp_path):
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + NAMESPACE.encode())
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + b'{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}')
    code, stderr, stdout = run("scan", str(tmp_path), "-o", "json")
    assert code == 0 and b'"objects": 2' in stdout and stderr == ""


def test_an_unreadable_directory_is_named(tmp_path, monkeypatch):
    """Root reads every directory, so permission errors are simulated where the walk meets them."""
    from auditor.collect.files import load_paths

    (tmp_path / "ok").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "ok" / "ns.yaml").write_text(NAMESPACE)
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = load_paths([str(tmp_path)])
    assert [str(e) for e in result.errors] == [f"{tmp_path / 'locked'}: cannot read this directory: Permission denied"]
    assert [o.name for o in result.objects] == ["shop"]
    given = load_paths([str(tmp_path / "locked")])
    assert [str(e) for e in given.errors] == [f"{tmp_path / 'locked'}: cannot read this directory: Permission denied"]


def test_an_end_of_input_is_never_mistaken_for_ctrl_c(tmp_path, monkeypatch):
    """click turns every EOFError into Abort, which reads as an interruption (130)."""
    from auditor import cli
    from auditor.collect import files, sources  # sources first: imported later, it would keep the stand-in

    def ended(*args, **kwargs):
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(files, "load_paths", ended)
    monkeypatch.setattr(sources, "load_paths", ended)
    monkeypatch.setattr(sys, "argv", ["mesh-audit", "scan", "-f", str(FIXTURES / "demo")])
    exits = []
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code) or (_ for _ in ()).throw(SystemExit(code)))
    import gc

    try:
        with pytest.raises(SystemExit):
            cli.main()
    finally:
        gc.enable()  # main() turns the collector off for the run; the rest of this process needs it
    assert exits == [2]


def test_explain_does_not_answer_for_an_object_under_a_wrong_name(tmp_path):
    """`namespace: off` would be audited as namespace "default": nothing is audited instead."""
    (tmp_path / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: off}\n")
    code, stderr, stdout = run("explain", "Service/default/api", "-f", str(tmp_path / "svc.yaml"))
    assert code == 2
    assert "metadata.namespace is the boolean false" in stderr and "Service/default/api: no such object in the input" in stderr
