"""What Kubernetes would refuse in a manifest before mesh-audit reads it wrongly.

kubectl rejects metadata whose name, namespace, labels or annotations are not strings
(YAML 1.1 reads `off`, `yes` and `1.10` as a boolean, a boolean and a number), and YAML
or JSON that names a key twice. Auditing such an object would audit it under another
name (`off` becomes "", an unknown namespace "default") and give confident wrong
answers, so it is an input error instead, at its file and line.
"""

from __future__ import annotations

import json
import re

from auditor.collect.shapes import describe as _describe

STRING_FIELDS = ("name", "namespace", "generateName")
MAP_FIELDS = ("labels", "annotations")
# JSON this small is checked for duplicate keys (hand-written); kubectl output never has any.
JSON_DUPLICATES_MAX_BYTES = 1024 * 1024


def metadata_problem(meta) -> str | None:
    """Why Kubernetes would reject this `metadata`, or None."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        return f"metadata is {_describe(meta)}, not a mapping"
    for key in STRING_FIELDS:
        value = meta.get(key)
        if value is not None and type(value) is not str:
            return f"metadata.{key} is {_describe(value)}, not a string{_hint(value)}"
    for key in MAP_FIELDS:
        mapping = meta.get(key)
        if mapping is None:
            continue
        if not isinstance(mapping, dict):
            return f"metadata.{key} is {_describe(mapping)}, not a mapping of strings"
        for k, v in mapping.items():
            if type(k) is not str:
                return f"metadata.{key} has the key {_describe(k)}, not a string{_hint(k)}"
            if type(v) is not str:
                return f"metadata.{key}.{k} is {_describe(v)}, not a string{_hint(v)}"
    return None


def _hint(value) -> str:
    if isinstance(value, (bool, int, float)):
        return "; kubectl rejects it: quote the value"
    return ""


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen.add(key)
    return dict(pairs)


def json_duplicate(data: bytes) -> tuple[str, int, int] | None:
    """(key, first line, second line) of the first key named twice in one JSON object of a
    small document; None when there is none (or the document is too big to check)."""
    if len(data) > JSON_DUPLICATES_MAX_BYTES:
        return None
    try:
        json.loads(data, object_pairs_hook=_no_duplicates)
    except _Duplicate as dup:
        return _lines_of_duplicate(data, dup.args[0])
    except ValueError:
        return None
    return None


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:|"(?:[^"\\]|\\.)*"|[{}\[\]]')


def _lines_of_duplicate(data: bytes, key: str) -> tuple[str, int, int]:
    """Where a known duplicate key is: each object's keys are tracked on a stack."""
    stack: list[dict | None] = []
    for m in _TOKEN.finditer(data):
        token = m.group()
        if token in (b"{", b"["):
            stack.append({} if token == b"{" else None)
        elif token in (b"}", b"]"):
            stack.pop()
        elif token.endswith(b":") and stack and stack[-1] is not None:
            name = json.loads(token[:-1].rstrip())
            line = data.count(b"\n", 0, m.start()) + 1
            if name == key and name in stack[-1]:
                return key, stack[-1][name], line
            stack[-1][name] = line
    return key, 1, 1
