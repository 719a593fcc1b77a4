"""`mesh-audit scan`: audit a cluster, snapshot or manifests and gate on the findings."""

from __future__ import annotations

import sys

import click

from auditor.cli.common import (EXIT_CLUSTER, EXIT_USAGE, VERSION, call, cluster_options, fail, follow_symlinks_option,
                                load_input, report_gaps, rules_dir_option, warn, where, write_output)

FORMATS = ["table", "json", "sarif", "junit", "markdown", "github"]


@click.command()
@click.argument("extra_paths", nargs=-1, metavar="[PATH]...")
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
              help="Manifest file, directory (recursive *.yaml, *.yml, *.json), dump, snapshot or - for stdin. Repeatable.")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="Audit a snapshot written by 'mesh-audit snapshot'.")
@follow_symlinks_option
@click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report here instead of stdout.")
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
    (kubectl get -o yaml|json), snapshots or stdin given as PATHs, with -f or --snapshot."""
    from auditor import api

    settings = call(api.resolve, _settings(opts))
    snapshot = load_input(opts["paths"] + opts["extra_paths"], opts["snapshot_path"], opts, opts["quiet"], opts["jobs"])
    report = call(api.audit, snapshot, settings)
    report.show_suppressed = opts["show_suppressed"]
    _tell(report, snapshot, opts)
    from auditor.reporters import REPORTERS

    write_output(REPORTERS[opts["fmt"]](report), opts["output_file"])
    if opts["write_baseline_path"]:
        from auditor.suppress import write_baseline

        try:
            write_baseline(report, opts["write_baseline_path"])
        except OSError as err:
            fail(f"{opts['write_baseline_path']}: cannot write the baseline: {err.strerror or err}")
    sys.exit(exit_code(report, snapshot, opts["allow_partial"]))


def _settings(opts: dict):
    from auditor import api
    from auditor.config import find_config

    return api.Settings(
        istio_version=opts["istio_version"], compare_version=opts["compare_version"], rules_dirs=opts["rules_dirs"],
        config=find_config(opts["config_path"]), select=opts["select"], ignores=opts["ignores"],
        baseline=opts["baseline_path"], source_map=opts["source_map"], namespaces=opts["namespaces"],
        cluster_name=opts["cluster_name"], strict_maturity=opts["strict_maturity"],
        sidecar_scope_threshold=opts["sidecar_scope_threshold"], fail_on=opts["fail_on"], jobs=opts["jobs"],
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
        click.echo(f"mesh-audit: error: {err}", err=True)


def exit_code(report, snapshot, allow_partial: bool) -> int:
    """Input errors (2) win over an incomplete collection (3), which wins over findings (1)."""
    if snapshot.errors:
        return EXIT_USAGE
    if not report.complete and not allow_partial:
        return EXIT_CLUSTER
    return report.exit_code()
