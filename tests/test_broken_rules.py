"""A corpus of broken rule files, each with the exact error a user sees: file, line, text.

`# error: LINE: TEXT` is the whole message of a file that does not load;
`# error-prefix: LINE: TEXT` where the rest comes from the CEL runtime and differs between
runtimes; `# runtime-error: TEXT` for a rule that loads but fails when evaluated, which
becomes a per-object error in the report while the scan goes on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.core.errors import UsageError
from auditor.rulebook import load_rule_file, load_rules
from auditor.rulebook.cel import get_backend
from conftest import audit, FIXTURES, available_backends, snapshot_of

CORPUS = FIXTURES / "broken-rules"
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def expectation(path: Path) -> tuple[str, int | None, str]:
    first = path.read_text().splitlines()[0]
    m = re.match(r"^# (error|error-prefix|runtime-error): (?:(\d+): )?(.*)$", first)
    assert m, f"{path}: first line must state the expected error"
    return m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3)


@pytest.mark.parametrize("backend_name", available_backends())
@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_broken_rule_file(path, backend_name):
    kind, line, text = expectation(path)
    backend = get_backend(backend_name)
    if kind == "runtime-error":
        rule = load_rule_file(path, backend=backend)
        report = audit(snapshot_of(NAMESPACE), [rule], backend=backend)
        [error] = report.errors
        assert error["rule"] == rule.id and error["object"] == "Namespace shop"
        assert text in error["message"], error["message"]
        assert report.findings == []
        return
    with pytest.raises(UsageError) as info:
        if path.stem == "id-mismatch":
            load_rules([path], backend=backend)
        else:
            load_rule_file(path, backend=backend)
    message = str(info.value)
    expected = f"{path}:{line}: {text}"
    if kind == "error":
        assert message == expected
    else:
        assert message.startswith(expected), message


def test_corpus_covers_each_kind_of_mistake():
    kinds = {expectation(p)[0] for p in CORPUS.glob("*.yaml")}
    assert kinds == {"error", "error-prefix", "runtime-error"}


def test_a_failing_condition_among_several_rules_is_named_and_the_others_still_run():
    """Conditions of a kind are evaluated together; when one fails, each rule is evaluated
    alone, so the error names its rule and the other rules still fire."""
    broken = load_rule_file(CORPUS / "when-not-bool.yaml")
    builtin = [r for r in load_rules() if r.id == "mode-namespace-conflict"]
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "both", "labels": {"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"}}}
    report = audit(snapshot_of(ns), builtin + [broken])
    assert [e["rule"] for e in report.errors] == ["when-not-bool"]
    assert [f.rule for f in report.findings] == ["mode-namespace-conflict"]
