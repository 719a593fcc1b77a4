"""A large snapshot file read by several processes at once.

The object lines after the header are cut into contiguous byte ranges at line breaks;
this process reads the first range and forked children the others (workers.map_shares).
A child decodes its lines exactly as one process would (running pods and ReplicaSets
straight into their projection, replicas recognized and sharing their parts) and sends
back each object's raw dict and signature with marshal, which keeps shared parts shared
and costs a fraction of decoding. Objects keep file order, so the snapshot is the one a
single reader builds.

This is only the path for a whole, well-formed file. Whatever is not (a line that does
not parse, a blank line, an end marker that is not the last line or does not count what
was read, a line that is not an object), the share says so and the file is read again
by the single reader, which reports it at its line.
"""

from __future__ import annotations

import marshal
import os

import orjson

from auditor.collect.decode import ProjectingReader
from auditor.collect.loaded import LoadResult
from auditor.collect.paths import max_file_bytes
from auditor.collect.snapshot.file import END, GZIP_MAGIC, HEAD, from_document
from auditor.core.errors import UsageError
from auditor.model.snapshot import K8sObject
from auditor.core.workers import fork_safe, map_shares

# Below this size, a second reader costs more than it saves.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024


def load_in_shares(path: str, result: LoadResult, jobs: int, add) -> bool:
    """Read the snapshot at `path` into `result` in `jobs` processes; False (with nothing
    added) when it is small, compressed, not a version-3 snapshot, or not whole and
    well-formed: the caller then reads it alone. `add(item, path, result)` adds one line's
    object (a dict, or a Projected one) to a LoadResult, as the single reader does."""
    if jobs < 2 or not fork_safe():
        return False
    try:
        size = os.path.getsize(path)
        if size < PARALLEL_MIN_BYTES or size > max_file_bytes():
            return False
        with open(path, "rb") as fh:
            head = fh.readline()
            body = fh.tell()
            if head[:2] == GZIP_MAGIC or not head.startswith(HEAD):
                return False
            cuts = _cuts(fh, body, size, jobs)
        header = orjson.loads(head)
        collection = from_document({**header, "objects": []}, path)
    except (OSError, orjson.JSONDecodeError, UsageError):
        return False
    expected = header.get("objects")
    if header.get("schema_version") != 3 or not isinstance(expected, int):
        return False
    ranges = list(zip(cuts, cuts[1:]))
    mark = result.mark()
    shares = map_shares(_Share(path, ranges, result, add), range(len(ranges)))
    if any(share is None for share in shares) or not _whole(shares, expected):
        result.rollback(mark)  # the single reader's turn
        return False
    for _, _, packed in shares[1:]:
        result.objects.extend(K8sObject(raw, signature=signature) for raw, signature in marshal.loads(packed))
    result.snapshots.append((path, collection))
    return True


def _cuts(fh, body: int, size: int, jobs: int) -> list[int]:
    """Offsets where each share starts (each just after a line break), and the end."""
    cuts = [body]
    for i in range(1, jobs):
        fh.seek(max(body + (size - body) * i // jobs - 1, cuts[-1]))
        fh.readline()  # to the end of the line the cut falls in
        cuts.append(min(fh.tell(), size))
    return cuts + [size]


def _whole(shares: list, expected: int) -> bool:
    """Every line read, the end marker last, counting what was read and what the header says."""
    *others, (count, ended, _) = shares
    read = sum(share[0] for share in shares)
    return not any(share[1] is not None for share in others) and ended == read == expected


class _Share:
    """Reads one byte range of the object lines: (objects read, the end marker's count if
    this range ends with it, what a child sends back), or None for anything irregular.
    The first share adds its objects to the result directly."""

    def __init__(self, path: str, ranges: list[tuple[int, int]], result: LoadResult, add):
        self.path, self.ranges, self.result, self.add = path, ranges, result, add

    def __call__(self, i: int):
        start, end = self.ranges[i]
        part = self.result if i == 0 else LoadResult()
        before, problems = len(part.objects), len(part.warnings) + len(part.errors)
        count, ended = 0, None
        read_line = ProjectingReader(part.projector)
        with open(self.path, "rb") as fh:
            fh.seek(start)
            at = start
            for line in fh:
                at += len(line)
                if at > end or ended is not None or not line.endswith(b"\n"):
                    return None  # past the range (a file that grew), after the end marker, or cut short
                item = read_line(line)
                if item is None:
                    try:
                        item = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        return None
                    if not isinstance(item, dict):
                        return None
                    if item.get("kind") == END:
                        ended = item.get("objects")
                        continue
                self.add(item, self.path, part)
                count += 1
                if at == end:
                    break
        if len(part.warnings) + len(part.errors) != problems or len(part.objects) - before != count:
            return None
        if i == 0:
            return count, ended, None
        return count, ended, marshal.dumps([(obj.raw, obj.signature) for obj in part.objects])
