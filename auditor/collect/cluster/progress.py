"""The progress line a live collection shows on a terminal."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Progress:
    """`collecting: pods (12,345 objects)` on one refreshed stderr line, when it is a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = 0
        self._lock = threading.Lock()
        self._width = 0

    def add(self, resource: str, count: int) -> None:
        with self._lock:
            self.total += count
            if self.enabled:
                self._write(f"collecting: {resource} ({self.total:,} objects)")

    def done(self) -> None:
        if self.enabled and self._width:
            with self._lock:
                self._write("")
                self.stream.write("\r")
                self.stream.flush()

    def _write(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)
