"""`mesh-audit rules ...`: list, show, validate, test and document rules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import click

from auditor.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, call, error, fail, rules_dir_option


def _rules(rules_dirs=()) -> list:
    """The built-in rules plus those under each --rules-dir; exit 2 on a bad rule file."""
    from auditor.rulebook import builtin_rules_dir, load_rules

    return call(load_rules, [builtin_rules_dir(), *(Path(d) for d in rules_dirs)])


@click.group()
def rules() -> None:
    """List and describe the built-in rules."""


@rules.command("list")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@rules_dir_option
def rules_list(fmt, rules_dirs) -> None:
    """All rules, with severity, category and the Istio versions they apply to."""
    loaded = _rules(rules_dirs)
    if fmt == "json":
        import orjson

        click.echo(orjson.dumps([r.to_dict() for r in loaded], option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
        return
    from tabulate import tabulate

    rows = [[r.id, r.severity, r.category, str(r.istio), r.title] for r in loaded]
    click.echo(tabulate(rows, headers=["ID", "SEVERITY", "CATEGORY", "ISTIO", "TITLE"], tablefmt="simple"))


@rules.command("show")
@click.argument("rule_id")
@rules_dir_option
def rules_show(rule_id, rules_dirs) -> None:
    """One rule in full: what it checks, why it matters, how to fix it."""
    from auditor.rulebook import find_rule

    rules = _rules(rules_dirs)
    rule = find_rule(rules, rule_id)
    if rule is None:
        from auditor.core.words import did_you_mean

        fail(f"no rule named {rule_id!r}{did_you_mean(rule_id, [r.id for r in rules])}; see 'mesh-audit rules list'")
    lines = [
        f"{rule.id}: {rule.title}",
        f"severity: {rule.severity}    category: {rule.category}    istio: {rule.istio}    confidence: {rule.confidence}",
        f"applies to: {', '.join(rule.applies_to)}",
        f"when a move to ambient introduces it (mesh-audit plan): {rule.migration}",
        f"tags: {', '.join(rule.tags) or '-'}",
    ]
    if rule.aliases:
        lines.append(f"aliases: {', '.join(rule.aliases)}")
    lines += ["", "Why:", _indent(rule.rationale), "", "Fix:", _indent(rule.remediation), "", "References:"]
    lines += [f"  {r}" for r in rule.references]
    click.echo("\n".join(lines))


@rules.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def rules_validate(paths) -> None:
    """Check rule files (or directories of them): schema, CEL, ids unique and not taken by
    a built-in rule. Prints every problem; exit 2 if there is any."""
    from auditor.rulebook import validate_rule_files

    count, problems = validate_rule_files([Path(p) for p in paths])
    for problem in problems:
        error(problem)
    if problems:
        sys.exit(EXIT_USAGE)
    click.echo(f"{count} rule file{'s' if count != 1 else ''} valid")


@rules.command("test")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--fixtures", "fixtures_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Fixture folders (<rule-id>/pass.*.yaml, fail.*.yaml); default DIRECTORY/fixtures.")
def rules_test(directory, fixtures_dir) -> None:
    """Run the rules in DIRECTORY against their pass and fail fixtures, with the harness
    that tests the built-in rules. Exit 1 when a fixture fails."""
    from auditor.ruletest import check_rule_directory

    rules = _rules([directory])
    fixtures = Path(fixtures_dir) if fixtures_dir else Path(directory) / "fixtures"
    failed = 0
    summary = check_rule_directory(Path(directory), fixtures, rules)
    for problem in summary.layout_problems:
        click.echo(f"FAIL  {problem}")
    for outcome in summary.outcomes:
        click.echo(f"{'ok  ' if outcome.ok else 'FAIL'}  {outcome.path}")
        for problem in outcome.problems:
            click.echo(f"        {problem}")
    failed = summary.failed
    click.echo(f"{summary.rules} rules, {len(summary.outcomes)} fixtures, {failed} failed")
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)


@rules.command("docs")
def rules_docs() -> None:
    """The catalog as Markdown (the source of docs/rules.md)."""
    from auditor.rulebook.docs import render

    sys.stdout.write(render(_rules()))


def _indent(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=88, initial_indent="  ", subsequent_indent="  ")
