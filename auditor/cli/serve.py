"""`mesh-audit serve`: audit the cluster continuously; reports in the cluster, metrics."""

from __future__ import annotations

import signal
import threading

import click

from auditor.cli.common import EXIT_CLUSTER, VERSION, call, fail


def _address(ctx, param, value):
    if value is None or value == "none":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 0.0.0.0:8080, :8080)", ctx, param)
    return (host or "0.0.0.0", int(port))


@click.command("serve")
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then the "
                                                  "pod's service account).")
@click.option("--context", metavar="CONTEXT", help="Kubeconfig context (default: the current one).")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
              help="Audit only these namespaces (repeatable; default all). Istio's own namespaces are read too.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True, metavar="SECONDS",
              help="Upper bound on each collection.")
@click.option("--report", "report_kind", type=click.Choice(["policyreport", "openreports", "none"]), default="policyreport",
              show_default=True, help="Write findings as wgpolicyk8s.io PolicyReports, openreports.io Reports, or not at all.")
@click.option("--debounce", type=click.FloatRange(min=0), default=2.0, show_default=True, metavar="SECONDS",
              help="Audit again once changes have been quiet this long.")
@click.option("--resync", type=click.FloatRange(min=1), default=600.0, show_default=True, metavar="SECONDS",
              help="List and audit everything again at least this often, changes or not.")
@click.option("--metrics-addr", default="0.0.0.0:8080", show_default=True, callback=_address, metavar="HOST:PORT",
              help="Serve /metrics, /healthz and /readyz here ('none': no server).")
@click.option("--once", is_flag=True, help="Audit and write the reports once, then exit with scan's exit code (for a CronJob).")
@click.option("--istio-version", type=VERSION, help="Evaluate rules for this Istio version instead of the detected one.")
@click.option("--config", "config_path", metavar="FILE", help="Configuration file (default: ./.mesh-audit.yaml if present).")
@click.option("--select", "select", multiple=True, metavar="RULE,...", help="Run only these rules (ids or aliases).")
@click.option("--ignore", "ignores", multiple=True, metavar="RULE[=Kind/ns/name]", help="Suppress a rule's findings. Repeatable.")
def serve_cmd(**opts) -> int:
    """Audit the cluster continuously: watch what a scan reads, audit again on change,
    publish PolicyReports and Prometheus metrics. Runs until SIGTERM or SIGINT (exit 0)."""
    from auditor import api
    from auditor.model.clusters import ClusterSource
    from auditor.gate.config import find_config
    from auditor.serve import ServeOptions, run

    settings = call(api.resolve, api.Settings(istio_version=opts["istio_version"], config=find_config(opts["config_path"]),
                                              select=opts["select"], ignores=opts["ignores"],
                                              namespaces=opts["namespaces"]))
    source = ClusterSource(kubeconfig=opts["kubeconfig"], context=opts["context"], namespaces=opts["namespaces"],
                           timeout=opts["timeout"])
    options = ServeOptions(source=source, settings=settings, report=opts["report_kind"], debounce=opts["debounce"],
                           resync=opts["resync"], metrics_addr=opts["metrics_addr"], once=opts["once"])
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return call(run, options, stop)
    except OSError as err:  # the metrics address is taken, or not ours to bind
        host, port = opts["metrics_addr"]
        fail(f"cannot serve on {host}:{port}: {err.strerror or err}", EXIT_CLUSTER)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
