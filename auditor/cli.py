"""Command line: parse options, call the library, pick a reporter, set the exit code.

Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 usage, input
or rule-file errors (the report of what did load is still written); 3 the cluster could
not be read, or something was not collected (unless --allow-partial).
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from auditor import __version__
from auditor.errors import UsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CLUSTER = 0, 1, 2, 3


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"mesh-audit: error: {message}", err=True)
    sys.exit(code)


def write_output(text: str, path: str | None) -> None:
    """Write to stdout, or atomically to a file (a failed run leaves no half-written report)."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from auditor.fileio import atomic_file

    with atomic_file(path) as fh:
        fh.write(text.encode("utf-8"))


def _parse_version(value: str | None, option: str = "--istio-version"):
    from auditor.versions import parse_version

    if value is None:
        return None
    version = parse_version(value)
    if version is None:
        raise click.BadParameter(f"{value!r} is not a version like 1.24 or 1.24.2", param_hint=option)
    return version


def _rules(rules_dirs=()) -> list:
    """The built-in rules plus those under each --rules-dir; exit 2 on a bad rule file."""
    from auditor.rulebook import builtin_rules_dir, load_rules

    try:
        return load_rules([builtin_rules_dir(), *(Path(d) for d in rules_dirs)])
    except UsageError as err:
        _fail(str(err))


def _rule_names(rules) -> dict[str, str]:
    return {name: r.id for r in rules for name in (r.id, *r.aliases)}


rules_dir_option = click.option(
    "--rules-dir", "rules_dirs", multiple=True, metavar="DIR", type=click.Path(exists=True, file_okay=False),
    help="Also load the rules in this directory (repeatable); see 'mesh-audit rules test'.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mesh-audit")
def cli() -> None:
    """Audit Istio sidecar and ambient configuration for settings the data plane ignores."""


def _cluster_options(func):
    """Options of every command that reads a live cluster."""
    options = [
        click.option("--kubeconfig", metavar="FILE", help="Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)."),
        click.option("--context", metavar="NAME", help="Kubeconfig context (default: the current one)."),
        click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
                     help="Audit only these namespaces (repeatable; default all). Istio's own namespaces are read too."),
        click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True, metavar="SECONDS",
                     help="Upper bound on the whole collection."),
        click.option("--allow-partial", is_flag=True,
                     help="Do not exit 3 when some resources could not be collected (they are still reported)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _collect_live(kubeconfig, context, namespaces, timeout, quiet, projected=True, spool=None):
    """Connect and collect; exit 3 with one line when the cluster cannot be read at all."""
    from auditor.collect.cluster import ClusterError, Progress, collect, connect

    try:
        connection = connect(kubeconfig, context)
        return collect(connection, namespaces=list(namespaces) or None, timeout=timeout,
                       progress=Progress(enabled=False) if quiet else Progress(), projected=projected, spool=spool)
    except ClusterError as err:
        _fail(str(err), EXIT_CLUSTER)
    except UsageError as err:
        _fail(str(err))


def _in_scope(obj, namespaces: set[str]) -> bool:
    if obj.namespace is not None:
        return obj.namespace in namespaces
    return obj.kind != "Namespace" or obj.name in namespaces


def _warn_gaps(gaps: list[dict], quiet: bool) -> None:
    from auditor.report import describe_gap

    if not quiet:
        for gap in gaps:
            click.echo(f"mesh-audit: warning: not collected: {describe_gap(gap)}", err=True)


@cli.command()
@click.argument("extra_paths", nargs=-1, metavar="[PATH]...")
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
              help="Manifest file, directory (recursive *.yaml, *.yml, *.json), dump, snapshot or - for stdin. Repeatable.")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="Audit a snapshot written by 'mesh-audit snapshot'.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "sarif", "junit", "markdown", "github"]),
              default="table", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report here instead of stdout.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]), default=None,
              help="Exit 1 when a finding that counts is at or above this severity (default: the config's, else error).")
@click.option("--istio-version", metavar="X.Y[.Z]", help="Evaluate rules for this Istio version instead of the detected one.")
@click.option("--compare-version", metavar="X.Y[.Z]",
              help="Also evaluate for this (current) version and report what the target version adds or removes.")
@click.option("--strict-maturity", is_flag=True, help="Report Alpha features (upgrade-alpha-feature) as warnings, not info.")
@click.option("--sidecar-scope-threshold", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="sidecar-scope-missing fires when more Services than this have sidecar workloads.")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file (default: ./.mesh-audit.yaml if present).")
@click.option("--select", "select", multiple=True, metavar="RULE,...", help="Run only these rules (ids or aliases).")
@click.option("--ignore", "ignores", multiple=True, metavar="RULE[=Kind/ns/name]",
              help="Suppress a rule's findings, on all objects or those matching the glob. Repeatable.")
@click.option("--show-suppressed", is_flag=True, help="List suppressed findings in the table too.")
@click.option("--report-unused-ignores", is_flag=True, help="Warn about exemptions and --ignore patterns that matched nothing.")
@click.option("--baseline", "baseline_path", metavar="FILE", help="Only findings not in this baseline count toward --fail-on.")
@click.option("--write-baseline", "write_baseline_path", metavar="FILE", help="Record this scan's findings as a baseline.")
@click.option("--cluster-name", metavar="NAME", help="Stable cluster name for SARIF paths and automationDetails.id.")
@click.option("--source-map", "source_map", metavar="DIR", type=click.Path(exists=True, file_okay=False),
              help="Point findings on live objects at their manifests in this GitOps checkout.")
@rules_dir_option
@click.option("-j", "--jobs", type=click.IntRange(min=1), envvar="MESH_AUDIT_JOBS", metavar="N",
              help="Processes that read and evaluate a large input [default: the CPUs available, at most 4; "
                   "env MESH_AUDIT_JOBS].")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no warnings on stderr.")
@_cluster_options
def scan(extra_paths, paths, snapshot_path, fmt, output_file, fail_on, istio_version, compare_version, strict_maturity,
         sidecar_scope_threshold, config_path, select, ignores, show_suppressed, report_unused_ignores, baseline_path,
         write_baseline_path, cluster_name, source_map, rules_dirs, jobs, quiet, kubeconfig, context, namespaces, timeout,
         allow_partial) -> None:
    """Audit a live cluster (the current kubeconfig context), or manifests, dumps
    (kubectl get -o yaml|json), snapshots or stdin given as PATHs, with -f or --snapshot."""
    from datetime import date

    from auditor.config import find_config, load_config
    from auditor.engine import audit
    from auditor.reporters import REPORTERS
    from auditor.suppress import apply_baseline, apply_suppressions, cli_ignores, read_baseline, write_baseline

    version = _parse_version(istio_version)
    current_version = _parse_version(compare_version, "--compare-version")
    rules = _rules(rules_dirs)
    names = _rule_names(rules)
    try:
        config = load_config(find_config(config_path), rules)
        exemptions = config.exemptions + cli_ignores(list(ignores), names)
        known_baseline = read_baseline(baseline_path) if baseline_path else None
    except UsageError as err:
        _fail(str(err))
    rules = _select(config.apply(rules), select, names)
    fail_on = config.effective_fail_on(fail_on)
    loaded = _load_input(tuple(paths) + tuple(extra_paths), snapshot_path, kubeconfig, context, namespaces, timeout, quiet,
                         jobs)
    snapshot, collection = loaded.snapshot, loaded.collection
    input_errors, input_warnings = loaded.errors, loaded.warnings
    options = _audit_options(collection, strict_maturity or config.strict, sidecar_scope_threshold, cluster_name)
    report = audit(snapshot, rules, istio_version=version, options=options, jobs=jobs)
    if current_version is not None:
        from auditor.compare import compare

        if report.istio_version is None:
            _fail("--compare-version needs the target version: pass --istio-version (none was detected in the input)")
        report.comparison = compare(audit(snapshot, rules, istio_version=current_version, options=options, jobs=jobs),
                                    report)
    report.collection = collection
    report.cluster_name = cluster_name
    report.show_suppressed = show_suppressed
    report.warnings = [w.to_dict() for w in input_warnings] + report.warnings
    report.errors = [dict(kind="input", **e.to_dict()) for e in input_errors] + report.errors
    scope = set(namespaces) or set(collection.get("namespaces") or ())
    if scope:
        report.findings = [f for f in report.findings if _in_scope(f.object, scope)]
    if source_map:
        from auditor.sourcemap import SourceMap

        mapping = SourceMap(source_map)
        input_warnings = input_warnings + mapping.warnings
        mapping.apply(report)
    expired = apply_suppressions(report, snapshot, exemptions, names, date.today(), config.path)
    if known_baseline is not None:
        apply_baseline(report, known_baseline, baseline_path)
    if not quiet:
        for w in input_warnings:
            click.echo(f"mesh-audit: warning: {w}", err=True)
        for message in expired:
            click.echo(f"mesh-audit: warning: {message}", err=True)
    if report_unused_ignores:
        for ex in report.unused_exemptions:
            where = f"{config.path}:{ex['line']}: " if ex["source"] == "config" else ""
            click.echo(f"mesh-audit: warning: {where}exemption matched nothing: {ex['rule']} on {ex['object']}", err=True)
    _warn_gaps(report.not_collected, quiet)
    for err in input_errors:
        click.echo(f"mesh-audit: error: {err}", err=True)
    write_output(REPORTERS[fmt](report), output_file)
    if write_baseline_path:
        write_baseline(report, write_baseline_path)
    if input_errors:
        sys.exit(EXIT_USAGE)
    if not report.complete and not allow_partial:
        sys.exit(EXIT_CLUSTER)
    sys.exit(report.exit_code(fail_on))


def _select(rules: list, select: tuple, names: dict) -> list:
    if not select:
        return rules
    wanted = set()
    for item in select:
        for name in filter(None, (n.strip() for n in item.split(","))):
            if name not in names:
                _fail(f"--select {name}: no rule named '{name}' (see 'mesh-audit rules list')")
            wanted.add(names[name])
    return [r for r in rules if r.id in wanted]


@dataclass
class _Input:
    snapshot: object  # auditor.snapshot.Snapshot
    collection: dict
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _load_input(paths, snapshot_path, kubeconfig, context, namespaces, timeout, quiet, jobs=None) -> _Input:
    """Objects from files (-f), a snapshot (--snapshot) or, with neither, the live cluster."""
    from auditor.collect.files import load_paths
    from auditor.snapshot import K8sObject, Snapshot

    if paths and snapshot_path:
        _fail("use -f or --snapshot, not both")
    if paths or snapshot_path:
        try:
            loaded = load_paths(list(paths) or [snapshot_path], jobs=jobs)
        except UsageError as err:
            _fail(str(err))
        if snapshot_path and not loaded.snapshots and not loaded.errors:
            _fail(f"{snapshot_path}: not a mesh-audit snapshot; scan manifests and dumps with -f")
        snapshot = loaded.snapshot()
        return _Input(snapshot, _collection_of_files(loaded), loaded.errors, loaded.warnings)
    live = _collect_live(kubeconfig, context, namespaces, timeout, quiet)
    return _Input(Snapshot(K8sObject(o) for o in live.objects), {"source": "cluster", **live.describe()})


def _audit_options(collection: dict, strict_maturity: bool, sidecar_scope_threshold: int, cluster_name: str | None = None):
    """What the rules may assume beyond the objects: for a cluster or snapshot, which resource
    types were collected in full (so that an absent DaemonSet or CRD means something)."""
    from auditor.facts import AuditOptions
    from auditor.versions import parse_version

    collected = None
    if collection.get("source") in ("cluster", "snapshot"):
        missing = {g["resource"] for g in collection.get("not_collected") or ()}
        collected = frozenset(k for k in collection.get("counts") or {} if k not in missing)
    server = collection.get("server_version")
    return AuditOptions(
        strict_maturity=strict_maturity,
        sidecar_scope_threshold=sidecar_scope_threshold,
        collected=collected,
        kubernetes_version=parse_version(server) if server else None,
        cluster_name=cluster_name or "cluster",
    )


def _collection_of_files(loaded) -> dict:
    """Files are complete by definition; snapshots among them carry their own record."""
    if not loaded.snapshots:
        return {"source": "files"}
    path, first = loaded.snapshots[0]
    collection = {"source": "snapshot", "snapshot": path, **first.describe()}
    for _, other in loaded.snapshots[1:]:
        collection["not_collected"] += [g.to_dict() for g in other.not_collected]
    return collection


@cli.command("explain")
@click.argument("ref", metavar="KIND/NAMESPACE/NAME")
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH", help="Read objects from files, as scan does.")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="Read objects from a snapshot.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--istio-version", metavar="X.Y[.Z]", help="Explain for this Istio version instead of the detected one.")
@rules_dir_option
@click.option("-q", "--quiet", is_flag=True, help="No progress and no warnings on stderr.")
@_cluster_options
def explain_cmd(ref, paths, snapshot_path, fmt, istio_version, rules_dirs, quiet, kubeconfig, context, namespaces, timeout,
                allow_partial) -> None:
    """Why mesh-audit sees one object as it does: its data plane mode and the label that
    decided it, its waypoint binding, the policies that reach it and who enforces them,
    its findings, and the facts rules evaluate (KIND/NAME for cluster-scoped kinds)."""
    from auditor.engine import audit
    from auditor.explain import explain, find_object, render_text
    from auditor.facts import Facts

    version = _parse_version(istio_version)
    rules = _rules(rules_dirs)
    loaded = _load_input(paths, snapshot_path, kubeconfig, context, namespaces, timeout, quiet)
    for err in loaded.errors:
        click.echo(f"mesh-audit: error: {err}", err=True)
    _warn_gaps(loaded.collection.get("not_collected") or [], quiet)
    options = _audit_options(loaded.collection, False, 50)
    facts = Facts(loaded.snapshot, version, options)
    report = audit(loaded.snapshot, rules, istio_version=version, facts=facts)
    try:
        obj = find_object(loaded.snapshot, ref)
    except UsageError as err:
        _fail(str(err))
    doc = explain(facts, report, obj)
    if fmt == "json":
        import orjson

        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    else:
        click.echo(render_text(doc), nl=False)
    sys.exit(EXIT_USAGE if loaded.errors else EXIT_OK)


@cli.command("snapshot")
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              help="Where to write: FILE.json, or FILE.json.gz to compress.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
@_cluster_options
def snapshot_cmd(output, quiet, kubeconfig, context, namespaces, timeout, allow_partial) -> None:
    """Save what a scan of the cluster would read, to audit later with 'scan --snapshot'."""
    from auditor.collect.cluster import Spool
    from auditor.collect.snapshot_file import write_snapshot

    if not output.endswith((".json", ".json.gz")):
        _fail(f"{output}: a snapshot file name must end in .json or .json.gz")
    # Large lists are serialized page by page as they arrive: memory stays a fraction of the cluster's.
    live = _collect_live(kubeconfig, context, namespaces, timeout, quiet, projected=False,
                         spool=Spool(compress=output.endswith(".gz")))
    try:
        write_snapshot(live, output)
    except OSError as err:
        _fail(f"{output}: {err.strerror or err}")
    _warn_gaps([g.to_dict() for g in live.not_collected], quiet)
    if not quiet:
        where = f"context {live.context}" if live.context else live.server
        click.echo(f"mesh-audit: wrote {output}: {live.object_count} objects from {where}"
                   f" (Kubernetes {live.server_version or 'version unknown'})"
                   + (f"; {len(live.not_collected)} not collected" if live.not_collected else ""), err=True)
    sys.exit(EXIT_CLUSTER if live.not_collected and not allow_partial else EXIT_OK)


@cli.group()
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

    rule = find_rule(_rules(rules_dirs), rule_id)
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


@rules.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def rules_validate(paths) -> None:
    """Check rule files (or directories of them): schema, CEL, ids unique and not taken by
    a built-in rule. Prints every problem; exit 2 if there is any."""
    from auditor.rulebook import builtin_rules_dir, load_rule_file, load_rules, rule_files

    taken = {name: r.path for r in load_rules() for name in (r.id, *r.aliases)}
    problems, count = [], 0
    for root in paths:
        for path in rule_files(Path(root)):
            try:
                rule = load_rule_file(path)
            except UsageError as err:
                problems.append(str(err))
                continue
            if path.stem != rule.id:
                problems.append(str(UsageError(f"rule id '{rule.id}' does not match the file name '{path.name}'", str(path), 1)))
            for name in (rule.id, *rule.aliases):
                other = taken.get(name)
                if other is not None and Path(other).resolve() != path.resolve():
                    owner = "a built-in rule" if str(builtin_rules_dir()) in other else other
                    problems.append(str(UsageError(f"rule id or alias '{name}' is already used by {owner}", str(path), 1)))
                taken[name] = str(path)
            count += 1
    for problem in problems:
        click.echo(f"mesh-audit: error: {problem}", err=True)
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
    from auditor.rulebook.harness import fixture_files, layout_problems, run_fixture

    rules = _rules([directory])
    own = {r.id for r in rules if Path(r.path).resolve().is_relative_to(Path(directory).resolve())}
    mine = [r for r in rules if r.id in own]
    fixtures = Path(fixtures_dir) if fixtures_dir else Path(directory) / "fixtures"
    problems = layout_problems(fixtures, mine)
    for problem in problems:
        click.echo(f"FAIL  {problem}")
    failed = len(problems)
    paths = fixture_files(fixtures, own)
    for path in paths:
        outcome = run_fixture(path, rules)
        click.echo(f"{'ok  ' if outcome.ok else 'FAIL'}  {path}")
        for problem in outcome.problems:
            click.echo(f"        {problem}")
        failed += not outcome.ok
    click.echo(f"{len(mine)} rules, {len(paths)} fixtures, {failed} failed")
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)


@rules.command("docs")
def rules_docs() -> None:
    """The catalog as Markdown (the source of docs/rules.md)."""
    from auditor.rulebook.docs import render

    sys.stdout.write(render(_rules()))


def _indent(text: str) -> str:
    import textwrap

    return textwrap.fill(" ".join(text.split()), width=88, initial_indent="  ", subsequent_indent="  ")


EXIT_INTERRUPTED = 130


def main() -> None:
    """The console script: click's own handling, except that Ctrl-C exits 130 at once.

    Outputs are written through temporary files, so an interrupted run leaves no partial
    report or snapshot. os._exit skips waiting for collector threads still blocked in a
    request; there is nothing left for them to finish."""
    # A run is short and builds millions of objects without cycles; the cyclic garbage
    # collector would rescan them all again and again (seconds on a 50k-pod snapshot).
    gc.disable()
    try:
        returned = cli.main(standalone_mode=False)
    except SystemExit as done:
        _exit(done.code)  # here, while the exception still holds the command's frames
    except (KeyboardInterrupt, click.exceptions.Abort):
        _interrupted()
    except click.ClickException as err:
        err.show()
        _exit(err.exit_code)
    except BrokenPipeError:  # `mesh-audit ... | head`: the reader left; that is not an error
        os._exit(0)
    _exit(returned if isinstance(returned, int) else EXIT_OK)


def _exit(code) -> None:
    """Leave without tearing down what the run built. Every report and snapshot is closed
    by now (written through atomic_file), so what is left is freeing objects one by one:
    about a quarter of a second for a 50,000-pod cluster, for memory the OS reclaims
    anyway. Codes follow sys.exit: None is 0, a string is printed and exits 1."""
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.stderr.flush()
    os._exit(code)


def _interrupted() -> None:
    sys.stderr.write("mesh-audit: interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
