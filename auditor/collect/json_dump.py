"""`kubectl get ... -o json` List dumps (and bare JSON arrays), read as a stream of items.

The document is never parsed whole: msgspec splits its `items` into raw byte slices (in
C, without decoding them), then each item is decoded on its own, running pods and
ReplicaSets straight into their projection (collect.decode), and dropped. A 50k-pod dump
then costs its bytes and the projected objects, not the whole tree of Python objects.

Each item's byte offset is kept; a line number is counted only when a report prints one,
for all items at once with one `bytes.count` per item (C), never a Python pass over the
text.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, TypedDict

import msgspec
import orjson
from msgspec import Raw

from auditor.collect.decode import kind_of, project_json
from auditor.workers import map_shares

NEEDLE = 64  # bytes of an item searched for to find where it starts


class _List(TypedDict, total=False):
    kind: Any
    items: list[Raw]


_LIST = msgspec.json.Decoder(_List)
_ARRAY = msgspec.json.Decoder(list[Raw])


def raw_items(data: bytes) -> list[Raw] | None:
    """The items of a List document (a `kind` ending in List, with `items`) or of a top-level
    array, undecoded; None for any other document, or invalid JSON (the general path then
    says what is wrong and where)."""
    head = bytes(data[:4096]).lstrip()[:1]
    try:
        if head == b"[":
            return _ARRAY.decode(data)
        doc = _LIST.decode(data)
    except (msgspec.DecodeError, RecursionError):  # deep nesting: the general path says where
        return None
    kind, items = doc.get("kind"), doc.get("items")
    return items if isinstance(kind, str) and kind.endswith("List") and items is not None else None


def items(data, raws: list[Raw]) -> Iterator[tuple[int, int | None, dict, bool]]:
    """(byte offset, line, object, projected) for each item: projected objects are running
    pods and ReplicaSets already cut to what mesh-audit reads; the others are whole. Lines
    are counted as the items go by (one count of newlines over the text in all). `data`:
    bytes, or a read-only mmap of the file (whose pages the caller may drop behind us)."""
    for (at, line), raw in zip(_with_lines(data, _starts(data, raws)), raws):
        yield (at, line, *_decoded(raw))


def starts(data, raws: list[Raw]) -> list[int]:
    """Where each item starts in `data` (-1 where its first bytes are not found), found as
    items() finds them, without decoding or counting lines."""
    return list(_starts(data, raws))


def _starts(data, raws: list[Raw]) -> Iterator[int]:
    pos = 0
    for raw in raws:
        view = memoryview(raw)
        at = data.find(bytes(view[:NEEDLE]), pos)
        if at >= 0:
            pos = at + len(view)
        yield at


def _with_lines(data, offsets) -> Iterator[tuple[int, int | None]]:
    """(offset, the line it is on) for offsets in increasing order (-1, unknown: line None),
    newlines counted once from one offset to the next."""
    count = data.count if isinstance(data, bytes) else (lambda sub, a, b: data[a:b].count(sub))
    line, counted = 1, 0
    for at in offsets:
        if at < 0:
            yield at, None
            continue
        line += count(b"\n", counted, at)
        counted = at
        yield at, line


def _decoded(raw: Raw) -> tuple[dict, bool]:
    """(object, projected): a running pod or ReplicaSet straight into its projection, else the whole object."""
    view = memoryview(raw)
    kind = kind_of(view)
    out = project_json(view, kind) if kind is not None else None
    return (out, True) if out is not None else (orjson.loads(view), False)


class _Aside:
    """The two halves of items_counting_aside, run by workers.map_shares: "lines" in a
    forked child (a list of ints comes back), "items" here."""

    def __init__(self, data, raws: list[Raw], ats: list[int], forget=None):
        self.data, self.raws, self.ats, self.forget = data, raws, ats, forget

    def __call__(self, what: str) -> list:
        data, ats = self.data, self.ats
        if what == "lines":
            return [line for _, line in _with_lines(data, ats)]
        out = []
        for i, raw in enumerate(self.raws):
            if self.forget is not None and i % 4096 == 0 and ats[i] > 0:
                self.forget(data, ats[i])
            out.append(_decoded(raw))
        return out


def items_counting_aside(data, raws: list[Raw], forget=None) -> list[tuple[int, int | None, dict, bool]]:
    """What items() yields, with the lines counted in a forked process while this one
    decodes the items (a quarter of a large dump's reading is counting newlines)."""
    ats = starts(data, raws)
    decoded, lines = map_shares(_Aside(data, raws, ats, forget), ["items", "lines"])
    return [(at, line, obj, projected) for at, line, (obj, projected) in zip(ats, lines, decoded)]


def lines_at(data: bytes, offsets: list[int]) -> list[int]:
    """The line each offset is on (offsets in increasing order, -1 for unknown: line None)."""
    return [line for _, line in _with_lines(data, offsets)]


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]')


def json_item_lines(data: bytes) -> list[int]:
    """Start line of each element of a JSON document's top-level `items` array (or of a
    top-level array), by a pass over the text: for documents not read as a stream.
    Strings are skipped whole, so braces inside them do not count."""
    lines: list[int] = []
    depth = 0
    items_depth = None
    last_key = None
    pos = 0
    line = 1
    for m in _JSON_TOKEN.finditer(data):
        tok = m.group()
        c = tok[:1]
        if c == b'"':
            if depth == 1:
                last_key = tok
            continue
        if c in (b"{", b"["):
            if depth == 0 and c == b"[":
                items_depth = 1
            elif depth == 1 and c == b"[" and last_key == b'"items"':
                items_depth = 2
            elif items_depth is not None and depth == items_depth:
                line += data.count(b"\n", pos, m.start())
                pos = m.start()
                lines.append(line)
            depth += 1
        else:
            depth -= 1
            if items_depth is not None and depth < items_depth:
                items_depth = None
    return lines
