"""Which built-in rule files have been validated in full, by the digest of their text.

Reading a rule file the full way (a YAML parse that tracks lines, the JSON Schema pass,
and jsonschema's import) was most of mesh-audit's start-up, and only a broken file
needs it. The built-in catalog ships with the SHA-256 of every file as validated
(`rules/validated.sha256`, written by `rulebook.catalog_digests`; the tests keep it
current), and a file whose text has one of those digests is read the short way. Any
other text, such as an installed file edited by hand or a rule being written in a
checkout, is read the full way.

After changing a built-in rule: python scripts/rule-digests.py > rules/validated.sha256
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DIGESTS = "validated.sha256"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validated(directory: Path) -> frozenset[str]:
    """The digests listed for a catalog directory; none when it has no list."""
    try:
        text = (directory / DIGESTS).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())

