"""`mesh-audit plan` as users run it: the command, its exit codes, the change set it writes,
and its reports (table, JSON against its schema, Markdown, and HTML in a real browser)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import jsonschema
import pytest
from click.testing import CliRunner

from auditor import api
from auditor.cli import cli
from auditor.plan import renderer
from auditor.plan.render import MAX_CHARS
from auditor.schemas import load_schema
from conftest import DEMO, ROOT

EXAMPLE = ROOT / "docs" / "plan-example.html"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_plan_the_demo_from_the_command_line():
    result = run("plan", "-f", str(DEMO))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "4 namespaces to move to ambient: 2 ready, 1 needs-waypoint, 1 blocked; 2 waves; Istio 1.23.4"
    assert "legacy       sidecar  needs-waypoint  2       1            waypoint for authz-l7-at-ztunnel" in lines
    assert "  2: legacy" in lines and "billing (blocked):" in lines
    assert "Traceback" not in result.stderr


def test_exit_codes_for_named_namespaces_and_bad_input(tmp_path):
    assert run("plan", "-f", str(DEMO), "-n", "orders", "-q").returncode == 0
    blocked = run("plan", "-f", str(DEMO), "-n", "billing", "-q")
    assert blocked.returncode == 1 and "blocked by envoyfilter-ambient" in blocked.stdout
    held = run("plan", "-f", str(DEMO), "-n", "legacy", "-q")  # its caller orders is not planned
    assert held.returncode == 1 and "held: waits for orders" in held.stdout
    unknown = run("plan", "-f", str(DEMO), "-n", "nowhere")
    assert unknown.returncode == 2 and unknown.stderr == "mesh-audit: error: -n nowhere: no such namespace in the input\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    broken = run("plan", "-f", str(bad))
    assert broken.returncode == 2 and broken.stderr.startswith(f"mesh-audit: error: {bad}:") and "Traceback" not in broken.stderr
    assert run("plan", "-f", str(DEMO), "--to", "sidecar").returncode == 2


def test_emit_writes_the_change_set_and_verify_applies_it(tmp_path):
    out = tmp_path / "changes"
    result = run("plan", "-f", str(DEMO), "--emit", str(out), "--verify", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert f"mesh-audit: change set written to {out}" in result.stderr
    plan = json.loads(result.stdout)
    assert plan["verification"]["ok"] and [w["wave"] for w in plan["verification"]["waves"]] == [1, 2]
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [".mesh-audit-plan", "README.md", "wave-1/checkout/namespace.yaml", "wave-1/orders/namespace.yaml",
                       "wave-2/legacy/namespace.yaml", "wave-2/legacy/policies.yaml", "wave-2/legacy/services.yaml",
                       "wave-2/legacy/waypoint.yaml"]
    readme = (out / "README.md").read_text()
    assert "kubectl apply -R -f wave-1/" in readme and "- billing (blocked): envoyfilter-ambient" in readme
    # the written manifests scan clean on their own
    assert run("scan", str(out / "wave-2"), "-q", "--fail-on", "warning").returncode == 0
    # again into the same folder: replaced, not mixed
    assert run("plan", "-f", str(DEMO), "--emit", str(out), "-q", "-n", "orders").returncode == 0
    assert not (out / "wave-2").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    refused = run("plan", "-f", str(DEMO), "--emit", str(foreign))
    assert refused.returncode == 2 and "is not empty and was not written by mesh-audit plan" in refused.stderr
    assert (foreign / "notes.txt").read_text() == "keep"


def test_verify_fails_on_a_change_set_edited_into_breaking(tmp_path):
    from auditor.plan.planner import PlanOptions, make_plan
    from auditor.plan.emit import emit
    from auditor.plan.verify import verify

    snapshot = api.load([DEMO])
    settings = api.resolve(api.Settings())
    ctx = api.context(snapshot, settings)
    plan, whatif = make_plan(snapshot, settings, PlanOptions(), ctx)
    emit(plan, str(tmp_path))
    (tmp_path / "wave-2" / "legacy" / "policies.yaml").unlink()  # the L7 policy stays at ztunnel
    result = verify(plan, ctx, whatif.findings, str(tmp_path), settings)
    assert not result["ok"] and result["waves"][0]["ok"]
    assert sorted(f["rule"] for f in result["waves"][1]["new_findings"]) == [
        "authz-identity-behind-waypoint", "authz-l7-at-ztunnel"]  # still at ztunnel, behind the new waypoint


def test_plan_from_a_subdirectory_and_piped(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(DEMO, repo / "k8s")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "deep").mkdir()
    from_sub = run("plan", "--no-cluster", "../k8s", "-o", "markdown", cwd=repo / "deep")
    assert from_sub.returncode == 0, from_sub.stderr
    piped = subprocess.run(f"for f in {DEMO}/*.yaml; do cat $f; echo ---; done | {sys.executable} -m auditor plan -f - -o json -q",
                           shell=True,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert piped.returncode == 0 and json.loads(piped.stdout)["summary"] == {"ready": 2, "needs-waypoint": 1, "blocked": 1}


def test_json_follows_its_schema():
    plan = api.plan(api.load([DEMO]), verify=True)
    document = json.loads(renderer("json")(plan))
    jsonschema.validate(document, load_schema("plan.schema.json"))
    assert document["schema_version"] == "1" and document["verification"]["directory"] is None
    legacy = next(n for n in document["namespaces"] if n["name"] == "legacy")
    assert legacy["waypoint"] == "waypoint" and legacy["callers"] == [
        {"namespace": "orders", "evidence": "AuthorizationPolicy legacy/reports-get-only allows namespace orders"}]


def test_markdown_fits_a_pull_request_comment():
    text = renderer("markdown")(api.plan(api.load([DEMO])))
    assert text.startswith("<!-- mesh-audit plan -->\n## mesh-audit plan")
    assert "| `legacy` | sidecar | 🟡 needs-waypoint | 2 |" in text
    many = api.plan(api.load([DEMO]))
    for ns in many.namespaces:
        for r in ns.reasons:
            r.message = "x" * 5000
        ns.reasons *= 10
    long = renderer("markdown")(many)
    assert len(long) <= MAX_CHARS and long.rstrip().endswith("for the whole plan.")


def test_the_html_example_in_docs_is_the_demo_plan():
    """docs/plan-example.html is regenerated by: mesh-audit plan -f fixtures/demo -o html=docs/plan-example.html"""
    assert EXAMPLE.read_text() == renderer("html")(api.plan(api.load([DEMO]))), \
        "docs/plan-example.html is stale: run mesh-audit plan -f fixtures/demo -o html=docs/plan-example.html"


def test_html_is_self_contained():
    page = renderer("html")(api.plan(api.load([DEMO])))
    for fetch in ("<script", "<link", "src=", "url(", "@import"):
        assert fetch not in page
    assert page.count("<svg") == 3 and 'id="rule-authz-l7-at-ztunnel"' in page


def _browser():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if path and sync_playwright:
        return path, sync_playwright
    if os.environ.get("MESH_AUDIT_REQUIRE_BROWSER"):
        pytest.fail("the browser test needs Debian's chromium and playwright: see the README's test command")
    pytest.skip("chromium or playwright is not installed (the README's test command installs both)")


def test_html_report_in_a_real_browser(tmp_path):
    """Headless Chromium loads the page with no console error, every namespace of the demo
    is on it, and the screenshot is not blank."""
    executable, sync_playwright = _browser()
    page_file = tmp_path / "plan.html"
    page_file.write_text(renderer("html")(api.plan(api.load([DEMO]))))
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: problems.append(f"fetched {r.url}") if not r.url.startswith("file:") else None)
            page.goto(page_file.as_uri())
            text = page.inner_text("body")
            shot = page.screenshot(clip={"x": 0, "y": 0, "width": 500, "height": 260})
            heights = page.eval_on_selector_all("svg rect", "els => els.map(e => e.getBoundingClientRect().height)")
        finally:
            browser.close()
    assert problems == []
    for name in ("billing", "checkout", "legacy", "orders"):
        assert f"{name}\n" in text or f"{name}\t" in text or name in text.split()
    assert "Wave 2: legacy" in text and "blocked by envoyfilter-ambient" in text
    assert max(heights) > 50  # the cost chart's bars were drawn
    assert _distinct_colours(shot) > 20


def _distinct_colours(png: bytes) -> int:
    """How many colours a (small) PNG screenshot holds: a blank page has one."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, colour = struct.unpack(">IIBB", data[:10])
            bpp = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            chunks.append(data)
        pos += 12 + length
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    prev, colours = bytearray(stride), set()
    for row in range(height):  # PNG filters refer to the row above: decode every row in turn
        kind, line, cur = raw[row * (stride + 1)], raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)], bytearray(stride)
        for i in range(stride):
            a, b = (cur[i - bpp] if i >= bpp else 0), prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                predictor = (0, a, b, (a + b) // 2)[kind]
            cur[i] = (line[i] + predictor) & 0xFF
        colours.update(bytes(cur[i:i + 3]) for i in range(0, stride, bpp))
        prev = cur
    return len(colours)


def test_plan_through_the_library_matches_the_command():
    result = CliRunner().invoke(cli, ["plan", "-f", str(DEMO), "-o", "json", "-q"], catch_exceptions=False)
    from_cli = json.loads(result.stdout)
    from_api = json.loads(renderer("json")(api.plan(api.load([DEMO]))))
    assert from_cli == from_api


def test_plan_reads_a_live_cluster(tmp_path, api):  # noqa: F811  (the API test server fixture)
    result = run("plan", "--kubeconfig", str(api.kubeconfig_path), "-o", "json", "-q")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert {n["name"] for n in plan["namespaces"]} >= {"legacy", "orders"}
    assert plan["complete"] is True


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("python3 -m venv"))
    steps = [s.strip() for s in command.split("&&")]
    script = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "set ", "cd ")) and "upgrade pip" not in line]
    assert [s.replace(" --quiet", "") for s in script] == steps


def test_every_plan_format_the_command_offers_renders_the_plan():
    """The command's formats are the plan's NAMES, each a renderer naming every planned namespace."""
    from auditor.cli.plan import FORMATS
    from auditor.plan import NAMES

    plan = api.plan(api.load([DEMO]))
    assert FORMATS == list(NAMES) == ["table", "json", "markdown", "html"]
    for fmt in NAMES:
        out = renderer(fmt)(plan)
        assert all(n.name in out for n in plan.namespaces), fmt
