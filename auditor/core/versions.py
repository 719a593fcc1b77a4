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


# The Istio releases mesh-audit's rules were written against (istio-evidence.md, Section D):
# ambient mode is Beta from 1.22 and GA from 1.24; before 1.22 a mesh runs sidecars only.
FIRST_KNOWN, LAST_KNOWN, FIRST_AMBIENT = Version(1, 10), Version(1, 31), Version(1, 22)
_STRICT = re.compile(r"^v?\d+\.\d+(\.\d+)?(-[0-9A-Za-z.-]+)?$")


def checked_version(text: str) -> tuple[Version, str | None]:
    """A version a user asked for (`--istio-version 1.24`): the Version and a note when it
    predates ambient mode; ValueError, saying which versions mesh-audit knows, for text that
    is not a version (`1.2x`) or a release outside them (`1.9`, `2.0`)."""
    known = f"mesh-audit knows Istio {FIRST_KNOWN.minor_str} to {LAST_KNOWN.minor_str}"
    if not _STRICT.match(str(text).strip()):
        raise ValueError(f"{text!r} is not a version like 1.24 or 1.24.2 ({known})")
    version = parse_version(text)
    if not Version(FIRST_KNOWN.major, FIRST_KNOWN.minor) <= version < Version(LAST_KNOWN.major, LAST_KNOWN.minor + 1):
        raise ValueError(f"Istio {version.minor_str} is not a release mesh-audit knows ({known})")
    if version < FIRST_AMBIENT:
        return version, (f"Istio {version.minor_str} predates ambient mode (Beta from {FIRST_AMBIENT.minor_str}): "
                         "only sidecar mode applies, and rules about ambient mode read it as not in use")
    return version, None


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


# Ambient's general availability: from this release waypoints serve ServiceEntries and,
# when a Service opts in, traffic from ingress gateways.
V1_24 = Version(1, 24)
