"""Errors a user can cause; the CLI prints them on one line and exits 2."""

from __future__ import annotations


class ClusterError(Exception):
    """The cluster cannot be read at all: unreachable, credentials rejected, TLS failure.
    (Here, not with the collector, so the CLI can catch it without importing that.)"""


class UsageError(Exception):
    """Bad input: a file, a rule, an option. `str()` is the whole one-line message."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        if self.file:
            return f"{self.file}: {self.message}"
        return self.message

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "message": self.message}


# orjson refuses documents nested deeper than this (the CEL runtime and Python's own
# recursion would fail on far less than what some parsers accept).
MAX_JSON_DEPTH = 1024


def json_line(data: bytes, err) -> int:
    """The line of orjson's rejection of `data`; for text that is not UTF-8, for which
    orjson names no place, the line of the first byte that is not."""
    if "UTF-8" in json_problem(err):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            return data.count(b"\n", 0, bad.start) + 1
    return err.lineno


def json_problem(err) -> str:
    """orjson's reason for rejecting a document, in mesh-audit's words."""
    message = getattr(err, "msg", None) or str(err)
    if "depth limit exceeded" in message or "recursion limit" in message:
        return f"nested more than {MAX_JSON_DEPTH:,} levels deep"
    return message
