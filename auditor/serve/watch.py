"""Watching what a collection listed: one thread per list, from the resourceVersion the list
was read at, so nothing that changes after the list is missed. Each event is folded into
the Store the next audit reads.

A watch reports to its `Changes`: an object added, changed or deleted (`changed`), the
watch's version too old for the server (410 Gone: the lists must be read again, `relist`),
or a failure. A failed watch starts again after a backoff (0.5 s doubling to 30 s) from the
last version it saw, and counts a restart; one that keeps failing (`FAILING_AFTER` times in
a row) makes the coverage of the next audit incomplete, never silently green.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import orjson

FAILING_AFTER = 3
BACKOFF = (0.5, 30.0)
WATCH_SECONDS = 300  # a watch asks the server to end it after this long, then starts again


@dataclass
class Changes:
    """What the watches tell the loop; one lock, one event to wake it."""

    wake: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed_at: float | None = None  # the first change since the last audit (monotonic)
    last_change: float = 0.0  # the latest one: a round starts once changes are quiet
    relist: bool = False
    restarts: int = 0
    failing: dict = field(default_factory=dict)  # path -> reason, for watches failing again and again

    def note_change(self) -> None:
        with self.lock:
            self.last_change = time.monotonic()
            if self.changed_at is None:
                self.changed_at = self.last_change
        self.wake.set()

    def note_relist(self) -> None:
        with self.lock:
            self.relist = True
        self.wake.set()

    def note_failure(self, path: str, reason: str, in_a_row: int) -> None:
        with self.lock:
            self.restarts += 1
            if in_a_row >= FAILING_AFTER and path not in self.failing:
                self.failing[path] = reason  # the next round reports the coverage incomplete
                self.last_change = time.monotonic()
                if self.changed_at is None:
                    self.changed_at = self.last_change
        self.wake.set()

    def note_healthy(self, path: str) -> None:
        with self.lock:
            self.failing.pop(path, None)

    def request_relist(self) -> None:
        with self.lock:
            self.relist = True

    def take_relist(self) -> bool:
        """Whether the lists must be read again; and start counting changes afresh (the
        round about to run covers every change so far)."""
        with self.lock:
            relist = self.relist
            self.changed_at, self.relist = None, False
            self.wake.clear()
            return relist


class Watcher(threading.Thread):
    """Watches one list path from `version` until `stop` is set; with `name`, only the object
    of that name (a field selector), from `version` or, when it was absent, from now."""

    def __init__(self, http, path: str, version: str | None, changes: Changes, stop: threading.Event, store=None,
                 rtype=None, name: str | None = None):
        super().__init__(daemon=True, name=f"watch {path}" + (f" {name}" if name else ""))
        # Not `self.name`: that is the thread's.
        self.http, self.path, self.version, self.object_name = http, path, version, name
        self.what = f"{path} ({name})" if name else path  # how failures name this watch
        self.changes, self.stop_event = changes, stop
        self.store, self.rtype = store, rtype  # where events are folded in (serve.store)

    def run(self) -> None:
        from auditor.collect.cluster.http import StatusError, Unavailable

        failures = 0
        while not self.stop_event.is_set():
            try:
                self._watch_once()
                failures = 0
                self.changes.note_healthy(self.what)
            except _Gone:
                self.changes.note_relist()
                return  # the loop reads the lists again and starts new watches
            except Exception as err:  # noqa: BLE001 - a watch thread never dies silently: it counts and retries
                if isinstance(err, StatusError) and err.response.status == 410:
                    self.changes.note_relist()
                    return
                failures += 1
                reason = f"HTTP {err.response.status}" if isinstance(err, StatusError) else \
                    str(err) if isinstance(err, (Unavailable, ValueError)) else f"{type(err).__name__}: {err}"
                self.changes.note_failure(self.what, reason, failures)
                self.stop_event.wait(min(BACKOFF[1], BACKOFF[0] * 2 ** (failures - 1)))

    def _watch_once(self) -> None:
        query = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}
        if self.version:
            query["resourceVersion"] = self.version
        if self.object_name:
            query["fieldSelector"] = f"metadata.name={self.object_name}"
        for line in self.http.stream(self.path, query):
            if self.stop_event.is_set():
                return
            event = orjson.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Gone()
                raise ValueError(f"watch error: {obj.get('message') or obj.get('reason') or 'unknown'}")
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self.version = str(version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                if self.store is None or self.store.apply(self.rtype, kind, obj):
                    self.changes.note_change()


class _Gone(Exception):
    pass
