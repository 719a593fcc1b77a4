"""Load Kubernetes objects from manifest files, directories, stdin and `kubectl get` dumps.

Each input format has its room: YAML by `yamldocs` (yaml-rs where it reads a document as Kubernetes does, PyYAML
otherwise); every object (and every item of a `kind: List`) keeps the line it starts on.
JSON is parsed with orjson. `kubectl get` List dumps, JSON or YAML, are read an item at a
time (`jsonlist`, `yamldocs.lists`), snapshots by `snapshot.read`, and running pods straight into their projection (collect.decode);
replicas are recognized as they are read (snapshot.Projector). Many large files are read
by forked processes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson

from auditor.collect import gc_paused
from auditor.collect.snapshot.file import GZIP_MAGIC, HEAD, from_document, is_snapshot
from auditor.collect.jsonlist import items as json_items
from auditor.collect.jsonlist.mapped import BOM, load_json_items, load_mapped_dump, refuse_duplicates
from auditor.collect.excludes import Excluder
from auditor.collect.loaded import LoadResult, add_object
from auditor.collect.snapshot.read import load_snapshot_stream
from auditor.collect.paths import STDIN, Expansion, gunzip, read_stream, regular_file_size
from auditor.collect.status import Reading
from auditor.collect.render import (NotRendered, RenderSettings, chart_documents, kustomize_documents, render_chart,
                                    render_kustomization)
from auditor.collect.yamldocs.documents import documents, is_list, list_items
from auditor.collect.yamldocs.lists import load_yaml_items
from auditor.core.errors import UsageError, json_line, json_problem
from auditor.core.workers import auto_jobs, map_shares, split

STDIN_NAME = "<stdin>"
# PyYAML parses a few MB/s: past this size a YAML input is refused with a pointer to JSON,
# which is parsed two orders of magnitude faster (override with MESH_AUDIT_MAX_YAML_MB).
MAX_YAML_MB = 64


# Below this much input (YAML counted six-fold: it parses that much slower than JSON),
# forking a second loader costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def load_paths(paths: list[str], stdin=None, jobs: int | None = None, follow_symlinks: bool = False,
               excluder: Excluder | None = None, render: RenderSettings | None = None,
               progress: Reading | None = None) -> LoadResult:
    """Load every object under `paths`. Problems in one file do not stop the others.
    Charts and kustomizations are rendered first. Many large files are split among up
    to `jobs` processes (default: auto_jobs()); the result is the same as one process
    reading them in order. A path that does not exist raises UsageError. `progress`
    shows what is being read (Reading)."""
    result = LoadResult()
    expansion = Expansion(follow_symlinks, excluder)
    for path in paths:
        expansion.add(path)
    expansion.finish()
    result.note(expansion.warnings, expansion.errors)
    _render(expansion, render or RenderSettings(), result)
    progress = progress or Reading(enabled=False)
    with gc_paused():
        files = expansion.files
        progress.start([f for f in files if f != STDIN])
        shares = _shares(files, jobs)
        if shares is None:
            for path in files:
                progress.file(path)
                _load_file(path, result, stdin, jobs or auto_jobs())
            progress.clear()
            return result
        progress.file(files[0])  # the shares are read in other processes: one line for them all
        for part in (p for share in map_shares(_FileShare(files), shares) for p in share):
            result.absorb(part)
        progress.clear()
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
                    add_object(doc, file, line, None, result)
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


def _load_file(path: str, result: LoadResult, stdin=None, jobs: int = 1) -> None:
    """One input into `result`; a large snapshot or JSON dump in up to `jobs` processes."""
    result.opened()
    try:
        if path == STDIN:
            _load_data([read_stream(stdin or sys.stdin.buffer, STDIN_NAME)], STDIN_NAME, result, jobs=jobs)
        elif regular_file_size(path) is None:  # a pipe named on the command line: -f <(kubectl ...)
            with open(path, "rb") as stream:
                _load_data([read_stream(stream, path)], path, result, jobs=jobs)
        elif not load_snapshot_stream(path, result, jobs=jobs) and not load_mapped_dump(path, result, jobs):
            box = [Path(path).read_bytes()]
            if path.endswith(".gz") and box[0][:2] != GZIP_MAGIC:
                raise UsageError("named .gz, but not a gzip file (cut short, or renamed?)", path)
            _load_data(box, path, result, as_json=path.endswith(".json"), rereadable=True, jobs=jobs)
    except UsageError as err:
        result.errors.append(err)
    except OSError as err:
        result.errors.append(UsageError(err.strerror or str(err), path))
    except MemoryError:
        result.errors.append(UsageError("ran out of memory reading it", path))


def _load_data(box: list[bytes], name: str, result: LoadResult, as_json: bool | None = None,
               rereadable: bool = False, jobs: int = 1) -> None:
    """Bytes already read (`box`, a one-item list: whoever reads them last may drop them):
    gzip is unpacked, a snapshot read as one, anything else as JSON (by name, else by its
    first character) or YAML; a large dump in up to `jobs` processes."""
    if box[0][:2] == GZIP_MAGIC:
        box[0], as_json, rereadable = gunzip(box[0], name), None, False
    if box[0].startswith(HEAD) and load_snapshot_stream(name, result, box[0]):
        return
    as_json = _looks_like_json(box[0]) if as_json is None else as_json
    _load_bytes(box, name, result, as_json=as_json, rereadable=rereadable, jobs=jobs)


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
            parts.append(part.without_projector())
        return parts


def _looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def _max_yaml_bytes() -> int:
    try:
        return int(float(os.environ.get("MESH_AUDIT_MAX_YAML_MB", MAX_YAML_MB)) * 1024 * 1024)
    except ValueError:
        return MAX_YAML_MB * 1024 * 1024


def _load_bytes(box: list[bytes] | bytes, name: str, result: LoadResult, as_json: bool, rereadable: bool = False,
                jobs: int = 1) -> None:
    """Objects from one input's bytes (taken out of `box`, so a YAML input's bytes are freed
    once decoded to text); `rereadable` when they are the file's own bytes (list items'
    lines are then found later, from the file)."""
    data = box.pop() if isinstance(box, list) else box
    if data.startswith(BOM):  # editors on Windows write one; YAML and JSON are the same without it
        data, rereadable = data[len(BOM):], False
    if b"\x00" in data[:8192]:
        raise UsageError("a binary file, not a manifest (it contains NUL bytes)", name)
    if as_json:
        raws = json_items.raw_items(data)
        if raws is not None:
            mark = result.mark()
            try:
                load_json_items(data, raws, name, result, rereadable, jobs)
                return
            except orjson.JSONDecodeError:  # an item msgspec let through: the whole-document path says what is wrong
                result.rollback(mark)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise UsageError(f"invalid JSON: {json_problem(err)}", name, json_line(data, err)) from None
        refuse_duplicates(data, name)
        if not rereadable:
            result.texts[name] = data  # stdin, a pipe or unpacked gzip cannot be read again for item lines
        _add_document(doc, name, 1, [], result, json_items=True)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UsageError(f"not valid UTF-8 (byte {err.start})", name, line) from None
    del data  # the text is the YAML from here on
    listed = list_items(text)
    if listed is not None and load_yaml_items(listed, name, result, jobs):
        return  # a kubectl -o yaml List, item by item: fast at any size
    if len(text) > _max_yaml_bytes():
        raise UsageError(
            f"{len(text) / 1048576:.0f} MiB of YAML is over the {_max_yaml_bytes() / 1048576:.0f} MiB limit; "
            "export it as JSON (kubectl get -o json), which is read much faster, or raise MESH_AUDIT_MAX_YAML_MB",
            name,
        )
    for doc, line, item_lines in documents(text, name):
        _add_document(doc, name, line, item_lines, result, json_items=False)


def _add_document(doc, name: str, line: int, item_lines: list[int], result: LoadResult, json_items: bool) -> None:
    if doc is None:
        return  # empty document, e.g. a trailing `---`
    if isinstance(doc, list):  # a bare JSON array of objects
        for i, item in enumerate(doc):
            add_object(item, name, None if json_items else line, i if json_items else None, result)
        return
    if is_snapshot(doc):
        # A snapshot's objects came from a cluster, not from lines of this file.
        collection = from_document(doc, name)
        result.snapshots.append((name, collection))
        for item in collection.objects:
            add_object(item, name, None, None, result, from_cluster=True)
        return
    if isinstance(doc, dict) and is_list(doc):
        for i, item in enumerate(doc["items"]):
            if json_items:
                add_object(item, name, None, i, result)
            else:
                add_object(item, name, item_lines[i] if i < len(item_lines) else line, None, result)
        return
    add_object(doc, name, line if not json_items else 1, None, result)
