"""Rule files: schema validation with file:line errors, CEL compiled once, evaluation errors contained."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from auditor.core.errors import UsageError
from auditor.rulebook import load_rules
from auditor.rulebook.cel import CelError, get_backend
from auditor.core.versions import Version, VersionRange, parse_version
from conftest import FIXTURES, audit, available_backends, snapshot_of

VALID = textwrap.dedent("""\
    id: demo-rule
    title: A demo rule
    severity: warning
    applies_to: [Namespace]
    when: >
      object.metadata.name == "bad"
    message: >
      "namespace " + object.metadata.name + " is bad"
    rationale: Because.
    remediation: Rename it.
    references: [https://istio.io/latest/docs/]
    """)


def write_rule(tmp_path, text, name="demo-rule.yaml"):
    folder = tmp_path / "custom"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def error_of(tmp_path, text, name="demo-rule.yaml") -> str:
    path = write_rule(tmp_path, text, name)
    with pytest.raises(UsageError) as info:
        load_rules([path.parent])
    return str(info.value).replace(str(path), "RULE")


def test_builtin_rules_load_and_are_unique():
    rules = load_rules()
    assert len({r.id for r in rules}) == len(rules) == 66
    assert all({"when", "message"} <= set(r.programs) for r in rules)


def test_valid_rule_loads_with_category_from_folder(tmp_path):
    rule = load_rules([write_rule(tmp_path, VALID).parent])[0]
    assert (rule.id, rule.category, str(rule.istio), rule.confidence) == ("demo-rule", "custom", "all", "high")


@pytest.mark.parametrize(
    "change, expected",
    [
        (("severity: warning", "severity: fatal"), "RULE:3: 'severity' must be one of error, warning, info, not 'fatal'"),
        (("title: A demo rule\n", "title: A demo rule\nowner: me\n"), "RULE:3: unknown key 'owner' (allowed: aliases, applies_to, confidence, fields, id, istio, message, migration, rationale, references, remediation, severity, severity_expression, tags, title, when)"),
        (("rationale: Because.\n", ""), "RULE:1: 'rationale' is required"),
        (("applies_to: [Namespace]", "applies_to: [namespace]"), "RULE:4: 'applies_to.0' value 'namespace' does not match the expected form ^(workload|([a-z0-9.-]+/)?[A-Z][A-Za-z0-9]*)$"),
        (('object.metadata.name == "bad"', 'object.metadata.name == '), "RULE:6: 'when' is not valid CEL:"),
        (("references: [https://istio.io/latest/docs/]", "references: [istio.io]"), "RULE:11: 'references.0' value 'istio.io' does not match the expected form ^https://"),
    ],
)
def test_invalid_rule_files_name_file_and_line(tmp_path, change, expected):
    message = error_of(tmp_path, VALID.replace(*change))
    assert message.startswith(expected), message


def test_bad_version_range_and_yaml(tmp_path):
    assert error_of(tmp_path, VALID + "istio: soon\n") == "RULE:12: 'istio' 'soon' is not a version clause like '>=1.22' or '<1.24.1'"
    assert error_of(tmp_path, VALID + "tags: [a\n").startswith("RULE:13: invalid YAML")


def test_file_name_must_match_id_and_ids_must_be_unique(tmp_path):
    assert error_of(tmp_path / "a", VALID, name="other.yaml") == "RULE:1: rule id 'demo-rule' does not match the file name 'other.yaml'"
    path = write_rule(tmp_path, VALID)
    write_rule(tmp_path, VALID.replace("id: demo-rule", "id: second-rule\naliases: [demo-rule]"), "second-rule.yaml")
    with pytest.raises(UsageError, match="already used by"):
        load_rules([path.parent])


@pytest.mark.parametrize("backend_name", available_backends())
def test_evaluation_error_is_reported_and_scan_continues(tmp_path, backend_name):
    backend = get_backend(backend_name)
    broken = VALID.replace('object.metadata.name == "bad"', "object.metadata.labels.team == \"x\"")
    rules = load_rules([write_rule(tmp_path, broken).parent], backend=backend)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bad"}}
    ok = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fine", "labels": {"team": "x"}}}
    report = audit(snapshot_of(ns, ok), rules, backend=backend)
    assert [e["object"] for e in report.errors] == ["Namespace bad"]
    assert report.errors[0]["rule"] == "demo-rule" and report.errors[0]["kind"] == "rule"
    assert [str(f.object) for f in report.findings] == ["Namespace fine"]


@pytest.mark.parametrize("backend_name", available_backends())
def test_non_boolean_condition_is_a_rule_error(tmp_path, backend_name):
    backend = get_backend(backend_name)
    rules = load_rules([write_rule(tmp_path, VALID.replace('object.metadata.name == "bad"', "object.metadata.name")).parent], backend=backend)
    report = audit(snapshot_of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}), rules, backend=backend)
    assert report.errors[0]["message"] == "'when' gave str, not a boolean"


def test_expressions_compile_once(tmp_path, mocker):
    backend = get_backend()
    spy = mocker.spy(backend, "compile")
    rules = load_rules([write_rule(tmp_path, VALID).parent], backend=backend)
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"n{i}"}} for i in range(20)]
    audit(snapshot_of(*docs), rules, backend=backend)
    assert spy.call_count == 2  # when + message, not once per object


def test_unknown_backend_name():
    with pytest.raises(CelError, match="unknown CEL backend"):
        get_backend("lua")


def test_version_ranges():
    assert VersionRange("<1.24").admits(Version(1, 23, 9))
    assert not VersionRange("<1.24").admits(Version(1, 24))
    assert VersionRange(">=1.23,<1.26").admits(parse_version("1.25.2-distroless"))
    assert VersionRange("all").admits(Version(1, 1)) and VersionRange("<1.24").admits(None)
    assert parse_version("v1.24") == Version(1, 24, 0) and parse_version("latest") is None


def test_docs_rules_md_is_generated_from_the_rule_files(rules):
    from auditor.rulebook.docs import render
    from conftest import ROOT

    committed = (ROOT / "docs" / "rules.md").read_text()
    assert committed == render(rules), "docs/rules.md is stale: run `mesh-audit rules docs > docs/rules.md`"


def test_docs_list_every_rule_once(rules):
    from auditor.rulebook.docs import render

    text = render(rules)
    for rule in rules:
        assert text.count(f"\n### {rule.id}\n") == 1


def test_every_builtin_rule_says_what_a_plan_makes_of_it(rules):
    """`plan` turns findings a move introduces into verdicts by this class; a rule without
    one would silently count as `change`."""
    from conftest import ROOT

    for rule in rules:
        text = (ROOT / "rules" / rule.category / f"{rule.id}.yaml").read_text()
        assert "\nmigration: " in text, rule.id
    by_class = {r.id: r.migration for r in rules}
    assert by_class["authz-l7-at-ztunnel"] == "needs-waypoint" and by_class["envoyfilter-ambient"] == "blocked"
    assert by_class["waypoint-sidecar-clients-bypass"] == "order" and by_class["sidecar-resource-ambient"] == "change"


@pytest.mark.parametrize("expressions, expected", [
    (['facts.a == "facts.x" && has(facts.b.c) // facts.z'], {"a": None, "b": ("c",)}),  # strings and comments are not reads
    (["facts.workloads.exists(w, w.facts.q)", "x.facts.y + facts.n"], {"workloads": None, "n": None}),  # a field named facts is not the variable
    ([r'r"facts.q" + """facts.w""" + facts.k'], {"k": None}),
    (["object.metadata.name"], {}),
    (["facts.exists(k, k == 'a')"], None),  # the receiver of a function: read whole
    (['facts["a"]'], None),
    (["size(facts) > 0"], None),
    (["facts.?a.orValue(1)"], None),
    (['facts.a == "unterminated'], None),
    (["facts.a @ 1"], None),  # not CEL this knows
])
def test_top_reads_names_the_keys_an_expression_reads(expressions, expected):
    from auditor.rulebook.reads import top_reads

    assert top_reads(expressions, "facts") == expected


@pytest.mark.parametrize("expression, labels", [
    ('"b" in facts.labels && facts.labels["a"] == "x"', ("a", "b")),
    ("facts.labels.a == 'x' || has(facts.labels.c)", ("a", "c")),
    ('!("k" in facts.labels) ? facts.labels["j"] : ""', ("j", "k")),
    ('"k" in facts.labels == true', ("k",)),
    # anything else reads the labels whole
    ("facts.labels.size() > 0", None),
    ("size(facts.labels) > 0", None),
    ("facts.labels == {}", None),
    ("facts.labels[facts.key] == 'x'", None),
    (r'facts.labels["a\"b"] == "x"', None),  # an escape: not a plain literal
    ("facts.labels[b'a'] == 'x'", None),
    ('"a" + "k" in facts.labels', None),  # the key is "ak"
    ('x == "k" in facts.labels', None),  # (x == "k") in facts.labels
    ('"k" in facts.labels in [true]', None),
    ("facts.labels.?a.orValue('') == 'x'", None),
    ('"k" in facts.labels && facts.labels.exists(k, k == "z")', None),  # whole wins over keys
])
def test_reads_go_one_level_down_where_keys_are_named(expression, labels):
    from auditor.rulebook.reads import top_reads

    assert top_reads([expression], "facts") == {"labels": labels, **({"key": None} if "facts.key" in expression else {})}


def test_a_cut_keeps_exactly_the_named_keys_a_value_has():
    from auditor.rulebook.reads import project_reads

    facts = {"labels": {"a": "1", "b": "2"}, "mode": "ambient", "workloads": [{"a": 1}], "other": 1}
    reads = {"labels": ("a", "z"), "mode": None, "workloads": ("a",), "missing": ("a",)}
    assert project_reads(facts, reads) == {"labels": {"a": "1"}, "mode": "ambient", "workloads": [{"a": 1}]}
    assert project_reads(facts, None) is facts and project_reads([1], reads) == [1]


@pytest.mark.parametrize("backend_name", available_backends())
def test_rules_see_every_key_they_read_however_they_read_it(tmp_path, backend_name):
    """Activations carry only the keys a kind's rules read, except where a rule reads a
    variable whole: then every rule of the kind sees all of it."""
    from auditor import engine

    backend = get_backend(backend_name)
    keyed = VALID.replace("id: demo-rule", "id: keyed-rule").replace(
        'object.metadata.name == "bad"', 'facts.labels.team == "x" && mesh.root_namespace == "istio-system"').replace(
        '"namespace " + object.metadata.name', '"namespace " + object.metadata.name + " in " + object.kind')
    whole = VALID.replace('object.metadata.name == "bad"', "size(facts) > 5 && size(mesh) > 5 && object.size() == 3")
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bad", "labels": {"team": "x"}}}
    alone = load_rules([write_rule(tmp_path / "alone", keyed, "keyed-rule.yaml").parent], backend=backend)
    report = audit(snapshot_of(ns), alone, backend=backend)
    assert [(f.rule, f.message) for f in report.findings] == [("keyed-rule", "namespace bad in Namespace is bad")]
    assert engine.reads_of(alone) == {"object": {"metadata": ("name",), "kind": None}, "facts": {"labels": ("team",)},
                                    "mesh": {"root_namespace": None}}

    write_rule(tmp_path / "both", keyed, "keyed-rule.yaml")
    both = load_rules([write_rule(tmp_path / "both", whole).parent], backend=backend)
    report = audit(snapshot_of(ns), both, backend=backend)
    assert report.errors == []
    assert sorted((f.rule, f.message) for f in report.findings) == [
        ("demo-rule", "namespace bad is bad"), ("keyed-rule", "namespace bad in Namespace is bad")]
    assert engine.reads_of(both) == {"object": None, "facts": None, "mesh": None}


def test_the_catalog_lists_every_builtin_rule_as_validated_and_reads_it_the_same_short_way():
    """Built-in rules whose text was validated in full skip that at scan time: the list is
    current, and a rule reads the same either way."""
    from dataclasses import fields

    from conftest import ROOT

    from auditor.rulebook import builtin_rules_dir, catalog_digests, load_rule_file, rule_files
    from auditor.rulebook.catalog import DIGESTS, validated

    assert (ROOT / "rules" / DIGESTS).read_text() == catalog_digests(builtin_rules_dir()), (
        "rules/validated.sha256 is stale: run `python scripts/rule-digests.py > rules/validated.sha256`")
    known = validated(builtin_rules_dir())
    paths = rule_files(builtin_rules_dir())
    assert len(paths) == len(known) == 66
    for path in paths:
        full, short = load_rule_file(path), load_rule_file(path, validated=known)
        for f in fields(full):
            if f.name != "programs":
                value = (lambda r: str(getattr(r, f.name))) if f.name == "istio" else (lambda r: getattr(r, f.name))
                assert value(full) == value(short), (path, f.name)
        assert sorted(full.programs) == sorted(short.programs), path


def test_only_text_validated_as_it_is_skips_the_checks(tmp_path, mocker):
    """A built-in file edited after validation (or never listed) is read the full way,
    which reports what is wrong at its line; one listed is read the short way."""
    from auditor import rulebook
    from auditor.rulebook.catalog import DIGESTS, digest

    good = write_rule(tmp_path, VALID)
    folder = good.parent
    (folder / DIGESTS).write_text(f"{digest(VALID)}  demo-rule.yaml\n")
    mocker.patch.object(rulebook, "builtin_rules_dir", lambda: folder)
    spy = mocker.spy(rulebook, "check_schema")
    assert [r.id for r in rulebook.load_rules([folder])] == ["demo-rule"] and spy.call_count == 0
    good.write_text(VALID.replace("severity: warning", "severity: fatal"))  # edited after it was listed
    with pytest.raises(UsageError) as info:
        rulebook.load_rules([folder])
    assert str(info.value) == f"{good}:3: 'severity' must be one of error, warning, info, not 'fatal'"
    good.write_text(VALID.replace('== "bad"', '== "bad" &&'))  # listed, yet it does not compile
    (folder / DIGESTS).write_text(f"{digest(good.read_text())}  demo-rule.yaml\n")
    with pytest.raises(UsageError, match=r"demo-rule.yaml:6: 'when' is not valid CEL"):
        rulebook.load_rules([folder])


def test_the_issue_named_telemetry_rule_answers_to_its_dotted_name():
    """Issue 25 names it telemetry-at-waypoint-before-1.24; ids cannot hold a dot, an alias can."""
    result = subprocess.run([sys.executable, "-m", "auditor", "scan", "-f", str(FIXTURES / "rules" / "telemetry-at-waypoint-before-1-24"),
                             "--select", "telemetry-at-waypoint-before-1.24", "--istio-version", "1.23.0", "-o", "json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {f["rule"] for f in json.loads(result.stdout)["findings"]} == {"telemetry-at-waypoint-before-1-24"}
