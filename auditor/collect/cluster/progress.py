"""The progress line a live collection shows on a terminal."""

from __future__ import annotations

import threading
from typing import TextIO

from auditor.collect.status import StatusLine


class Progress(StatusLine):
    """`collecting: pods (12,345 objects)` on one refreshed stderr line, when it is a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        super().__init__(stream, enabled)
        self.total = 0
        self._lock = threading.Lock()

    def add(self, resource: str, count: int) -> None:
        with self._lock:
            self.total += count
            if self.enabled:
                self.show(f"collecting: {resource} ({self.total:,} objects)")

    def done(self) -> None:
        with self._lock:
            self.clear()
