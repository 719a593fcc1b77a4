"""`mesh-audit snapshot`: save what a scan of the cluster would read."""

from __future__ import annotations

import sys

import click

from auditor.core.words import printable

from auditor.cli.common import EXIT_CLUSTER, EXIT_OK, call, cluster_options, cluster_sources, fail, report_gaps


@click.command("snapshot")
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              help="Where to write: FILE.json, or FILE.json.gz to compress.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
@cluster_options
def snapshot_cmd(output, quiet, allow_partial, **cluster) -> None:
    """Save what a scan of the cluster would read, to audit later with 'scan --snapshot'.
    With --context repeated (or --all-contexts), one file holds every cluster."""
    from auditor import api

    if not output.endswith((".json", ".json.gz")):
        fail(f"{output}: a snapshot file name must end in .json or .json.gz")
    sources = cluster_sources(dict(cluster, allow_partial=allow_partial), quiet)
    try:
        if len(sources) > 1:
            _several(call(api.save_snapshots, sources, output), output, quiet, allow_partial)
        live = call(api.save_snapshot, sources[None], output)
    except OSError as err:
        fail(f"{output}: {err.strerror or err}")
    report_gaps([g.to_dict() for g in live.not_collected], quiet)
    if not quiet:
        source = f"context {live.context}" if live.context else live.server
        click.echo(printable(f"mesh-audit: wrote {output}: {live.object_count} objects from {source}"
                   f" (Kubernetes {live.server_version or 'version unknown'})"
                   + (f"; {len(live.not_collected)} not collected" if live.not_collected else "")), err=True)
    sys.exit(EXIT_CLUSTER if live.not_collected and not allow_partial else EXIT_OK)


def _several(saved: dict, output: str, quiet: bool, allow_partial: bool) -> None:
    """Report a snapshot of several clusters and exit."""
    gaps = [{**gap, "cluster": name} for name, (record, _) in saved.items() for gap in record["not_collected"]]
    report_gaps(gaps, quiet)
    if not quiet:
        parts = [f"{name}: {count} objects" for name, (_, count) in saved.items()]
        click.echo(printable(f"mesh-audit: wrote {output}: {len(saved)} clusters ({'; '.join(parts)})"
                   + (f"; {len(gaps)} not collected" if gaps else "")), err=True)
    sys.exit(EXIT_CLUSTER if gaps and not allow_partial else EXIT_OK)
