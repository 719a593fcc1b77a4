"""A JSON List dump read item by item (`load_json_items`), and a large one through a
read-only mapping of the file whose pages are dropped behind the reader
(`load_mapped_dump`): memory holds the objects, not the whole document."""

from __future__ import annotations

import mmap
import os

import orjson

from auditor.collect.jsonlist import items as json_items
from auditor.collect.loaded import LoadResult, add_object
from auditor.collect.snapshot.file import GZIP_MAGIC, HEAD
from auditor.collect.validate import json_duplicate
from auditor.core.errors import UsageError
from auditor.model.snapshot import K8sObject

BOM = b"\xef\xbb\xbf"
MAPPED_MIN_BYTES = 64 * 1024 * 1024  # JSON dumps this large are read through a mapping
# Below this much JSON, decoding a List's items in a second process costs more than it saves.
PARALLEL_JSON_MIN_BYTES = 64 * 1024 * 1024


def load_mapped_dump(path: str, result: LoadResult, jobs: int = 1) -> bool:
    """A large `.json` List dump read through a read-only mapping of the file, whose pages
    are dropped behind the reader: memory holds the objects, not the file. False when the
    file is small or not such a dump (the general path reads it)."""
    if not path.endswith(".json") or os.path.getsize(path) < MAPPED_MIN_BYTES:
        return False
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        head = mapped[:8192]
        if head.startswith((BOM, GZIP_MAGIC, HEAD)) or b"\x00" in head:
            return False
        raws = json_items.raw_items(mapped)
        if raws is None:
            return False
        _forget(mapped, len(mapped))  # the split touched every page; the items are read again as they go
        mark = result.mark()
        try:
            load_json_items(mapped, raws, path, result, rereadable=True, jobs=jobs)
        except orjson.JSONDecodeError:
            result.rollback(mark)
            return False
        del raws
    finally:
        try:
            mapped.close()
        except BufferError:  # a view into it is still alive (an error on the way): freed with it
            pass
    return True


def _forget(mapped: mmap.mmap, end: int) -> None:
    """Drop the mapping's pages before `end` from memory (they are the file's: read back if needed)."""
    end -= end % mmap.PAGESIZE
    if end > 0 and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_DONTNEED, 0, end)


def load_json_items(data, raws: list, name: str, result: LoadResult, rereadable: bool, jobs: int = 1) -> None:
    """A JSON List dump (or array), item by item: never the whole document at once."""
    if isinstance(data, bytes):
        refuse_duplicates(data, name)
    if not rereadable:
        result.texts[name] = data  # stdin, a pipe or unpacked gzip cannot be read again for item lines
    offsets: list[int] = []
    lines: list[int | None] = []
    result.json_lines[name] = lines  # filled as the items go by
    jobs = jobs if len(data) >= PARALLEL_JSON_MIN_BYTES else 1
    decoded = json_items.items_in_shares(data, raws, jobs, result.projector, _forget if isinstance(data, mmap.mmap) else None)
    for i, (at, line, obj, projected, signature) in enumerate(decoded):
        offsets.append(at)
        lines.append(line)
        if projected:  # its metadata was checked as it was decoded (collect.decode)
            result.objects.append(K8sObject(obj, name, None, i, signature))
        else:
            add_object(obj, name, None, i, result)
    result.json_offsets[name] = offsets


def refuse_duplicates(data: bytes, name: str) -> None:
    duplicate = json_duplicate(data)
    if duplicate is not None:
        key, first, second = duplicate
        raise UsageError(f"the key '{key}' appears twice in one object (first at line {first}); only one may stay",
                         name, second)
