"""Command line: parse options, call the library, pick a reporter, set the exit code.

Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 usage, input
or rule-file errors (the report of what did load is still written).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from auditor import __version__
from auditor.errors import UsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> None:
    click.echo(f"mesh-audit: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def write_output(text: str, path: str | None) -> None:
    """Write to stdout, or atomically to a file (a failed run leaves no half-written report)."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _parse_version(value: str | None):
    from auditor.versions import parse_version

    if value is None:
        return None
    version = parse_version(value)
    if version is None:
        raise click.BadParameter(f"{value!r} is not a version like 1.24 or 1.24.2", param_hint="--istio-version")
    return version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mesh-audit")
def cli() -> None:
    """Audit Istio sidecar and ambient configuration for settings the data plane ignores."""


@cli.command()
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
              help="Manifest file, directory (recursive *.yaml, *.yml, *.json) or - for stdin. Repeatable.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "sarif"]), default="table", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report here instead of stdout.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]), default="error", show_default=True,
              help="Exit 1 when a finding is at or above this severity.")
@click.option("--istio-version", metavar="X.Y[.Z]", help="Evaluate rules for this Istio version instead of the detected one.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print warnings about skipped input.")
def scan(paths, fmt, output_file, fail_on, istio_version, quiet) -> None:
    """Audit manifests, dumps (kubectl get -o yaml|json) or stdin."""
    from auditor.collect.files import load_paths
    from auditor.engine import audit
    from auditor.reporters import REPORTERS
    from auditor.rulebook import load_rules

    version = _parse_version(istio_version)
    if not paths:
        _fail("no input: pass -f PATH (a file, a directory or - for stdin)")
    try:
        rules = load_rules()
        loaded = load_paths(list(paths))
    except UsageError as err:
        _fail(str(err))
    snapshot = loaded.snapshot()
    report = audit(snapshot, rules, istio_version=version)
    report.warnings = [w.to_dict() for w in loaded.warnings] + report.warnings
    report.errors = [dict(kind="input", **e.to_dict()) for e in loaded.errors] + report.errors
    if not quiet:
        for w in loaded.warnings:
            click.echo(f"mesh-audit: warning: {w}", err=True)
    for err in loaded.errors:
        click.echo(f"mesh-audit: error: {err}", err=True)
    write_output(REPORTERS[fmt](report), output_file)
    sys.exit(EXIT_USAGE if loaded.errors else report.exit_code(fail_on))


@cli.group()
def rules() -> None:
    """List and describe the built-in rules."""


@rules.command("list")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def rules_list(fmt) -> None:
    """All rules, with severity, category and the Istio versions they apply to."""
    from auditor.rulebook import load_rules

    try:
        loaded = load_rules()
    except UsageError as err:
        _fail(str(err))
    if fmt == "json":
        import orjson

        click.echo(orjson.dumps([r.to_dict() for r in loaded], option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
        return
    from tabulate import tabulate

    rows = [[r.id, r.severity, r.category, str(r.istio), r.title] for r in loaded]
    click.echo(tabulate(rows, headers=["ID", "SEVERITY", "CATEGORY", "ISTIO", "TITLE"], tablefmt="simple"))


@rules.command("show")
@click.argument("rule_id")
def rules_show(rule_id) -> None:
    """One rule in full: what it checks, why it matters, how to fix it."""
    from auditor.rulebook import find_rule, load_rules

    try:
        rule = find_rule(load_rules(), rule_id)
    except UsageError as err:
        _fail(str(err))
    if rule is None:
        _fail(f"no rule named {rule_id!r}; see 'mesh-audit rules list'")
    lines = [
        f"{rule.id}: {rule.title}",
        f"severity: {rule.severity}    category: {rule.category}    istio: {rule.istio}    confidence: {rule.confidence}",
        f"applies to: {', '.join(rule.applies_to)}",
        f"tags: {', '.join(rule.tags) or '-'}",
    ]
    if rule.aliases:
        lines.append(f"aliases: {', '.join(rule.aliases)}")
    lines += ["", "Why:", _indent(rule.rationale), "", "Fix:", _indent(rule.remediation), "", "References:"]
    lines += [f"  {r}" for r in rule.references]
    click.echo("\n".join(lines))


def _indent(text: str) -> str:
    import textwrap

    return textwrap.fill(" ".join(text.split()), width=88, initial_indent="  ", subsequent_indent="  ")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
