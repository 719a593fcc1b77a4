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

import marshal
import re
from typing import Any, Iterator, TypedDict

import msgspec
import orjson
from msgspec import Raw

from auditor.collect.decode import kind_of, project_json
from auditor.workers import map_shares, split

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
    pos, line, counted = 0, 1, 0
    count = data.count if isinstance(data, bytes) else (lambda sub, a, b: data[a:b].count(sub))
    for raw in raws:
        view = memoryview(raw)
        at = data.find(bytes(view[:NEEDLE]), pos)
        if at >= 0:
            line += count(b"\n", counted, at)
            counted = pos = at
            pos += len(view)
        kind = kind_of(view)
        out = project_json(view, kind) if kind is not None else None
        where = line if at >= 0 else None
        if out is not None:
            yield at, where, out, True
        else:
            yield at, where, orjson.loads(view), False


def starts(data, raws: list[Raw]) -> list[int]:
    """Where each item starts in `data` (-1 where its first bytes are not found), found as
    items() finds them, without decoding or counting lines."""
    out, pos = [], 0
    for raw in raws:
        view = memoryview(raw)
        at = data.find(bytes(view[:NEEDLE]), pos)
        if at >= 0:
            pos = at + len(view)
        out.append(at)
    return out


class Share:
    """Decodes a share of the items (a range of indices) in a forked process: the items as
    items() gives them, but with lines counted from the share's first found item (line 0),
    and the newlines from there to `end` (the next share's first found item). marshal'd:
    the parent reads it back about twice as fast as JSON. Picklable, for workers.map_shares."""

    def __init__(self, data, raws: list[Raw], ats: list[int], forget=None):
        self.data, self.raws, self.ats, self.forget = data, raws, ats, forget

    def __call__(self, job: tuple[range, int]) -> bytes:
        share, end = job
        data, ats = self.data, self.ats
        count = data.count if isinstance(data, bytes) else (lambda sub, a, b: data[a:b].count(sub))
        found = [ats[i] for i in share if ats[i] >= 0]
        counted = found[0] if found else 0
        line, out = 0, []
        for n, i in enumerate(share):
            at = ats[i]
            if at >= 0:
                line += count(b"\n", counted, at)
                counted = at
            if self.forget is not None and n % 4096 == 0 and at > 0:
                self.forget(self.data, at)
            view = memoryview(self.raws[i])
            kind = kind_of(view)
            obj = project_json(view, kind) if kind is not None else None
            out.append((line if at >= 0 else None, obj if obj is not None else orjson.loads(view), obj is not None))
        tail = count(b"\n", counted, end) if found and end >= counted else 0
        return marshal.dumps((out, tail))


def items_in_shares(data, raws: list[Raw], jobs: int, forget=None) -> Iterator[tuple[int, int | None, dict, bool]]:
    """What items() yields, the items decoded in `jobs` forked shares (contiguous, of about
    equal bytes) and yielded in order: the same offsets, lines and objects."""
    ats = starts(data, raws)
    shares = split([len(memoryview(r)) for r in raws], jobs)
    firsts = [next((ats[i] for i in share if ats[i] >= 0), -1) for share in shares]
    ends = [next((f for f in firsts[k + 1:] if f >= 0), len(data)) for k in range(len(shares))]
    parts = map_shares(Share(data, raws, ats, forget), list(zip(shares, ends)))
    first = next((f for f in firsts if f >= 0), -1)
    line = 1 + (bytes(data[:first]).count(b"\n") if first > 0 else 0)  # as items() counts to the first item
    for share, part in zip(shares, parts):
        decoded, tail = marshal.loads(part)
        for i, (relative, obj, projected) in zip(share, decoded):
            yield ats[i], (line + relative if relative is not None else None), obj, projected
        found = [relative for relative, _, _ in decoded if relative is not None]
        if found:
            line += found[-1] + tail


def lines_at(data: bytes, offsets: list[int]) -> list[int]:
    """The line each offset is on (offsets in increasing order, -1 for unknown: line None)."""
    lines, line, pos = [], 1, 0
    for at in offsets:
        if at < 0:
            lines.append(None)
            continue
        line += data.count(b"\n", pos, at)
        pos = at
        lines.append(line)
    return lines


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
