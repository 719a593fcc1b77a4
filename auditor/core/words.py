"""Words for messages, shared by facts and the CEL function rules call."""

from __future__ import annotations

import re
import textwrap


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


# Characters that move a terminal or split a log line: C0 and C1 controls (ESC starts ANSI
# and OSC sequences), DEL, and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# GitHub Actions runs a log line as a workflow command when it starts with `::` (after
# leading space) or holds `##[` anywhere; text wrapped onto a line of its own can start one.
_COMMAND = re.compile(r"(^|\s)::|##\[")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def printable(text: str) -> str:
    """Text from the input (names, labels, annotations, file names), made safe to print
    to a terminal or a CI log: control characters shown as escapes (`\\e[31m`, `\\n`),
    so it stays on its line and cannot color, move or retitle the terminal; and a
    zero-width space put inside `::` and `##[`, so the runner never reads it as a
    workflow command (`::error::`, `##[add-mask]`, `::stop-commands::`)."""
    if text.isprintable() and "::" not in text and "##[" not in text:
        return text
    text = _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                             else f"\\u{ord(m.group()):04x}"), text)
    return _COMMAND.sub(lambda m: m.group().replace("::", ":\u200b:").replace("##[", "##\u200b["), text)


def printable_lines(text: str) -> str:
    """`printable` for each line of a text this program composed (its own line breaks kept)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def wrapped(text: str, width: int) -> str:
    """Text wrapped at spaces only (a rule id or a path is never cut at a hyphen or a
    slash), each of its own lines separately; a word longer than `width` stays whole."""
    return "\n".join(line for part in str(text).split("\n")
                     for line in (textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False) or [""]))


def did_you_mean(word: str, choices) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or "" when none is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
