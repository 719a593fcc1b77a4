"""Words for messages, shared by facts and the CEL function rules call."""

from __future__ import annotations


def plural(count: int, word: str) -> str:
    """`1 workload`, `3 workloads`, `2 policies`, `2 classes`."""
    count = int(count)
    if count == 1:
        return f"{count} {word}"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        return f"{count} {word[:-1]}ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return f"{count} {word}es"
    return f"{count} {word}s"
