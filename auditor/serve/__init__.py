"""`mesh-audit serve`: audit the cluster continuously from inside it.

It lists everything a scan collects (the same collector, the same coverage rules), then
watches every list from the version it read it at (`watch`), folding each event into the
objects it keeps (`store`). Each round audits those objects and writes the findings as
PolicyReports or OpenReports (`publish`) and as Prometheus metrics (`metrics`). A change
starts the next round once `debounce` seconds pass without another; a watch that keeps
failing starts one too. The cluster is listed again only on 410 Gone (a watch too far
behind) and every `resync` seconds. After a full audit, a round re-audits only the
objects the changes since can reach (`incremental`), where that reach is known.

The process only reads, except for the report kinds it owns. It stops within a few
seconds of SIGTERM or SIGINT (`stop`), ending its watches and the metrics server.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from auditor.model.clusters import ClusterSource
from auditor.serve.incremental import Auditor

FAR = 10 * 365 * 86400.0  # the writers' and watchers' client lives as long as the process
WATCH_POOL = 128


@dataclass
class ServeOptions:
    source: ClusterSource = field(default_factory=ClusterSource)
    settings: object = None  # api.Settings
    report: str = "policyreport"  # policyreport | openreports | none
    debounce: float = 2.0
    resync: float = 600.0
    metrics_addr: tuple[str, int] | None = ("0.0.0.0", 8080)
    once: bool = False  # one round, then exit with scan's exit code
    log: object = None  # a function taking one line (default: stderr)


@dataclass
class Round:
    report: object  # the Report
    complete: bool
    seconds: float
    written: str  # what publishing did, in words


def run(options: ServeOptions, stop: threading.Event) -> int:
    """Rounds until `stop` is set (or one, with `once`): the exit code."""
    from auditor.collect.cluster import RetryPolicy
    from auditor.collect.sources import connect_to
    from auditor.collect.cluster.http import Http
    from auditor.serve.metrics import Metrics, start_server
    from auditor.serve.publish import Publisher
    from auditor.serve.watch import Changes

    log = options.log or (lambda line: print(line, file=sys.stderr, flush=True))
    source = options.source
    connection = connect_to(source)
    # One connection per watch (a list path each) plus the report writes: the pool keeps them all.
    http = Http(connection, time.monotonic() + FAR, RetryPolicy(attempts=3), None, workers=WATCH_POOL)
    publisher = Publisher(http, options.report) if options.report != "none" else None
    metrics = Metrics()
    server = start_server(metrics, *options.metrics_addr) if options.metrics_addr else None
    if server is not None:
        log(f"mesh-audit serve: metrics and probes on {server.server_address[0]}:{server.server_address[1]}")
    changes, watch_stop, store = Changes(), threading.Event(), None
    auditor = Auditor(options.settings)
    try:
        while not stop.is_set():
            relist = store is None or changes.take_relist()
            if relist:
                store = _collect(connection, options)
                watch_stop.set()  # the old watches end; new ones start at the new lists' versions
                watch_stop = threading.Event()
                _start_watches(http, store, changes, watch_stop)
            this = _round(store, auditor, relist, publisher, changes)
            metrics.record(_counts(this.report), this.seconds, time.time(), this.complete)
            log(_summary(this, relisted=relist))
            if options.once:
                return _exit_code(this)
            if _wait(options, changes, metrics, stop):
                changes.request_relist()  # resync
        return 0
    finally:
        watch_stop.set()
        if server is not None:
            server.shutdown()
            server.server_close()


def _collect(connection, options: ServeOptions):
    from auditor.collect.cluster import collect
    from auditor.serve.store import Store

    source = options.source
    return Store(collect(connection, namespaces=list(source.namespaces) or None, timeout=source.timeout, projected=True))


def _round(store, auditor, relisted: bool, publisher, changes) -> Round:
    from auditor.reporters.policyreport import build

    started = time.monotonic()
    objects, collection = store.current()
    report = auditor.audit(objects, collection, relisted)
    with changes.lock:
        failing = dict(changes.failing)
    complete = report.complete and not failing
    written = "reports not written (--report none)"
    if publisher is not None:
        outcome = publisher.publish(build(report, publisher.flavour, uids=_uids(objects, report)))
        written = (f"reports: {outcome.created} created, {outcome.replaced} replaced, {outcome.deleted} deleted, "
                   f"{outcome.unchanged} unchanged" + (f", {outcome.conflicts} conflicts retried" if outcome.conflicts else ""))
        written += "".join(f"; cannot write {e}" for e in outcome.errors)
    if failing:
        written += "; watches failing: " + ", ".join(f"{p} ({r})" for p, r in sorted(failing.items()))
    return Round(report, complete, time.monotonic() - started, written)


def _uids(objects: dict, report) -> dict:
    out = {}
    for finding in report.findings:
        o = finding.object
        obj = objects.get(o.key)
        uid = obj.metadata.get("uid") if obj is not None else None
        if isinstance(uid, str) and uid:
            out[(o.api_version, o.kind, o.namespace or None, o.name)] = uid
    return out


def _counts(report) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for f in report.findings:
        if not f.suppressed:
            key = (f.rule, f.severity, f.object.namespace or "")
            counts[key] = counts.get(key, 0) + 1
    return counts


def _summary(this: Round, relisted: bool) -> str:
    n = this.report.counts()
    coverage = "complete" if this.complete else "INCOMPLETE (see the scan's not-collected list)"
    read = "cluster listed" if relisted else "from watch events"
    return (f"mesh-audit serve: audit in {this.seconds:.2f}s ({read}): {n.get('error', 0)} errors, "
            f"{n.get('warning', 0)} warnings, {n.get('info', 0)} info; coverage {coverage}; {this.written}")


def _exit_code(this: Round) -> int:
    if not this.complete:
        return 3
    return this.report.exit_code()


def _start_watches(http, store, changes, stop: threading.Event) -> None:
    from auditor.serve.watch import Watcher

    types = store.live.list_types
    for path, version in sorted(store.live.list_versions.items()):
        Watcher(http, path, version, changes, stop, store, types.get(path)).start()
    for (path, name), (version, rtype) in sorted(store.live.named_versions.items(), key=lambda item: item[0]):
        Watcher(http, path, version, changes, stop, store, rtype, name=name).start()


def _wait(options: ServeOptions, changes, metrics, stop: threading.Event) -> bool:
    """Until changes have been quiet for `debounce` seconds (a watch that starts failing
    counts as one), a relist is needed, `resync` passes (True), or `stop`."""
    deadline = time.monotonic() + options.resync
    while not stop.is_set():
        metrics.watch_restarts(changes.restarts)
        now = time.monotonic()
        with changes.lock:
            pending, relist, last = changes.changed_at is not None, changes.relist, changes.last_change
        if now >= deadline:
            return True
        if relist or (pending and now - last >= options.debounce):
            return False
        changes.wake.wait(min(0.1, max(0.01, options.debounce / 4)))
        changes.wake.clear()
    return False
