"""`mesh-audit explain`: why mesh-audit sees one object as it does."""

from __future__ import annotations

import sys

import click

from auditor.cli.common import (EXIT_OK, EXIT_USAGE, VERSION, call, change_options, cluster_options, error, file_options,
                                load_change, load_input, report_gaps, rules_dir_option)


@click.command("explain")
@click.argument("ref", metavar="KIND/NAMESPACE/NAME")
@click.option("-f", "--filename", "paths", multiple=True, metavar="PATH", help="Read objects from files, as scan does.")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="Read objects from a snapshot.")
@change_options
@file_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--istio-version", type=VERSION, help="Explain for this Istio version instead of the detected one.")
@click.option("--cluster", "member", metavar="NAME", help="In an audit of several clusters, the cluster that holds the object.")
@rules_dir_option
@click.option("-q", "--quiet", is_flag=True, help="No progress and no warnings on stderr.")
@cluster_options
def explain_cmd(ref, paths, snapshot_path, fmt, istio_version, member, rules_dirs, quiet, exclude, no_gitignore,
                require_rendering, against, deletes, diff_base, **cluster) -> None:
    """Why mesh-audit sees one object as it does: its data plane mode and the label that
    decided it, its waypoint binding, the policies that reach it and who enforces them,
    its findings, and the facts rules evaluate (KIND/NAME for cluster-scoped kinds)."""
    from auditor import api
    from auditor.explain import explain, render_text

    from auditor.gate.config import find_config

    settings = call(api.resolve, api.Settings(istio_version=istio_version, rules_dirs=rules_dirs, exclude=exclude,
                                              gitignore=not no_gitignore, require_rendering=require_rendering,
                                              config=find_config(None)))
    applied = load_change(paths, snapshot_path, dict(cluster, against=against, deletes=deletes, diff_base=diff_base),
                          quiet, settings=settings)
    snapshot = applied.combined if applied is not None else load_input(paths, snapshot_path, cluster, quiet,
                                                                       settings=settings)
    for err in snapshot.errors:
        error(err)
    report_gaps(snapshot.collection.get("not_collected") or [], quiet)
    ctx = call(api.context, snapshot, settings, cluster=member)
    report = api.audit(snapshot, settings, ctx=None if member else ctx)
    obj = call(api.find_object, ctx.snapshot, ref)
    doc = explain(ctx, report, obj)
    if fmt == "json":
        import orjson

        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    else:
        click.echo(render_text(doc), nl=False)
    sys.exit(EXIT_USAGE if snapshot.errors else EXIT_OK)
