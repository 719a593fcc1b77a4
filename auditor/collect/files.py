"""Load Kubernetes objects from manifest files, directories, stdin and `kubectl get` dumps.

YAML is read by `yaml_docs` (yaml-rs where it reads a document as Kubernetes does, PyYAML
otherwise); every object (and every item of a `kind: List`) keeps the line it starts on.
JSON is parsed with orjson; the lines of list items are found only when a finding needs
one (a scan of a 1 GB dump should not pay for positions it never prints). Running pods are projected and their replicas recognized as
they are read (snapshot.Projector). Many large files are read by forked processes.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from auditor.collect import gc_paused
from auditor.collect.snapshot_file import (
    GZIP_MAGIC,
    from_document,
    is_snapshot,
    open_snapshot,
)
from auditor.collect.excludes import Excluder
from auditor.collect.paths import STDIN, Expansion, gunzip, read_stream, regular_file_size
from auditor.collect.render import (NotRendered, RenderSettings, chart_documents, kustomize_documents, render_chart,
                                    render_kustomization)
from auditor.collect.validate import json_duplicate, metadata_problem
from auditor.collect.yaml_docs import documents, is_list
from auditor.errors import UsageError, json_problem
from auditor.snapshot import K8sObject, Projector, Snapshot
from auditor.workers import auto_jobs, map_shares, split

BOM = b"\xef\xbb\xbf"
# The start of a snapshot's header line (see snapshot_file).
SNAPSHOT_HEAD = b'{"kind":"MeshAuditSnapshot"'
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
    files_read: int = 0  # inputs opened: files, pipes and stdin
    rendered: list = field(default_factory=list)  # [{"path", "by", "objects"}]: charts and kustomizations
    not_rendered: list = field(default_factory=list)  # [{"path", "reason"}]: skipped, their tool missing
    _texts: dict[str, bytes] = field(default_factory=dict)
    _json_lines: dict[str, list[int]] = field(default_factory=dict)
    _project: Projector = field(default_factory=Projector, repr=False)

    def absorb(self, part: "LoadResult") -> None:
        """Append what another load found (a staged document, a forked share's file)."""
        self.objects.extend(part.objects)
        self.warnings.extend(part.warnings)
        self.errors.extend(part.errors)
        self.snapshots.extend(part.snapshots)
        self.files_read += part.files_read
        self.rendered.extend(part.rendered)
        self.not_rendered.extend(part.not_rendered)

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
        return self.item_line(obj.file, obj.index)

    def item_line(self, name: str, index: int | None) -> int | None:
        """Line of item `index` of a JSON document's list (computed once per file)."""
        if index is None:
            return None
        lines = self._json_lines.get(name)
        if lines is None:
            data = self._texts.get(name)
            if data is None:
                try:
                    data = Path(name).read_bytes()
                except OSError:
                    return None
            lines = self._json_lines[name] = json_item_lines(data)
        return lines[index] if index < len(lines) else None


def _where(obj: K8sObject) -> str:
    return f"{obj.file}:{obj.line}" if obj.line else str(obj.file)


# Below this much input (YAML counted six-fold: it parses that much slower than JSON),
# forking a second loader costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def load_paths(paths: list[str], stdin=None, jobs: int | None = None, follow_symlinks: bool = False,
               excluder: Excluder | None = None, render: RenderSettings | None = None) -> LoadResult:
    """Load every object under `paths`. Problems in one file do not stop the others.
    Charts and kustomizations are rendered first. Many large files are split among up
    to `jobs` processes (default: auto_jobs()); the result is the same as one process
    reading them in order. A path that does not exist raises UsageError."""
    result = LoadResult()
    expansion = Expansion(follow_symlinks, excluder)
    for path in paths:
        expansion.add(path)
    expansion.finish()
    result.warnings += expansion.warnings
    result.errors += expansion.errors
    _render(expansion, render or RenderSettings(), result)
    with gc_paused():
        files = expansion.files
        shares = _shares(files, jobs)
        if shares is None:
            for path in files:
                _load_file(path, result, stdin)
            return result
        for part in (p for share in map_shares(_FileShare(files), shares) for p in share):
            result.absorb(part)
    return result


def _render(expansion: Expansion, settings: RenderSettings, result: LoadResult) -> None:
    """Render every chart and kustomization the walk found, and add what they produce."""
    jobs = [(c, "helm", lambda c=c: chart_documents(render_chart(c, settings), c)) for c in expansion.charts]
    jobs += [(k, "kustomize", lambda k=k: kustomize_documents(*_built(k))) for k in expansion.kustomizations]
    for source, tool, produce in jobs:
        before = len(result.objects)
        try:
            for doc, file, line in produce():
                if doc is not None:
                    _add_object(doc, file, line, None, result)
        except NotRendered as reason:
            result.not_rendered.append({"path": source, "by": tool, "reason": str(reason)})
            result.warnings.append(UsageError(f"not audited: {reason}", source))
            continue
        except UsageError as err:
            result.errors.append(err)
        result.rendered.append({"path": source, "by": tool, "objects": len(result.objects) - before})


def _built(directory: str) -> tuple[str, str, str]:
    text, wrapper = render_kustomization(directory)
    return text, directory, wrapper


def _load_file(path: str, result: LoadResult, stdin=None) -> None:
    result.files_read += 1
    try:
        if path == STDIN:
            _load_data(read_stream(stdin or sys.stdin.buffer, STDIN_NAME), STDIN_NAME, result)
        elif regular_file_size(path) is None:  # a pipe named on the command line: -f <(kubectl ...)
            with open(path, "rb") as stream:
                _load_data(read_stream(stream, path), path, result)
        elif not _load_snapshot_stream(path, result):
            data = Path(path).read_bytes()
            if path.endswith(".gz") and data[:2] != GZIP_MAGIC:
                raise UsageError("named .gz, but not a gzip file (cut short, or renamed?)", path)
            _load_data(data, path, result, as_json=path.endswith(".json"), rereadable=True)
    except UsageError as err:
        result.errors.append(err)
    except OSError as err:
        result.errors.append(UsageError(err.strerror or str(err), path))
    except MemoryError:
        result.errors.append(UsageError("ran out of memory reading it", path))


def _load_data(data: bytes, name: str, result: LoadResult, as_json: bool | None = None, rereadable: bool = False) -> None:
    """Bytes already read: gzip is unpacked, a snapshot read as one, anything else as JSON
    (by name, else by its first character) or YAML."""
    if data[:2] == GZIP_MAGIC:
        data, as_json, rereadable = gunzip(data, name), None, False
    if data.startswith(SNAPSHOT_HEAD) and _load_snapshot_stream(name, result, data):
        return
    _load_bytes(data, name, result, as_json=_looks_like_json(data) if as_json is None else as_json, rereadable=rereadable)


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


def _load_snapshot_stream(path: str, result: LoadResult, data: bytes | None = None) -> bool:
    """Read a snapshot written one object per line (from the file, or from `data` when it
    was read already), projecting objects as they arrive so a large cluster never sits in
    memory whole. False when it is not such a snapshot."""
    stream = open_snapshot(path, data)
    if stream is None:
        return False
    collection, items = stream
    result.snapshots.append((path, collection))
    objects = result.objects
    projector = result._project
    for item in items:
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind in ("Pod", "ReplicaSet") and isinstance(item.get("metadata"), dict):
            item, signature = projector(item)
            objects.append(K8sObject(item, signature=signature))
        else:
            _add_object(item, path, None, None, result, from_cluster=True)
    return True


def _looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def _max_yaml_bytes() -> int:
    try:
        return int(float(os.environ.get("MESH_AUDIT_MAX_YAML_MB", MAX_YAML_MB)) * 1024 * 1024)
    except ValueError:
        return MAX_YAML_MB * 1024 * 1024


def _load_bytes(data: bytes, name: str, result: LoadResult, as_json: bool, rereadable: bool = False) -> None:
    """Objects from one input's bytes; `rereadable` when they are the file's own bytes
    (list items' lines are then found later, from the file)."""
    if data.startswith(BOM):  # editors on Windows write one; YAML and JSON are the same without it
        data, rereadable = data[len(BOM):], False
    if b"\x00" in data[:8192]:
        raise UsageError("a binary file, not a manifest (it contains NUL bytes)", name)
    if as_json:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise UsageError(f"invalid JSON: {json_problem(err)}", name, err.lineno) from None
        duplicate = json_duplicate(data)
        if duplicate is not None:
            key, first, second = duplicate
            raise UsageError(f"the key '{key}' appears twice in one object (first at line {first}); only one may stay",
                             name, second)
        if not rereadable:
            result._texts[name] = data  # stdin, a pipe or unpacked gzip cannot be read again for item lines
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
        problem = None if from_cluster else metadata_problem(doc.get("metadata"))
        if problem is not None:  # audited under a wrong name, it would give wrong answers
            where = line if line is not None else result.item_line(name, index)
            result.errors.append(UsageError(f"{doc['kind']}: {problem}", name, where))
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
