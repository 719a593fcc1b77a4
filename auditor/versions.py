"""Istio versions and the version ranges rules declare (`>=1.22`, `<1.24`, `>=1.23,<1.26`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*(v?\d+\.\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_str(self) -> str:
        return f"{self.major}.{self.minor}"


def parse_version(text: str) -> Version | None:
    """`1.24`, `1.24.2`, `1.25.0-rc.0`, `1.24.2-distroless` → Version; anything else → None."""
    m = _VERSION.match(str(text).strip())
    if not m:
        return None
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


class VersionRange:
    """Comma-separated clauses, all of which must hold. `all` (or empty) admits every version."""

    _OPS = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }

    def __init__(self, spec: str):
        self.spec = str(spec).strip()
        self.clauses: list[tuple[str, Version]] = []
        if self.spec.lower() in ("", "all", "*"):
            return
        for part in self.spec.split(","):
            m = _CLAUSE.match(part)
            if not m:
                raise ValueError(f"'{part.strip()}' is not a version clause like '>=1.22' or '<1.24.1'")
            self.clauses.append((m.group(1) or "==", parse_version(m.group(2))))

    def admits(self, version: Version | None) -> bool:
        """Unknown versions are admitted: without a version every rule applies."""
        if version is None:
            return True
        return all(self._OPS[op](version, bound) for op, bound in self.clauses)

    def __str__(self) -> str:
        return self.spec or "all"
