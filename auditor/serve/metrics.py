"""Prometheus metrics and the probes, on one small HTTP server.

- `mesh_audit_findings{rule,severity,namespace}`: findings now (suppressed ones left out;
  `namespace` is empty for cluster-scoped objects); a series whose findings are gone goes.
- `mesh_audit_last_audit_timestamp_seconds`, `mesh_audit_audit_duration_seconds` (histogram).
- `mesh_audit_coverage_complete`: 1 when the last audit read everything, else 0.
- `mesh_audit_watch_restarts_total`: watches that failed and started again.
- `/healthz`: 200 while the process runs. `/readyz`: 503 until the first complete audit,
  then 200; when a later audit is incomplete it stays 200 and says the findings it serves
  are from an older, complete audit ("stale").
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.findings = Gauge("mesh_audit_findings", "Findings of the last audit, by rule, severity and namespace.",
                              ["rule", "severity", "namespace"], registry=self.registry)
        self.last_audit = Gauge("mesh_audit_last_audit_timestamp_seconds", "When the last audit finished (Unix time).",
                                registry=self.registry)
        self.duration = Histogram("mesh_audit_audit_duration_seconds", "How long an audit took, collection included.",
                                  buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=self.registry)
        self.complete = Gauge("mesh_audit_coverage_complete", "1 when the last audit read everything it needs, else 0.",
                              registry=self.registry)
        self.restarts = Counter("mesh_audit_watch_restarts", "Watches that failed and were started again.",
                                registry=self.registry)
        self.ready = False  # a complete audit has been served
        self.stale = False  # the last audit was incomplete: what is served is older
        self._seen_restarts = 0
        self._lock = threading.Lock()

    def record(self, counts: dict[tuple[str, str, str], int], seconds: float, finished: float, complete: bool) -> None:
        with self._lock:
            self.findings.clear()
            for (rule, severity, namespace), n in sorted(counts.items()):
                self.findings.labels(rule=rule, severity=severity, namespace=namespace).set(n)
            self.duration.observe(seconds)
            self.last_audit.set(finished)
            self.complete.set(1 if complete else 0)
            if complete:
                self.ready, self.stale = True, False
            elif self.ready:
                self.stale = True

    def watch_restarts(self, total: int) -> None:
        with self._lock:
            if total > self._seen_restarts:
                self.restarts.inc(total - self._seen_restarts)
                self._seen_restarts = total

    def expose(self) -> bytes:
        return generate_latest(self.registry)


def start_server(metrics: Metrics, host: str, port: int) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz on host:port (port 0: any free one) in a thread."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.expose(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                if not metrics.ready:
                    self._send(503, b"not ready: no complete audit yet\n")
                else:
                    self._send(200, b"ok (stale: the last audit was incomplete)\n" if metrics.stale else b"ok\n")
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: probes come every few seconds
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="metrics").start()
    return server
