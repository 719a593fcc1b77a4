"""What a set of CEL expressions reads of `object`, `facts` and `mesh`, two levels deep.

The CEL runtime converts a variable's whole Python value the first time an expression
touches it: an object's facts are about as many bytes as the object, and converting what
no rule of its kind reads was most of the time spent in CEL. The engine passes each
variable projected to what its kind's rules read, which gives the same values (a key no
expression names cannot change a result), and the whole variable wherever an expression
uses it any other way: `facts` on its own, indexed (`facts["x"]`), or as the receiver of
a function (`facts.exists(...)`).

One level down, a mapping such as `facts.labels` is projected to the keys named by literal:
`facts.labels["k"]`, `facts.labels.k`, `has(facts.labels.k)` and `"k" in facts.labels`.
Any other use of it (`facts.labels.size()`, `facts.labels[x]`, the mapping passed on)
keeps it whole. A projected mapping keeps exactly the named keys it has, so `in`, `has()` and
indexing answer as they would on the whole: what makes two objects' activations equal
when they differ only in labels no rule reads (`engine` evaluates such objects once).

The scan is lexical: comments are skipped, string literals are read only when they are
plain (no escapes, no prefix), and a name preceded by a dot is a field, not the variable
(`x.facts`). Anything it cannot read for sure counts as a use of the whole.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

# What a variable's reads are: for each key read, the keys read of its value (None: all).
Reads = dict[str, tuple[str, ...] | None]

_TOKEN = re.compile(
    r"""(?P<string>[rRbB]{0,2}(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))"""
    r"|(?P<comment>//[^\n]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>[0-9][0-9A-Za-z_.]*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:,.()\[\]{}])"
    r"|(?P<space>\s+)"
)
# A plain string literal: its text is the key it names.
_PLAIN = re.compile(r"""^(?:"([^"\\\n]*)"|'([^'\\\n]*)')$""")
# Operators that bind more loosely than `in`, so `"k" in facts.labels` stands on its own
# between them.
_LOOSE_BEFORE = {None, "(", "[", "{", ",", "&&", "||", "?", ":"}
_LOOSE_AFTER = {None, ")", "]", "}", ",", "&&", "||", "?", ":", "==", "!="}
_STRING = "string"


def top_reads(expressions: Iterable[str], variable: str) -> Reads | None:
    """What the expressions read of `variable`: its keys in first-read order, each with the
    keys read of its value (None: read whole); None when one of them uses the variable
    whole (or cannot be read for sure)."""
    reads: dict[str, set[str] | None] = {}
    for expression in expressions:
        tokens = _tokens(expression)
        if tokens is None:
            return None
        for i, (kind, text) in enumerate(tokens):
            if kind != "name" or text != variable or _at(tokens, i - 1) == ".":
                continue
            if _at(tokens, i + 1) != "." or _kind(tokens, i + 2) != "name" or _at(tokens, i + 3) == "(":
                return None  # whole, indexed, or a function's receiver
            key = tokens[i + 2][1]
            sub = _sub_read(tokens, i, i + 3)
            known = reads.get(key, set())
            reads[key] = None if sub is None or known is None else known | {sub}
    return {key: None if sub is None else tuple(sorted(sub)) for key, sub in reads.items()}


def _sub_read(tokens: tuple, start: int, after: int) -> str | None:
    """The key named by literal in the read of `variable.key` spanning tokens[start:after],
    or None when the value is read whole."""
    nxt = _at(tokens, after)
    if nxt == "[":
        if _kind(tokens, after + 1) == _STRING and _at(tokens, after + 2) == "]":
            return _plain(tokens[after + 1][1])
        return None
    if nxt == ".":
        if _kind(tokens, after + 1) == "name" and _at(tokens, after + 2) != "(":
            return tokens[after + 1][1]
        return None  # a function of the value, or an optional field
    if (_at(tokens, start - 1) == "in" and _kind(tokens, start - 2) == _STRING
            and _at(tokens, start - 3) in _LOOSE_BEFORE and nxt in _LOOSE_AFTER):
        return _plain(tokens[start - 2][1])
    return None


def _at(tokens: tuple, i: int) -> str | None:
    return tokens[i][1] if 0 <= i < len(tokens) else None


def _kind(tokens: tuple, i: int) -> str | None:
    return tokens[i][0] if 0 <= i < len(tokens) else None


def _plain(literal: str) -> str | None:
    match = _PLAIN.match(literal)
    return None if match is None else match.group(1) if match.group(1) is not None else match.group(2)


@lru_cache(maxsize=4096)  # a rule's expressions are read once per kind it applies to
def _tokens(expression: str) -> tuple[tuple[str, str], ...] | None:
    """The expression's tokens without comments and spaces; None when some text is not a
    token this knows (an unterminated string)."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            return None
        pos = match.end()
        if match.lastgroup not in ("space", "comment"):
            out.append((match.lastgroup, match.group()))
    return tuple(out)


def project_reads(value, reads: Reads | None):
    """`value` with only what `reads` names (a mapping, and mappings one level down), or as
    it is (reads None, or not a mapping)."""
    if reads is None or not isinstance(value, dict):
        return value
    out = {}
    for key, sub in reads.items():
        if key in value:
            item = value[key]
            out[key] = item if sub is None or not isinstance(item, dict) else {k: item[k] for k in sub if k in item}
    return out
