"""Put a finding on the line of the field it is about, not only its object's first line:
a pull request that changes `to.operation.methods` on line 50 of a policy that starts on
line 35 gets its alert on line 50.

A rule names the fields (`fields:`, JSON Pointers); the first one its object has in the
source file places the finding. The document holding the object is read again with
PyYAML's node API, which keeps every key's line (JSON is YAML too): only documents that
have such findings, and only in files up to a size. A source that is not YAML (a Helm
template), or a large dump, is searched for the field's key below the object's first line
(within the object, where the loader knows where it ends). Where nothing is found, the
object's line stays.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from dataclasses import replace

import yaml

from auditor.collect.yamldocs.documents import document_spans
from auditor.model.report import Finding
from auditor.core.yamlread import ManifestLoader

MAX_BYTES = 16 * 1024 * 1024  # larger sources (dumps) are searched, not composed


def place_findings(findings: list[Finding], spans=None) -> list[Finding]:
    """The findings, each with a rule's `fields` placed on the line of the first of them
    its manifest holds. `spans(file, line)`: the byte range of the object that starts on
    that line of a large file, when the loader knows it (dumps read as a stream), so that a
    large dump is searched object by object instead of read whole again."""
    sources = _Sources(spans)
    return [_placed(finding, sources) for finding in findings]


def _placed(finding: Finding, sources: "_Sources") -> Finding:
    if not finding.fields or finding.location is None or finding.location[0].startswith("<"):
        return finding
    file, line = finding.location
    for pointer in finding.fields:
        found = sources.line_of(file, line, pointer)
        if found is not None:
            return replace(finding, location=(file, found), pointer=pointer)
    return finding


def _segments(pointer: str) -> list[str]:
    """RFC 6901: "/a/b~1c" -> ["a", "b/c"]."""
    if not pointer.startswith("/"):
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


class _Sources:
    def __init__(self, spans=None) -> None:
        self._texts: dict[str, tuple[str, list] | None] = {}  # file -> (text, its documents' spans)
        self._nodes: dict[tuple[str, int], dict[int, yaml.Node] | None] = {}  # (file, document) -> nodes by line
        self._lines: dict[str, list[str]] = {}
        self._is_file: dict[str, bool] = {}
        self._spans = spans

    def line_of(self, file: str, object_line: int, pointer: str) -> int | None:
        segments = _segments(pointer)
        if not segments or not self._regular(file):
            return None
        nodes = self._objects(file, object_line)
        if nodes is not None:
            node = nodes.get(object_line)
            if node is None:
                return None
            line = _walk(node, segments)  # counted from the document's top
            return None if line is None else line + object_line - (node.start_mark.line + 1)
        return self._search(file, object_line, segments)

    def _regular(self, file: str) -> bool:
        """Only a regular file can be read again: a pipe or FIFO (-f <(kubectl ...)) was read
        once, and opening it again would wait for a writer that never comes."""
        if file not in self._is_file:
            self._is_file[file] = os.path.isfile(file)
        return self._is_file[file]

    def _objects(self, file: str, object_line: int) -> dict[int, yaml.Node] | None:
        """The nodes of the document holding `object_line`, by the line each object starts
        on (the document, and its List items); None when the file is too big or that
        document is not YAML."""
        if file not in self._texts:
            self._texts[file] = _read(file)
        if self._texts[file] is None:
            return None
        text, spans = self._texts[file]
        which = max(bisect_right([first for _, _, first in spans], object_line) - 1, 0)
        if (file, which) not in self._nodes:
            begin, finish, first = spans[which]
            self._nodes[(file, which)] = _compose(text[begin:finish], first - 1)
        return self._nodes[(file, which)]

    def _search(self, file: str, object_line: int, segments: list[str]) -> int | None:
        """The line, below the object's first, that starts the field's key (for a list item,
        its list's key), before the next document."""
        span = self._spans(file, object_line) if self._spans is not None else None
        if span is not None:
            return self._search_span(file, object_line, span, segments)
        if file not in self._lines:
            try:
                with open(file, encoding="utf-8", errors="replace") as fh:
                    self._lines[file] = fh.read().splitlines()
            except OSError:
                self._lines[file] = []
        keys = [s for s in segments if not s.isdigit()]
        if not keys:
            return None
        key = keys[-1]
        for number in range(object_line, len(self._lines[file]) + 1):
            text = self._lines[file][number - 1].strip()
            if number > object_line and text.startswith("---"):
                return None
            if text.startswith((f"{key}:", f"- {key}:", f'"{key}":', f"'{key}':")):
                return number
        return None


    def _search_span(self, file: str, object_line: int, span: tuple[int, int], segments: list[str]) -> int | None:
        """_search within one object of a large file, read from its byte range alone."""
        keys = [s for s in segments if not s.isdigit()]
        if not keys:
            return None
        try:
            with open(file, "rb") as fh:
                fh.seek(span[0])
                text = fh.read(span[1] - span[0]).decode("utf-8", "replace")
        except OSError:
            return None
        key = keys[-1]
        for number, line in enumerate(text.split("\n"), start=object_line):
            stripped = line.strip()
            if number > object_line and stripped.startswith("---"):
                return None
            if stripped.startswith((f"{key}:", f"- {key}:", f'"{key}":', f"'{key}':")):
                return number
        return None


def _read(file: str) -> tuple[str, list] | None:
    """A file's text and the spans of its documents; None when it is too big or unreadable."""
    try:
        if os.path.getsize(file) > MAX_BYTES:
            return None
        with open(file, encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    return text, document_spans(text)


def _compose(text: str, offset: int) -> dict[int, yaml.Node] | None:
    """The objects of one document (itself and its List items) by their line in the file,
    the document starting `offset` lines below its top (the nodes' own marks count from
    the document: see line_of)."""
    try:
        roots = list(yaml.compose_all(text, Loader=ManifestLoader))
    except (yaml.YAMLError, RecursionError):
        return None
    found: dict[int, yaml.Node] = {}
    for root in roots:
        if root is None:
            continue
        found.setdefault(root.start_mark.line + 1 + offset, root)
        items = _child(root, "items")
        if isinstance(items, yaml.SequenceNode):
            for item in items.value:
                found.setdefault(item.start_mark.line + 1 + offset, item)
    return found


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _walk(node: yaml.Node, segments: list[str]) -> int | None:
    """The line of the last key or list item the path reaches; None if it leaves the object."""
    line = None
    for segment in segments:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == segment), None)
            if match is None:
                return None
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and segment.isdigit() and int(segment) < len(node.value):
            node = node.value[int(segment)]
            line = node.start_mark.line + 1
        else:
            return None
    return line
