"""Load Kubernetes objects from manifest files, directories, stdin and `kubectl get` dumps.

YAML goes through yaml-rs where it reads a document as Kubernetes does, and PyYAML's C
parser otherwise (see "the fast path" below); every object (and every item of a
`kind: List`) keeps the line it starts on. JSON is parsed with orjson; the lines of list
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
import yaml

from auditor.collect import gc_paused
from auditor.collect.snapshot_file import GZIP_MAGIC, from_document, is_snapshot, open_snapshot
from auditor.errors import UsageError
from auditor.snapshot import K8sObject, Projector, Snapshot
from auditor.workers import auto_jobs, map_shares, split

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
STDIN_NAME = "<stdin>"
# YAML aliases let a few lines describe a document of billions of nodes ("billion laughs");
# anything that expands beyond this many nodes is refused before it is built.
MAX_YAML_NODES = 2_000_000
# PyYAML parses a few MB/s: past this size a YAML input is refused with a pointer to JSON,
# which is parsed two orders of magnitude faster (override with MESH_AUDIT_MAX_YAML_MB).
MAX_YAML_MB = 64


class _ManifestLoader(_BaseLoader):
    """Safe loader that leaves timestamps as strings, as Kubernetes' own YAML→JSON step does."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


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


class RecursiveAlias(Exception):
    pass


def expanded_size(node, limit: int) -> int:
    """Nodes a YAML node graph has once aliases are expanded (shared nodes counted each
    time they are used), computed without expanding; stops counting past `limit`.
    Raises RecursiveAlias for a node that contains itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if isinstance(current, yaml.ScalarNode):
            sizes[key] = 1
            continue
        children = [c for pair in current.value for c in pair] if isinstance(current, yaml.MappingNode) else current.value
        if children_done:
            open_nodes.discard(key)
            sizes[key] = min(1 + sum(sizes[id(c)] for c in children), limit + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise RecursiveAlias()
        open_nodes.add(key)
        stack.append((current, True))
        for child in children:
            if id(child) in open_nodes:
                raise RecursiveAlias()
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(node)]


def check_aliases(node, name: str) -> None:
    """Refuse a composed YAML document whose aliases recurse or expand past MAX_YAML_NODES."""
    if node is None:
        return
    try:
        too_big = expanded_size(node, MAX_YAML_NODES) > MAX_YAML_NODES
    except RecursiveAlias:
        raise UsageError("the document contains itself through an alias", name, node.start_mark.line + 1) from None
    if too_big:
        raise UsageError(
            f"the document's aliases expand to more than {MAX_YAML_NODES:,} nodes (a YAML alias bomb?)",
            name, node.start_mark.line + 1,
        )


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
    if _yaml_rs is None or not _fast_path_possible(text):
        _load_yaml_slow(text, name, result)
        return
    spans = _document_spans(text)
    if not _needs_complete_path(text) and _load_yaml_whole(text, spans, name, result):
        return
    for begin, finish, first_line in spans:
        _load_yaml_chunk(text[begin:finish], first_line, name, result)


def _load_yaml_whole(text: str, spans: list, name: str, result: LoadResult) -> bool:
    """The common case, a file of plain manifests: yaml-rs reads it in one call. False
    (nothing added) when the documents do not line up with the `---` chunks one to one."""
    try:
        docs = _fast_loads(text)
    except Exception:
        return False
    if len(spans) == 1:
        docs = [docs]
    if not isinstance(docs, list) or len(docs) != len(spans):
        return False
    staged = LoadResult(_project=result._project)
    for doc, (begin, finish, first_line) in zip(docs, spans):
        item_lines = _placed_items(doc, text[begin:finish], first_line)
        if item_lines is None:
            return False
        _add_document(doc, name, _first_content_line(text, first_line, begin, finish), item_lines, staged, json_items=False)
    result.absorb(staged)
    return True


def _load_yaml_slow(text: str, name: str, result: LoadResult, offset: int = 0) -> None:
    """PyYAML's C parser through its node API: YAML 1.1 scalars, exact error positions,
    and the line of every node. `offset` is the line the text starts on, minus one."""
    loader = _ManifestLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                check_aliases(node, name)
                doc = loader.construct_document(node)
            except UsageError as err:
                raise UsageError(err.message, err.file, err.line + offset if err.line else None) from None
            except yaml.MarkedYAMLError as err:
                mark = err.problem_mark or err.context_mark
                line = mark.line + 1 + offset if mark else None
                problem = err.problem or err.context or "malformed YAML"
                raise UsageError(f"invalid YAML: {problem}", name, line) from None
            except yaml.YAMLError as err:
                raise UsageError(f"invalid YAML: {err}", name) from None
            except RecursionError:
                raise UsageError("invalid YAML: document nested too deeply", name) from None
            item_lines = [n + offset for n in _yaml_item_lines(node)]
            _add_document(doc, name, node.start_mark.line + 1 + offset, item_lines, result, json_items=False)
    finally:
        loader.dispose()


# -- the fast path ------------------------------------------------------------------------
#
# yaml-rs (Rust) parses manifests about ten times faster than PyYAML's C parser, but reads
# YAML 1.2, where `yes`, `on` and `0755` are a string, a string and 755. Kubernetes reads
# YAML 1.1-style (`true`, `true`, 493), as PyYAML does. So a document goes the fast way
# only when it holds none of the plain scalars on which the two disagree (or merge keys,
# tags, directives); anything else, and any document yaml-rs rejects, takes the PyYAML
# path, which also gives the exact line of an error. Documents are split on `---` here,
# so every object keeps its line; list items' lines come from their `- ` markers.

try:
    import yaml_rs as _yaml_rs
    _ALIAS_LIMITS = _yaml_rs.AliasLimits(max_total_replayed_events=MAX_YAML_NODES)
except ImportError:  # the fallback is complete on its own
    _yaml_rs = None

# Plain scalars that YAML 1.2 (yaml-rs) and YAML 1.1 (Kubernetes, PyYAML) read differently:
# the booleans yes/no/on/off/y/n, and octal numbers such as 0755 (493 in 1.1, 755 in 1.2),
# as block values, sequence items and flow entries; plus merge keys, tags, and anchors or
# aliases (PyYAML's path checks those for bombs and cycles). Every pattern starts with a
# literal so the regex engine can skip ahead: one pass over 44 MB takes 0.2 s, where a
# single combined pattern took 1.6 s. Boolean-looking mapping keys (`on:`) are not looked
# for: Kubernetes objects do not use them.
_SCALAR_1_1 = r"(?:[yY]es|YES|[nN]o|NO|[oO]n|ON|[oO]ff|OFF|[yYnN]|0o?[0-7]+)"
_DIFFERENT = [re.compile(p) for p in (
    r": " + _SCALAR_1_1 + r"[ \t\r]*(?:\n|\Z|#|[,\]}])",
    r"- " + _SCALAR_1_1 + r"[ \t\r]*(?:\n|\Z|#)",
    r"\[ ?" + _SCALAR_1_1 + r" ?[,\]]",
    r", " + _SCALAR_1_1 + r" ?[,\]]",
    r"&(?<![^\s\[{,]&)[^\s,\]}]",
    r"\*(?<![^\s\[{,]\*)[^\s,\]}]",
    r"<<",
    r"!!",
)]


def _needs_complete_path(chunk: str) -> bool:
    """Text yaml-rs and Kubernetes may read differently, or whose aliases need checking.
    Quoted forms ('yes') do not match: they are strings for both."""
    return any(pattern.search(chunk) for pattern in _DIFFERENT)




def _fast_path_possible(text: str) -> bool:
    return not text.startswith("%") and "\n..." not in text


def _document_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, first line) of each `---`-separated document, without copying text."""
    starts = [0]
    pos = text.find("\n---")
    while pos != -1:
        if text[pos + 4:pos + 5] in ("", "\n", " ", "\t", "\r"):
            starts.append(pos + 1)
        pos = text.find("\n---", pos + 4)
    spans, line = [], 1
    for i, begin in enumerate(starts):
        finish = starts[i + 1] if i + 1 < len(starts) else len(text)
        spans.append((begin, finish, line))
        line += text.count("\n", begin, finish)
    return spans


def _first_content_line(text: str, first_line: int, begin: int = 0, finish: int | None = None) -> int:
    """The line of a document's first content: past `---`, blank lines and comments."""
    finish = len(text) if finish is None else finish
    pos, line = begin, first_line
    while pos < finish:
        end = text.find("\n", pos, finish)
        end = finish if end == -1 else end
        stripped = text[pos:end].strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            return line
        pos, line = end + 1, line + 1
    return first_line


def _list_item_lines(chunk: str, first_line: int) -> list[int]:
    """Lines of the entries of a top-level `items:` block sequence, as kubectl writes them."""
    lines = chunk.split("\n")
    out: list[int] = []
    indent = None
    in_items = False
    for i, line in enumerate(lines):
        if not in_items:
            in_items = line.rstrip() == "items:"
            continue
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        depth = len(line) - len(stripped)
        is_entry = stripped.startswith("- ") or stripped == "-"
        if indent is None:
            if not is_entry:
                return []
            indent = depth
        if depth < indent or (depth == indent and not is_entry):
            break
        if depth == indent:
            out.append(first_line + i)
    return out


def _load_yaml_chunk(chunk: str, first_line: int, name: str, result: LoadResult) -> None:
    if _needs_complete_path(chunk):
        _load_yaml_slow(chunk, name, result, first_line - 1)
        return
    try:
        doc = _fast_loads(chunk)
    except Exception:  # yaml-rs rejects it: PyYAML says exactly where and why
        _load_yaml_slow(chunk, name, result, first_line - 1)
        return
    item_lines = _placed_items(doc, chunk, first_line)
    if item_lines is None:  # unusual layout: let PyYAML place the items
        _load_yaml_slow(chunk, name, result, first_line - 1)
        return
    _add_document(doc, name, _first_content_line(chunk, first_line), item_lines, result, json_items=False)


def _fast_loads(text: str):
    return _yaml_rs.loads(text, parse_datetime=False, alias_limits=_ALIAS_LIMITS,
                          duplicate_key_policy=_yaml_rs.DuplicateKeyPolicy.LastWins)


def _placed_items(doc, chunk: str, first_line: int) -> list[int] | None:
    """The lines of a List document's items ([] for any other document); None when the
    `- ` markers do not match the items one to one."""
    if not (isinstance(doc, dict) and _is_list(doc)):
        return []
    lines = _list_item_lines(chunk, first_line)
    return lines if len(lines) == len(doc["items"]) else None


def parse_yaml_documents(text: str) -> list:
    """Every document of a YAML text with the parser mesh-audit uses (the benchmark's floor)."""
    if _yaml_rs is not None:
        docs = _yaml_rs.loads(text, parse_datetime=False)
        return docs if isinstance(docs, list) else [docs]
    return list(yaml.load_all(text, Loader=_ManifestLoader))


def _is_list(doc: dict) -> bool:
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)


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
    if isinstance(doc, dict) and _is_list(doc):
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


def _yaml_item_lines(node) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "items" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


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
