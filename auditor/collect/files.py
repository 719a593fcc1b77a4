"""Load Kubernetes objects from manifest files, directories, stdin and `kubectl get` dumps.

YAML is read by `yaml_docs` (yaml-rs where it reads a document as Kubernetes does, PyYAML
otherwise); every object (and every item of a `kind: List`) keeps the line it starts on. JSON is parsed with orjson; the lines of list
items are found only when a finding needs one (a scan of a 1 GB dump should not pay for
positions it never prints). Running pods are projected and their replicas recognized as
they are read (snapshot.Projector). Many large files are read by forked processes.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import orjson

from auditor.collect import gc_paused
from auditor.collect.snapshot_file import (
    GZIP_MAGIC,
    from_document,
    is_snapshot,
    open_snapshot,
)
from auditor.collect.yaml_docs import documents, is_list
from auditor.errors import UsageError
from auditor.snapshot import K8sObject, Projector, Snapshot
from auditor.workers import auto_jobs, map_shares, split

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
STDIN_NAME = "<stdin>"
# PyYAML parses a few MB/s: past this size a YAML input is refused with a pointer to JSON,
# which is parsed two orders of magnitude faster (override with MESH_AUDIT_MAX_YAML_MB).
MAX_YAML_MB = 64


@dataclass
class LoadResult:
    objects: list[K8sObject] = field(default_factory=list)
    warnings: list[UsageError] = field(default_factory=list)
    errors: list[UsageError] = field(default_factory=list)
    # Snapshot files met among the inputs: (path, Collection) with what they did not collect.
    snapshots: list = field(default_factory=list)
    _texts: dict[str, bytes] = field(default_factory=dict)
    _json_lines: dict[str, list[int]] = field(default_factory=dict)
    _project: Projector = field(default_factory=Projector, repr=False)

    def absorb(self, part: "LoadResult") -> None:
        """Append what another load found (a staged document, a forked share's file)."""
        self.objects.extend(part.objects)
        self.warnings.extend(part.warnings)
        self.errors.extend(part.errors)
        self.snapshots.extend(part.snapshots)

    def snapshot(self) -> Snapshot:
        snap = Snapshot(self.objects, line_resolver=self.resolve_line)
        for previous, later in snap.duplicates:
            self.warnings.append(
                UsageError(
                    f"{later.ref()} is also defined at {_where(previous)}; using this one",
                    later.file,
                    later.line,
                )
            )
        return snap

    def resolve_line(self, obj: K8sObject) -> int | None:
        """Line of a JSON list item, computed on first use per file."""
        if obj.index is None or obj.file is None:
            return obj.line
        lines = self._json_lines.get(obj.file)
        if lines is None:
            data = self._texts.get(obj.file)
            if data is None:
                try:
                    data = Path(obj.file).read_bytes()
                except OSError:
                    return None
            lines = self._json_lines[obj.file] = json_item_lines(data)
        return lines[obj.index] if obj.index < len(lines) else None


def _where(obj: K8sObject) -> str:
    return f"{obj.file}:{obj.line}" if obj.line else str(obj.file)


def iter_paths(paths: list[str]) -> Iterator[str]:
    """Expand directories (recursively, sorted, following no symlinked directories twice)."""
    for path in paths:
        if path == STDIN:
            yield STDIN
            continue
        p = Path(path)
        if p.is_dir():
            seen: set[tuple[int, int]] = set()
            for root, dirs, files in os.walk(p, followlinks=True):
                st = os.stat(root)
                if (st.st_dev, st.st_ino) in seen:
                    dirs[:] = []
                    continue
                seen.add((st.st_dev, st.st_ino))
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(SUFFIXES):
                        yield os.path.join(root, name)
        elif p.exists():
            yield path
        else:
            raise UsageError("no such file or directory", path)


# Below this much input (YAML counted six-fold: it parses that much slower than JSON),
# forking a second loader costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def load_paths(paths: list[str], stdin=None, jobs: int | None = None) -> LoadResult:
    """Load every object under `paths`. Problems in one file do not stop the others.
    Many large files are split among up to `jobs` processes (default: auto_jobs());
    the result is the same as one process reading them in order."""
    result = LoadResult()
    with gc_paused():
        files = list(iter_paths(paths))
        shares = _shares(files, jobs)
        if shares is None:
            for path in files:
                _load_file(path, result, stdin)
            return result
        for part in (p for share in map_shares(_FileShare(files), shares) for p in share):
            result.absorb(part)
    return result


def _load_file(path: str, result: LoadResult, stdin=None) -> None:
    try:
        if path == STDIN:
            data = (stdin or sys.stdin.buffer).read()
            _load_bytes(data, STDIN_NAME, result, as_json=_looks_like_json(data))
        elif _load_snapshot_stream(path, result):
            pass
        else:
            data = Path(path).read_bytes()
            if data[:2] == GZIP_MAGIC:
                data = _gunzip(data, path)
                _load_bytes(data, path, result, as_json=_looks_like_json(data))
            else:
                _load_bytes(data, path, result, as_json=path.endswith(".json"))
    except UsageError as err:
        result.errors.append(err)
    except OSError as err:
        result.errors.append(UsageError(err.strerror or str(err), path))


def _shares(files: list[str], jobs: int | None) -> list[range] | None:
    """Contiguous shares of the files, of about equal parsing cost; None to read them here."""
    jobs = min(jobs or auto_jobs(), len(files))
    if jobs < 2 or STDIN in files:
        return None
    weights = []
    for path in files:
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        weights.append(size if path.endswith(".json") else 6 * size)
    if sum(weights) < 6 * PARALLEL_MIN_BYTES:
        return None
    return split(weights, jobs)


class _FileShare:
    """Loads a share of the files, one LoadResult each (picklable, for a forked loader)."""

    def __init__(self, files: list[str]):
        self.files = files

    def __call__(self, share: range) -> list[LoadResult]:
        parts = []
        for i in share:
            part = LoadResult()
            _load_file(self.files[i], part)
            part._project = None  # the replica table stays behind; the objects keep what they share
            parts.append(part)
        return parts


def _load_snapshot_stream(path: str, result: LoadResult) -> bool:
    """Read a snapshot written one object per line, projecting objects as they arrive so a
    large cluster never sits in memory whole. False when `path` is not such a snapshot."""
    try:
        stream = open_snapshot(path)
    except UsageError:
        raise
    if stream is None:
        return False
    collection, lines = stream
    result.snapshots.append((path, collection))
    loads = orjson.loads
    objects = result.objects
    projector = result._project
    with lines:
        for number, line in enumerate(lines, start=2):
            try:
                item = loads(line)
            except orjson.JSONDecodeError as err:
                if not line.strip():  # a blank line (a trailing newline, say)
                    continue
                raise UsageError(f"invalid JSON: {err.msg}", path, number) from None
            kind = item.get("kind") if isinstance(item, dict) else None
            if kind in ("Pod", "ReplicaSet") and isinstance(item.get("metadata"), dict):
                item, signature = projector(item)
                objects.append(K8sObject(item, signature=signature))
            else:
                _add_object(item, path, None, None, result, from_cluster=True)
    return True


def _gunzip(data: bytes, path: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise UsageError(f"not a readable gzip file ({err})", path) from None


def _looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def _max_yaml_bytes() -> int:
    try:
        return int(float(os.environ.get("MESH_AUDIT_MAX_YAML_MB", MAX_YAML_MB)) * 1024 * 1024)
    except ValueError:
        return MAX_YAML_MB * 1024 * 1024


def _load_bytes(data: bytes, name: str, result: LoadResult, as_json: bool) -> None:
    if b"\x00" in data[:8192]:
        raise UsageError("a binary file, not a manifest (it contains NUL bytes)", name)
    if as_json:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise UsageError(f"invalid JSON: {err.msg}", name, err.lineno) from None
        if name == STDIN_NAME:
            result._texts[name] = data  # stdin cannot be read again for item lines
        _add_document(doc, name, 1, [], result, json_items=True)
        return
    if len(data) > _max_yaml_bytes():
        raise UsageError(
            f"{len(data) / 1048576:.0f} MiB of YAML is over the {_max_yaml_bytes() / 1048576:.0f} MiB limit; "
            "export it as JSON (kubectl get -o json), which is read much faster, or raise MESH_AUDIT_MAX_YAML_MB",
            name,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UsageError(f"not valid UTF-8 (byte {err.start})", name, line) from None
    for doc, line, item_lines in documents(text, name):
        _add_document(doc, name, line, item_lines, result, json_items=False)


def _add_document(doc, name: str, line: int, item_lines: list[int], result: LoadResult, json_items: bool) -> None:
    if doc is None:
        return  # empty document, e.g. a trailing `---`
    if isinstance(doc, list):  # a bare JSON array of objects
        for i, item in enumerate(doc):
            _add_object(item, name, None if json_items else line, i if json_items else None, result)
        return
    if is_snapshot(doc):
        # A snapshot's objects came from a cluster, not from lines of this file.
        collection = from_document(doc, name)
        result.snapshots.append((name, collection))
        for item in collection.objects:
            _add_object(item, name, None, None, result, from_cluster=True)
        return
    if isinstance(doc, dict) and is_list(doc):
        for i, item in enumerate(doc["items"]):
            if json_items:
                _add_object(item, name, None, i, result)
            else:
                _add_object(item, name, item_lines[i] if i < len(item_lines) else line, None, result)
        return
    _add_object(doc, name, line if not json_items else 1, None, result)


def _add_object(doc, name: str, line: int | None, index: int | None, result: LoadResult, from_cluster: bool = False) -> None:
    if isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str) and doc["kind"]:
        metadata = doc.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            result.warnings.append(UsageError("skipped: metadata is not a mapping", name, line))
            return
        signature = None
        if doc["kind"] in ("Pod", "ReplicaSet"):
            doc, signature = result._project(doc)
        result.objects.append(K8sObject(doc, None if from_cluster else name, line, index, signature))
    else:
        result.warnings.append(UsageError("skipped: not a Kubernetes object (needs apiVersion and kind)", name, line))


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]')


def json_item_lines(data: bytes) -> list[int]:
    """Start line of each element of a JSON document's top-level `items` array (or of a
    top-level array). Strings are skipped whole, so braces inside them do not count."""
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
