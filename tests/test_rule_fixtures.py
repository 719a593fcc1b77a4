"""Every rule fires on exactly the objects its fail fixtures name (with the severities
they pin) and stays quiet on its pass fixtures, under each installed CEL runtime. The
harness is the one `mesh-audit rules test` runs on users' rules."""

from __future__ import annotations

import platform
import sys

import pytest

from auditor.rulebook import load_rules
from auditor.rulebook.cel import get_backend
from auditor.ruletest import expectations, fixture_files, layout_problems, run_fixture
from conftest import FIXTURES, available_backends

RULE_FIXTURES = FIXTURES / "rules"
BACKENDS = available_backends()


@pytest.fixture(scope="module", params=BACKENDS)
def backend_rules(request):
    backend = get_backend(request.param)
    return backend, load_rules(backend=backend)


@pytest.mark.parametrize("path", fixture_files(RULE_FIXTURES), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_fixture(path, backend_rules):
    _, rules = backend_rules  # compiled for that runtime, which the audit then uses
    outcome = run_fixture(path, rules)
    assert outcome.ok, "\n".join(outcome.problems)


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


def test_fixture_layout_covers_every_rule(rules):
    assert layout_problems(RULE_FIXTURES, rules) == []


def test_every_rule_with_a_severity_expression_pins_its_severities_in_fixtures(rules):
    """Version- and kind-dependent severities are the ones the catalog gives; fixtures prove them."""
    for rule in rules:
        if not rule.severity_expression:
            continue
        pinned = set()
        for path in (RULE_FIXTURES / rule.id).glob("fail.*.yaml"):
            pinned |= set(expectations(path)[1].values())
        assert len(pinned) >= 2, f"{rule.id}: pin at least two different severities with '# expect: ... [severity]'"
