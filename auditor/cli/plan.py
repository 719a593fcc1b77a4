"""`mesh-audit plan`: which namespaces can move to ambient, what blocks the rest, in what
order, the change set, and the cost."""

from __future__ import annotations

import sys

import click

from auditor.core.words import printable
from auditor.plan import NAMES, renderer

from auditor.cli.common import (EXIT_CLUSTER, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, VERSION, call, change_options, error, fail,
                                file_options, load_change, named_paths, outputs_parser, report_gaps, rules_dir_option, warn,
                                terminal_width, where, write_output)

FORMATS = list(NAMES)


@click.command("plan")
@click.argument("extra_paths", nargs=-1, metavar="[PATH]...")
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
              help="Manifest file, directory, dump, snapshot or - for stdin. Repeatable.")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="Plan from a snapshot written by 'mesh-audit snapshot'.")
@change_options
@file_options
@click.option("--to", "target", type=click.Choice(["ambient"]), default="ambient", show_default=True,
              help="The data plane mode to move to.")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
              help="Plan only these namespaces (repeatable; default every namespace in sidecar mode). Exit 1 if one "
                   "of them cannot move (blocked, or held by a caller that stays on sidecars).")
@click.option("--include-unmeshed", is_flag=True, help="Also plan namespaces not in the mesh today.")
@click.option("--istio-version", type=VERSION, help="Plan for this Istio version (the one you run or are about to run).")
@click.option("--nodes", type=click.IntRange(min=0), metavar="N",
              help="Node count for ztunnel's cost, when the input has no Node list (manifests).")
@click.option("-o", "--output", "outputs", multiple=True, callback=outputs_parser(FORMATS, "html=plan.html"), metavar="FORMAT[=FILE]",
              help=f"Plan format ({', '.join(FORMATS)}; default table), to FILE or stdout. Repeatable.")
@click.option("--emit", "emit_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Write the change set (manifests per wave and namespace, deletions, README) to DIR.")
@click.option("--verify", is_flag=True,
              help="Re-audit the cluster with the change set applied wave by wave; exit 1 on a new error or warning.")
@click.option("--no-cluster", is_flag=True, help="Never read a live cluster: with no PATH, plan from the working directory.")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file (default: ./.mesh-audit.yaml if present).")
@click.option("--ignore", "ignores", multiple=True, metavar="RULE[=Kind/ns/name]",
              help="Do not count this rule's findings (on all objects or those matching the glob). Repeatable.")
@rules_dir_option
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).")
@click.option("--context", metavar="NAME", help="Kubeconfig context (default: the current one).")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True, metavar="SECONDS",
              help="Upper bound on reading the cluster.")
@click.option("--allow-partial", is_flag=True, help="Do not exit 3 when some resources could not be collected.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), envvar="MESH_AUDIT_JOBS", metavar="N",
              help="Processes that read and evaluate a large input [default: the CPUs available, at most 4].")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no warnings on stderr.")
def plan_cmd(**opts) -> None:
    """Which namespaces can move from sidecars to ambient on the Istio version in force (or
    --istio-version): a verdict per namespace and workload (ready, needs-waypoint, blocked)
    citing the rules behind it, the waves to move in so no caller bypasses a waypoint's
    policy, the change set (--emit), and the CPU and memory sidecars request against what
    ztunnel and waypoints add. Reads what 'scan' reads: a cluster, snapshot or files."""
    from auditor import api
    from auditor.gate.config import find_config

    settings = call(api.resolve, api.Settings(
        istio_version=opts["istio_version"], rules_dirs=opts["rules_dirs"], config=find_config(opts["config_path"]),
        ignores=opts["ignores"], jobs=opts["jobs"], exclude=opts["exclude"], gitignore=not opts["no_gitignore"],
        require_rendering=opts["require_rendering"]))
    snapshot = _load(opts, settings)
    if not len(snapshot) and not snapshot.errors and snapshot.collection["source"] != "cluster":
        fail("no Kubernetes objects in the input: nothing to plan")
    made = call(api.plan, snapshot, settings, namespaces=tuple(opts["namespaces"]),
                include_unmeshed=opts["include_unmeshed"], nodes=opts["nodes"], emit=opts["emit_dir"], verify=opts["verify"])
    if not opts["quiet"]:
        for warning in made.warnings:
            warn(where(warning))
        if made.emitted:
            click.echo(printable(f"mesh-audit: change set written to {made.emitted} (see its README.md)"), err=True)
    report_gaps(list(made.collection.get("not_collected") or []), opts["quiet"])
    for err in snapshot.errors:
        error(err)
    for fmt, path in opts["outputs"]:
        write_output(renderer(fmt)(made, width=terminal_width(path)) if fmt == "table" else renderer(fmt)(made), path)
    sys.exit(_exit_code(made, snapshot, opts))


def _load(opts: dict, settings):
    from auditor import api

    paths = opts["paths"] + opts["extra_paths"]
    if opts["no_cluster"] and not paths and not opts["snapshot_path"]:
        paths = (".",)
    change = {"against": opts["against"], "deletes": opts["deletes"], "diff_base": opts["diff_base"],
              "kubeconfig": opts["kubeconfig"], "contexts": (opts["context"],) if opts["context"] else (),
              "timeout": opts["timeout"], "namespaces": (), "follow_symlinks": opts["follow_symlinks"]}
    applied = load_change(paths, opts["snapshot_path"], change, opts["quiet"], opts["jobs"], settings)
    if applied is not None:
        return applied.combined
    if named_paths(paths) is not None:
        fail("plan reads one cluster: plan each cluster of the mesh on its own")
    if paths or opts["snapshot_path"]:
        return call(api.load, list(paths) or None, snapshot=opts["snapshot_path"], jobs=opts["jobs"],
                    follow_symlinks=opts["follow_symlinks"], settings=settings)
    source = api.ClusterSource(opts["kubeconfig"], opts["context"], (), opts["timeout"], progress=not opts["quiet"])
    return call(api.load, source)


def _exit_code(made, snapshot, opts: dict) -> int:
    """Input errors (2), then an incomplete collection (3), then a failed verification or a
    named namespace that cannot move (1)."""
    if snapshot.errors:
        return EXIT_USAGE
    if made.collection.get("not_collected") and not opts["allow_partial"]:
        return EXIT_CLUSTER
    if made.verification is not None and not made.verification["ok"]:
        return EXIT_FINDINGS
    named = [made.namespace(n) for n in opts["namespaces"]]
    if any(ns is not None and (ns.verdict == "blocked" or ns.held_by) for ns in named):
        return EXIT_FINDINGS
    return EXIT_OK
