"""`mesh-audit scan`: audit a cluster, snapshot or manifests and gate on the findings."""

from __future__ import annotations

import os
import sys

import click

from auditor.reporters import NAMES
from auditor.cli.common import (EXIT_CLUSTER, EXIT_USAGE, VERSION, call, change_options, cluster_options, error, fail,
                                file_options,
                                load_change, load_input, outputs_parser, report_gaps, rules_dir_option, terminal_width,
                                warn, where, write_output)

FORMATS = list(NAMES)


@click.command()
@click.argument("extra_paths", nargs=-1, metavar="[PATH]...")
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
              help="Manifest file, directory (recursive *.yaml, *.yml, *.json), dump, snapshot or - for stdin. Repeatable.")
@click.option("--snapshot", "snapshot_path", metavar="FILE",
              help="Audit a snapshot written by 'mesh-audit snapshot' (with PATHs: --against FILE).")
@change_options
@click.option("--changes-only", is_flag=True,
              help="With --against: report only the findings the change adds (and list those it resolves); the exit "
                   "code counts the added ones.")
@file_options
@click.option("-o", "--output", "outputs", multiple=True, callback=outputs_parser(FORMATS, "sarif=out.sarif"), metavar="FORMAT[=FILE]",
              help=f"Report format ({', '.join(FORMATS)}; default table), to FILE or stdout. Repeatable: one scan, "
                   "several reports, e.g. -o sarif=mesh-audit.sarif -o github -o markdown=$GITHUB_STEP_SUMMARY.")
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the (one) report here instead of stdout.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour the table by severity: auto means on a terminal, unless NO_COLOR is set.")
@click.option("--allow-empty", is_flag=True, help="Accept an input with no Kubernetes objects (by default exit 2).")
@click.option("--no-cluster", is_flag=True,
              help="Never read a live cluster: with no PATH, scan the working directory (for hooks and scripts).")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]), default=None,
              help="Exit 1 when a finding that counts is at or above this severity (default: the config's, else error).")
@click.option("--istio-version", type=VERSION, help="Evaluate rules for this Istio version instead of the detected one.")
@click.option("--compare-version", type=VERSION,
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
@click.option("--category", metavar="NAME",
              help="SARIF automationDetails.id (NAME/), so scans of one repository keep their alerts apart "
                   "[default: mesh-audit/<cluster-name>/, else none: upload-sarif's category decides].")
@click.option("--repo-root", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Paths in SARIF and annotations are relative to this [default: the git work tree, else the "
                   "working directory].")
@click.option("--source-map", "source_map", metavar="DIR", type=click.Path(exists=True, file_okay=False),
              help="Point findings on live objects at their manifests in this GitOps checkout.")
@rules_dir_option
@click.option("-j", "--jobs", type=click.IntRange(min=1), envvar="MESH_AUDIT_JOBS", metavar="N",
              help="Processes that read and evaluate a large input [default: the CPUs available, at most 4; "
                   "env MESH_AUDIT_JOBS].")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no warnings on stderr.")
@cluster_options
def scan(**opts) -> None:
    """Audit a live cluster (the current kubeconfig context), or manifests, dumps
    (kubectl get -o yaml|json), snapshots or stdin given as PATHs, with -f or --snapshot.
    With --against, the PATHs are a change applied to a snapshot or the live cluster."""
    from auditor import api
    from auditor.reporters import View, render

    outputs = _destinations(opts)
    settings = call(api.resolve, _settings(opts))
    paths = opts["paths"] + opts["extra_paths"]
    if opts["no_cluster"] and not paths and not opts["snapshot_path"]:
        paths = (".",)
    applied = load_change(paths, opts["snapshot_path"], opts, opts["quiet"], opts["jobs"], settings)
    if applied is not None:
        snapshot = applied.combined
        report = call(api.audit_change, applied, settings, changes_only=opts["changes_only"])
    else:
        snapshot = load_input(paths, opts["snapshot_path"], opts, opts["quiet"], opts["jobs"], settings)
        _refuse_empty(snapshot, opts)
        report = call(api.audit, snapshot, settings)
    _tell(report, snapshot, opts)
    for fmt, path in outputs:
        view = View(color=path is None and wants_color(opts["color"]), width=terminal_width(path),
                    show_suppressed=opts["show_suppressed"], details_url=_ci_run_url())
        write_output(render(fmt, report, view), path)
    if opts["write_baseline_path"]:
        from auditor.gate.suppress import write_baseline

        try:
            write_baseline(report, opts["write_baseline_path"])
        except OSError as err:
            fail(f"{opts['write_baseline_path']}: cannot write the baseline: {err.strerror or err}")
    sys.exit(exit_code(report, snapshot, opts["allow_partial"]))


def _refuse_empty(snapshot, opts: dict) -> None:
    if not len(snapshot) and not snapshot.errors and not opts["allow_empty"] and \
            snapshot.collection["source"] not in ("cluster", "clusters"):
        if not opts["quiet"]:
            for warning in snapshot.warnings:  # what was skipped, and why
                warn(str(warning))
        fail(f"no Kubernetes objects in the input ({_what_was_read(snapshot)}); pass --allow-empty to accept that")


def _destinations(opts: dict) -> list[tuple[str, str | None]]:
    outputs = opts["outputs"]
    if opts["output_file"]:
        if len(outputs) > 1:
            fail("--output-file names the file of a single -o; with several, write -o FORMAT=FILE")
        outputs = [(outputs[0][0], opts["output_file"])]
    return outputs


def _ci_run_url() -> str | None:
    """The page of the GitHub Actions run this scan is part of, if it is."""
    parts = [os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def wants_color(choice: str) -> bool:
    """--color: always, never, or auto (stdout is a terminal and NO_COLOR is not set)."""
    if choice != "auto":
        return choice == "always"
    return sys.stdout is not None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _what_was_read(snapshot) -> str:
    collection = snapshot.collection
    files = collection.get("files_read", 0)
    read = f"read {files} file{'s' if files != 1 else ''}"
    skipped = len(snapshot.warnings)
    return read + (f"; {skipped} document{'s' if skipped != 1 else ''} skipped, see the warnings" if skipped else "")


def _settings(opts: dict):
    from auditor import api
    from auditor.gate.config import find_config

    return api.Settings(
        istio_version=opts["istio_version"], compare_version=opts["compare_version"], rules_dirs=opts["rules_dirs"],
        config=find_config(opts["config_path"]), select=opts["select"], ignores=opts["ignores"],
        baseline=opts["baseline_path"], source_map=opts["source_map"], namespaces=opts["namespaces"],
        cluster_name=opts["cluster_name"], category=opts["category"], repo_root=opts["repo_root"],
        strict_maturity=opts["strict_maturity"],
        sidecar_scope_threshold=opts["sidecar_scope_threshold"], fail_on=opts["fail_on"], jobs=opts["jobs"],
        exclude=opts["exclude"], gitignore=not opts["no_gitignore"], require_rendering=opts["require_rendering"],
    )


def _tell(report, snapshot, opts: dict) -> None:
    """Warnings, unused exemptions, gaps and input errors on stderr, one line each."""
    if not opts["quiet"]:
        for warning in report.warnings:
            warn(where(warning))
    if opts["report_unused_ignores"]:
        for ex in report.unused_exemptions:
            place = f"{report.config_path}:{ex['line']}: " if ex["source"] == "config" else ""
            warn(f"{place}exemption matched nothing: {ex['rule']} on {ex['object']}")
    report_gaps(report.not_collected, opts["quiet"])
    for err in snapshot.errors:
        error(err)
    paths = {r.id: r.path for r in report.rules}
    for problem in audit_errors(report):  # a rule that failed on an object, or an object facts could not read
        place = f"{paths[problem['rule']]}: rule {problem['rule']}" if problem.get("rule") in paths else "facts"
        error(f"{place} on {problem['object']}: {problem['message']}")


def audit_errors(report) -> list[dict]:
    """What the audit itself could not do: a rule's condition, message or severity that
    failed or gave the wrong type on an object, or an object whose facts failed."""
    return [e for e in report.errors if e.get("kind") in ("rule", "object")]


def exit_code(report, snapshot, allow_partial: bool) -> int:
    """Input errors (2: a file, or a rule that fails on the input) win over an incomplete
    collection (3), which wins over findings (1)."""
    if snapshot.errors or audit_errors(report):
        return EXIT_USAGE
    if not report.complete and not allow_partial:
        return EXIT_CLUSTER
    return report.exit_code()
