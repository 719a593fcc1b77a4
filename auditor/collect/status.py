"""A status line on a terminal: one stderr line refreshed in place while long work runs
(a live collection, the reading of large files), cleared when it is done. Nothing is
written where stderr is not a terminal."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from auditor.collect.paths import regular_file_size


class StatusLine:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = (self.stream is not None and self.stream.isatty()) if enabled is None else enabled
        self._width = 0

    def show(self, text: str) -> None:
        """Replace what the line says (padding over a longer earlier text)."""
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.show("")
            self.stream.write("\r")
            self.stream.flush()


class Reading(StatusLine):
    """`reading: dump.yaml (216 MB)`, `reading: 3 of 40 files (120 of 216 MB)` while a
    large input is read (as a live collection shows what it collects)."""

    LARGE = 16 * 1024 * 1024  # inputs smaller than this read too fast to need it

    def start(self, files: list[str]) -> None:
        self.sizes = {f: regular_file_size(f) or 0 for f in files} if self.enabled else {}
        self.total, self.done, self.count = sum(self.sizes.values()), 0, 0
        self.enabled = self.enabled and self.total >= self.LARGE

    def file(self, path: str) -> None:
        if self.enabled:
            mb = lambda n: f"{n / 1048576:,.0f} MB"  # noqa: E731
            if len(self.sizes) == 1:
                self.show(f"reading: {os.path.basename(path)} ({mb(self.total)})")
            else:
                self.show(f"reading: {self.count + 1} of {len(self.sizes)} files ({mb(self.done)} of {mb(self.total)})")
            self.done += self.sizes.get(path, 0)
            self.count += 1
