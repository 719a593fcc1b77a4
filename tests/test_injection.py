"""What the input writes is shown, never obeyed: object names, labels, annotations and file
names carrying workflow commands (`::error::`, `##[add-mask]`, `::stop-commands::`), terminal
escapes (ANSI colours, OSC titles), raw HTML and Markdown reach every sink (the table,
stderr, markdown, JUnit, GitHub annotations, plan, explain) as inert text; and `plan --emit`
writes only inside its folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from auditor.core.words import printable
from conftest import run

HOSTILE = "x\n::error title=pwned::owned\r\n##[add-mask]secret \x1b]0;title\x07\x1b[31m<img src=x onerror=alert(1)> [l](javascript:alert(2)) ::warning::w"

# A namespace in sidecar mode whose name, labels and annotations carry the payload, with a
# policy (L7, for an ambient namespace) and a suppression reason that carry it too.
MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: "shop{payload}"
  labels: {{istio.io/dataplane-mode: ambient}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: "cart{payload}", namespace: "shop{payload}"}}
spec:
  selector: {{matchLabels: {{app: cart}}}}
  template:
    metadata: {{labels: {{app: cart}}}}
    spec: {{containers: [{{name: cart, image: example/cart:1}}]}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: "p{payload}"
  namespace: "shop{payload}"
spec:
  selector: {{matchLabels: {{app: cart}}}}
  action: ALLOW
  rules: [{{to: [{{operation: {{paths: ["/x"]}}}}]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: "q{payload}"
  namespace: "shop{payload}"
  annotations: {{mesh-audit.io/ignore: "*", mesh-audit.io/ignore-reason: "because{payload}"}}
spec:
  selector: {{matchLabels: {{app: cart}}}}
  action: ALLOW
  rules: [{{to: [{{operation: {{methods: ["GET"]}}}}]}}]
---
apiVersion: v1
kind: Namespace
metadata: {{name: "legacy{payload}", labels: {{istio-injection: enabled}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: "legacy{payload}"}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec: {{containers: [{{name: api, image: example/api:1}}]}}
"""


def yaml_string(text: str) -> str:
    return json.dumps(text)[1:-1]  # a double-quoted YAML scalar reads JSON escapes


@pytest.fixture
def hostile(tmp_path) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(MANIFESTS.format(payload=yaml_string(HOSTILE)))
    return path


def assert_inert(text: str) -> None:
    """No control character but line breaks, no line a runner would run as a command."""
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text.replace("\r\n", "\n")), repr(text[:200])
    for line in text.splitlines():
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line


def test_printable_escapes_controls_and_breaks_commands():
    assert printable("a\x1b[31mb\nc") == "a\\e[31mb\\nc"
    assert printable("::error::x") == ":\u200b:error::x"
    assert printable("see ::stop-commands::t") == "see :\u200b:stop-commands::t"
    assert printable("##[add-mask]s") == "##\u200b[add-mask]s"
    assert printable("fe80::1 and plain text") == "fe80::1 and plain text"
    assert printable("x\u202ey") == "x\\u202ey"
    assert printable(printable("a ::b\x1b")) == printable("a ::b\x1b")  # once is enough


def test_the_table_and_stderr_are_inert(hostile):
    result = run("scan", hostile, "--show-suppressed")
    assert result.exit_code == 1
    assert "authz-l7-at-ztunnel" in result.stdout
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "\\e]0;title\\x07" in result.stdout  # shown, escaped


def test_warnings_on_stderr_are_inert(tmp_path):
    odd = tmp_path / "odd.yaml"
    odd.write_text(f'kind: "Thing{yaml_string(HOSTILE)}"\nmetadata: {{name: x}}\n')
    result = run("scan", odd, "--allow-empty")
    assert_inert(result.stderr)


def test_markdown_shows_html_and_links_as_text(hostile):
    result = run("scan", hostile, "-o", "markdown", "--show-suppressed")
    text = result.stdout
    assert "<img" not in text and "&lt;img src=x onerror=alert\\(1\\)&gt;" in text
    assert "](javascript:alert(2))" not in text
    assert_inert(text)


def test_junit_is_well_formed_xml(hostile):
    result = run("scan", hostile, "-o", "junit")
    ET.fromstring(result.stdout.encode())  # an ESC would make this raise
    assert "\x1b" not in result.stdout


def test_github_annotations_carry_the_payload_as_data(hostile):
    result = run("scan", hostile, "-o", "github")
    lines = result.stdout.splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert commands and all(re.match(r"::(error|warning|notice) ", line) for line in commands)
    for line in commands:  # the runner reads `::command k=v,k=v::data`: only our properties
        properties = line[2:].split("::", 1)[0].split(" ", 1)[1].split(",")
        assert {p.split("=", 1)[0] for p in properties} <= {"file", "line", "title"}, line
    assert_inert("\n".join(line.split("::", 2)[-1] for line in lines))


def test_plan_table_markdown_and_explain_are_inert(hostile):
    plan = run("plan", hostile, "--include-unmeshed")
    assert plan.exit_code == 0, plan.output
    assert_inert(plan.stdout)
    markdown = run("plan", hostile, "-o", "markdown")
    assert "<img" not in re.sub(r"`[^`\n]*`", "", markdown.stdout)  # in a code span, HTML is text
    assert_inert(markdown.stdout)
    ref = f"AuthorizationPolicy/shop{HOSTILE}/p{HOSTILE}"
    explained = run("explain", ref, "-f", hostile)
    assert explained.exit_code == 0, explained.output
    assert_inert(explained.stdout)


@pytest.mark.parametrize("namespace", ["../../../escaped", "/tmp/escaped-abs", "..", "a/b", "x; rm -rf ~"])
def test_plan_emit_writes_only_inside_its_folder(tmp_path, namespace):
    manifests = tmp_path / "in.yaml"
    manifests.write_text(
        f'apiVersion: v1\nkind: Namespace\nmetadata: {{name: "{namespace}", labels: {{istio-injection: enabled}}}}\n---\n'
        f'apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api, namespace: "{namespace}"}}\n'
        "spec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n"
        "    spec: {containers: [{name: api, image: example/api:1}]}\n")
    out = tmp_path / "sandbox" / "change-set"
    result = run("plan", manifests, "--emit", out, "--verify", "-o", "json")
    assert result.exit_code == 0, result.output
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents and p != manifests]
    assert outside == []
    assert not Path("/tmp/escaped-abs").exists()
    folders = [p for p in out.glob("wave-*/*") if p.is_dir()]
    assert len(folders) == 1 and folders[0].parent.parent == out
    assert json.loads(result.stdout)["verification"]["ok"] is True  # verify finds the namespace again
    readme = (out / "README.md").read_text()
    if namespace.startswith("x;"):
        assert "-n 'x; rm -rf ~'" in readme
