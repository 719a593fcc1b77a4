"""`kubectl get ... -o json` List dumps (and bare JSON arrays), read as a stream of items.

The document is never parsed whole: msgspec splits its `items` into raw byte slices (in
C, without decoding them), then each item is decoded on its own, running pods and
ReplicaSets straight into their projection (collect.decode), and dropped. A 50k-pod dump
then costs its bytes and the projected objects, not the whole tree of Python objects.

Each item's byte offset is kept, and its line counted with one `bytes.count` from the
item before (C), never a Python pass over the text. A large dump's items are decoded in
contiguous shares by forked processes, each counting the lines of its own stretch.
"""

from __future__ import annotations

import marshal
import re
from typing import Any, Iterator, TypedDict

import msgspec
import orjson
from msgspec import Raw

from auditor.collect.decode import ProjectingReader
from auditor.core.workers import map_shares, split

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


def starts(data, raws: list[Raw]) -> list[int]:
    """Where each item starts in `data` (-1 where its first bytes are not found), without
    decoding it: its first bytes searched from where the item before ended."""
    out, pos = [], 0
    for raw in raws:
        view = memoryview(raw)
        at = data.find(bytes(view[:NEEDLE]), pos)
        if at >= 0:
            pos = at + len(view)
        out.append(at)
    return out


def _with_lines(data, offsets, line: int = 1, counted: int = 0) -> Iterator[tuple[int, int | None]]:
    """(offset, the line it is on) for offsets in increasing order (-1, unknown: line None),
    newlines counted once from one offset to the next; from `line` at offset `counted`."""
    for at in offsets:
        if at < 0:
            yield at, None
            continue
        line += _count(data, counted, at)
        counted = at
        yield at, line


def _count(data, start: int, end: int) -> int:
    """Newlines in data[start:end] (bytes, or an mmap, which counts only through a copy)."""
    return data.count(b"\n", start, end) if isinstance(data, bytes) else data[start:end].count(b"\n")


class _Share:
    """Decodes one contiguous share of the items (workers.map_shares), each signed as
    items_in_shares says, with its line counted from the share's first item (`origins`).
    The first share's results stay here; a child's are packed with marshal, which keeps
    what replicas share shared and is read back far faster than decoding."""

    def __init__(self, data, raws: list[Raw], ats: list[int], ranges: list[range], projector, forget=None):
        self.data, self.raws, self.ats, self.ranges, self.projector, self.forget = data, raws, ats, ranges, projector, forget
        self.origins = [next((at for at in ats[share.start:] if at >= 0), len(data)) for share in ranges]

    def __call__(self, k: int):
        data, ats, share, origin = self.data, self.ats, self.ranges[k], self.origins[k]
        decoded, lines = [], []
        counted, line = origin, 0
        read = ProjectingReader(self.projector)
        for i in share:
            at = ats[i]
            if self.forget is not None and i % 4096 == 0 and at > 0:
                self.forget(data, at)
            if at >= 0:
                line += _count(data, counted, at)
                counted = at
            lines.append(line if at >= 0 else None)
            view = memoryview(self.raws[i])
            item = read(view)  # a running pod or ReplicaSet straight into its projection, else the whole object
            decoded.append((orjson.loads(view), False, None) if item is None else (item.raw, True, item.signature))
        before = _count(data, 0, origin) if k == 0 else 0
        ahead = line + _count(data, counted, self.origins[k + 1]) if k + 1 < len(self.ranges) else 0
        if k == 0:
            return decoded, lines, before, ahead
        return marshal.dumps((decoded, lines)), None, before, ahead


def items_in_shares(data, raws: list[Raw], jobs: int, projector, forget=None
                    ) -> list[tuple[int, int | None, dict, bool, bytes | None]]:
    """(byte offset, line, object, projected, signature) for each item, decoded in `jobs`
    contiguous shares of about equal bytes, one per process, each counting the lines of
    its own stretch of the text. Running pods come signed by `projector` (replicas share
    their parts within a share): what one process reading item after item gives."""
    ats = starts(data, raws)
    ranges = split([len(raw) for raw in raws], jobs)
    out: list = []
    line = 1
    for share, (decoded, lines, before, ahead) in zip(ranges, map_shares(_Share(data, raws, ats, ranges, projector, forget),
                                                                        range(len(ranges)))):
        if lines is None:
            decoded, lines = marshal.loads(decoded)
        line += before
        out.extend((at, None if rel is None else line + rel, *entry)
                   for at, rel, entry in zip(ats[share.start:share.stop], lines, decoded))
        line += ahead
    return out


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
