"""Every rule fires on exactly the objects its fail fixtures name and stays quiet on its
pass fixtures, under each installed CEL runtime."""

from __future__ import annotations

import platform
import re
import sys

import pytest

from auditor.collect.files import load_paths
from auditor.engine import audit
from auditor.facts import AuditOptions
from auditor.rulebook import load_rules
from auditor.rulebook.cel import get_backend
from auditor.versions import parse_version
from conftest import FIXTURES, available_backends

RULE_FIXTURES = FIXTURES / "rules"
FIXTURE_NAME = re.compile(r"^(pass|fail)\.[a-z0-9-]+\.yaml$")
BACKENDS = available_backends()


def fixture_files():
    return sorted(RULE_FIXTURES.glob("*/*.yaml"))


def header(path, key: str) -> list[str]:
    prefix = f"# {key}:"
    return [line[len(prefix):].strip() for line in path.read_text().splitlines() if line.startswith(prefix)]


def fixture_options(path) -> AuditOptions:
    """`# collected: a, b` marks a fixture as read from a cluster where those resource types
    were collected; `# sidecar-scope-threshold: N` lowers that threshold."""
    collected = header(path, "collected")
    threshold = header(path, "sidecar-scope-threshold")
    return AuditOptions(
        collected=frozenset(k.strip() for k in collected[0].split(",")) if collected else None,
        sidecar_scope_threshold=int(threshold[0]) if threshold else 50,
    )


@pytest.fixture(scope="module", params=BACKENDS)
def backend_rules(request):
    backend = get_backend(request.param)
    return backend, load_rules(backend=backend)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_fixture(path, backend_rules):
    backend, rules = backend_rules
    rule_id = path.parent.name
    loaded = load_paths([str(path)])
    assert not loaded.errors
    versions = header(path, "istio-version")
    version = parse_version(versions[0]) if versions else None
    report = audit(loaded.snapshot(), rules, istio_version=version, backend=backend, options=fixture_options(path))
    assert report.errors == []
    findings = [f for f in report.findings if f.rule == rule_id]
    got = {str(f.object) for f in findings}
    # `# expect: Kind ns/name [severity]` also pins the severity of that finding.
    expected, severities = set(), {}
    for line in header(path, "expect"):
        m = re.match(r"^(.*?)\s*\[(error|warning|info)\]$", line)
        ref = m.group(1) if m else line
        expected.add(ref)
        if m:
            severities[ref] = m.group(2)
    for f in findings:
        if str(f.object) in severities:
            assert f.severity == severities[str(f.object)], f"{f.object}: {f.severity}"
    if path.name.startswith("fail."):
        assert expected, f"{path} names no '# expect:' objects"
        assert got == expected
    else:
        assert expected == set()
        assert got == set()


def _has_cel_expr_wheels() -> bool:
    """Mirrors the environment marker in pyproject.toml."""
    machine, system = platform.machine(), sys.platform
    return sys.version_info >= (3, 11) and (
        (system == "linux" and machine in ("x86_64", "aarch64"))
        or (system == "darwin" and machine == "arm64")
        or (system == "win32" and machine == "AMD64")
    )


def test_both_backends_are_tested_where_installable():
    """cel-python comes with the test extra; cel-expr-python wherever it has wheels."""
    assert "cel-python" in BACKENDS
    assert ("cel-expr-python" in BACKENDS) == _has_cel_expr_wheels()


def test_every_rule_has_pass_and_fail_fixtures(rules):
    for rule in rules:
        names = [p.name for p in (RULE_FIXTURES / rule.id).glob("*.yaml")]
        assert any(n.startswith("fail.") for n in names), f"{rule.id} has no fail fixture"
        assert any(n.startswith("pass.") for n in names), f"{rule.id} has no pass fixture"


def test_every_fixture_folder_belongs_to_a_rule(rules):
    ids = {r.id for r in rules}
    for folder in RULE_FIXTURES.iterdir():
        assert folder.name in ids, f"fixtures/rules/{folder.name} matches no rule"
        for path in folder.iterdir():
            assert FIXTURE_NAME.match(path.name), f"{path}: name it pass.<scenario>.yaml or fail.<scenario>.yaml"


def test_every_rule_with_a_severity_expression_pins_its_severities_in_fixtures(rules):
    """Version- and kind-dependent severities are the ones the catalog gives; fixtures prove them."""
    for rule in rules:
        if not rule.severity_expression or rule.id == "upgrade-alpha-feature":  # that one is tested with --strict-maturity
            continue
        pinned = set()
        for path in (RULE_FIXTURES / rule.id).glob("fail.*.yaml"):
            pinned |= {m.group(1) for line in header(path, "expect") if (m := re.search(r"\[(error|warning|info)\]$", line))}
        assert len(pinned) >= 2, f"{rule.id}: pin at least two different severities with '# expect: ... [severity]'"
