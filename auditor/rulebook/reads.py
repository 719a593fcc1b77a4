"""Which top-level keys of `object`, `facts` and `mesh` a set of CEL expressions reads.

The CEL runtime converts a variable's whole Python value the first time an expression
touches it: an object's facts are about as many bytes as the object, and converting what
no rule of its kind reads was most of the time spent in CEL. The engine passes each
variable cut to the keys its kind's rules read, which gives the same values (a key no
expression names cannot change a result), and the whole variable wherever an expression
uses it any other way: `facts` on its own, indexed (`facts["x"]`), or as the receiver of
a function (`facts.exists(...)`).

The scan is lexical: string literals and comments are skipped, and a name preceded by a
dot is a field, not the variable (`x.facts`). Anything it cannot read for sure counts as
a use of the whole variable.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

# Strings first (raw and bytes prefixes, triple quotes), then comments, then the tokens
# that matter: a dot, a name, an opening parenthesis.
_TOKEN = re.compile(
    r"""(?P<string>[rRbB]{0,2}(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))"""
    r"|(?P<comment>//[^\n]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[.(\[])"
    r"|(?P<other>[^\s\"'A-Za-z_.(\[]+|\s+)"
)


def top_reads(expressions: Iterable[str], variable: str) -> tuple[str, ...] | None:
    """The keys of `variable` the expressions read, in first-read order; None when one of
    them uses the variable whole (or cannot be read for sure)."""
    keys: dict[str, None] = {}
    for expression in expressions:
        tokens = _tokens(expression)
        if tokens is None:
            return None
        for i, (kind, text) in enumerate(tokens):
            if kind != "name" or text != variable or (i > 0 and tokens[i - 1] == ("punct", ".")):
                continue
            after = tokens[i + 1:i + 4]
            if (len(after) < 2 or after[0] != ("punct", ".") or after[1][0] != "name"
                    or (len(after) > 2 and after[2] == ("punct", "("))):
                return None  # whole, indexed, or a function's receiver
            keys[after[1][1]] = None
    return tuple(keys)


@lru_cache(maxsize=4096)  # a rule's expressions are read once per kind it applies to
def _tokens(expression: str) -> tuple[tuple[str, str], ...] | None:
    """The expression's names and punctuation that matter, without strings, comments and
    spaces; None when some text is not a token this knows (an unterminated string)."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            return None
        pos = match.end()
        kind = match.lastgroup
        if kind == "name" or kind == "punct":
            out.append((kind, match.group()))
        elif kind == "other" and not match.group().isspace():
            out.append(("other", match.group()))
    return tuple(out)


def cut(value, keys: tuple[str, ...] | None):
    """`value` with only `keys` (a mapping), or as it is (keys None, or not a mapping)."""
    if keys is None or not isinstance(value, dict):
        return value
    return {key: value[key] for key in keys if key in value}
