"""YAML manifests as documents, each with the line it starts on and its List items' lines.

yaml-rs reads a document where it reads it as Kubernetes does, PyYAML's C parser
otherwise (see "the fast path" below). Every document keeps its first line, and the
items of a `kind: List` keep theirs, at no extra parsing cost.
"""

from __future__ import annotations

import re
from typing import Iterator

import yaml

from auditor.core.errors import UsageError
from auditor.core.yamlread import MAX_YAML_NODES, ManifestLoader, check_aliases, check_duplicate_keys, reader_error

# (document, the line it starts on, the lines of its List items)
Document = tuple[object, int, list[int]]


def documents(text: str, name: str) -> Iterator[Document]:
    """Every document of a YAML text. A syntax error raises UsageError at its line, after
    the documents before it were given."""
    if _yaml_rs is None or not _fast_path_possible(text):
        yield from _slow_documents(text, name)
        return
    spans = document_spans(text)
    if not _needs_complete_path(text):
        whole = _whole_documents(text, spans)
        if whole is not None:
            yield from whole
            return
    for begin, finish, first_line in spans:
        yield from _chunk_documents(text[begin:finish], first_line, name)


def _whole_documents(text: str, spans: list) -> list[Document] | None:
    """The common case, a file of plain manifests: yaml-rs reads it in one call. None when
    the documents do not line up with the `---` chunks one to one."""
    try:
        docs = _fast_loads(text)
    except Exception:
        return None
    if len(spans) == 1:
        docs = [docs]
    if not isinstance(docs, list) or len(docs) != len(spans):
        return None
    out = []
    for doc, (begin, finish, first_line) in zip(docs, spans):
        item_lines = _placed_items(doc, text[begin:finish], first_line)
        if item_lines is None:
            return None
        out.append((doc, _first_content_line(text, first_line, begin, finish), item_lines))
    return out


def _slow_documents(text: str, name: str, offset: int = 0) -> Iterator[Document]:
    """PyYAML's C parser through its node API: YAML 1.1 scalars, exact error positions,
    and the line of every node. `offset` is the line the text starts on, minus one."""
    loader = ManifestLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                check_aliases(node, name)
                check_duplicate_keys(node, name)
                doc = loader.construct_document(node)
            except UsageError as err:
                raise UsageError(err.message, err.file, err.line + offset if err.line else None) from None
            except yaml.MarkedYAMLError as err:
                mark = err.problem_mark or err.context_mark
                line = mark.line + 1 + offset if mark else None
                problem = err.problem or err.context or "malformed YAML"
                raise UsageError(f"invalid YAML: {problem}", name, line) from None
            except yaml.reader.ReaderError as err:
                raise reader_error(err, text, name, offset) from None
            except yaml.YAMLError as err:
                raise UsageError(f"invalid YAML: {err}", name) from None
            except RecursionError:
                raise UsageError("invalid YAML: document nested too deeply", name) from None
            item_lines = [n + offset for n in _yaml_item_lines(node)]
            yield doc, node.start_mark.line + 1 + offset, item_lines
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


# yaml-rs has no limit on block nesting and crashes the process (a stack overflow) on a
# document some ten thousand levels deep; PyYAML stops at 1,000 with the line. A block
# node's depth is at most about twice the indentation and dashes before it on its line,
# so text whose every line starts with fewer than DEEP_PREFIX spaces, dashes and question
# marks nests less than 1,000 levels (flow collections yaml-rs limits itself, at 256).
DEEP_PREFIX = 450
_DEEP = re.compile(r"\n[ \-?]{%d}" % DEEP_PREFIX)
_DEEP_FIRST = re.compile(r"[ \-?]{%d}" % DEEP_PREFIX)


def _needs_complete_path(chunk: str, start: int = 0, end: int | None = None) -> bool:
    """Text yaml-rs and Kubernetes may read differently, whose aliases need checking, or
    that may nest deeper than yaml-rs can take (in chunk[start:end], which starts a line).
    Quoted forms ('yes') do not match: they are strings for both."""
    end = len(chunk) if end is None else end
    return (any(pattern.search(chunk, start, end) for pattern in _DIFFERENT) or _DEEP.search(chunk, start, end) is not None
            or _DEEP_FIRST.match(chunk, start, end) is not None)


def _fast_path_possible(text: str) -> bool:
    return not text.startswith("%") and "\n..." not in text


def document_spans(text: str) -> list[tuple[int, int, int]]:
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


def _chunk_documents(chunk: str, first_line: int, name: str) -> Iterator[Document]:
    if _needs_complete_path(chunk):
        yield from _slow_documents(chunk, name, first_line - 1)
        return
    try:
        doc = _fast_loads(chunk)
    except Exception:  # yaml-rs rejects it: PyYAML says exactly where and why
        yield from _slow_documents(chunk, name, first_line - 1)
        return
    item_lines = _placed_items(doc, chunk, first_line)
    if item_lines is None:  # unusual layout: let PyYAML place the items
        yield from _slow_documents(chunk, name, first_line - 1)
        return
    yield doc, _first_content_line(chunk, first_line), item_lines


def _fast_loads(text: str):
    # A duplicate key makes yaml-rs refuse the document; PyYAML's path then names both lines.
    return _yaml_rs.loads(text, parse_datetime=False, alias_limits=_ALIAS_LIMITS,
                          duplicate_key_policy=_yaml_rs.DuplicateKeyPolicy.Error)


def _placed_items(doc, chunk: str, first_line: int) -> list[int] | None:
    """The lines of a List document's items ([] for any other document); None when the
    `- ` markers do not match the items one to one."""
    if not (isinstance(doc, dict) and is_list(doc)):
        return []
    lines = _list_item_lines(chunk, first_line)
    return lines if len(lines) == len(doc["items"]) else None


class NotStreamable(Exception):
    """An item of a List read as a stream did not parse on its own (the whole-document path
    then reads it, and says what is wrong)."""


_ITEMS_END = re.compile(r"\n(?=[^\s#-])")  # the next line at the margin that is not an entry


class ListItems:
    """The items of a `kubectl get -o yaml` List: where each starts, parsed on demand."""

    def __init__(self, text: str, starts: list[int], end: int):
        self.text, self.starts, self.end = text, starts, end

    def __len__(self) -> int:
        return len(self.starts)

    def _end(self, i: int) -> int:
        """Where item i ends."""
        return self.starts[i + 1] if i + 1 < len(self.starts) else self.end

    def sizes(self) -> list[int]:
        return [self._end(i) - start for i, start in enumerate(self.starts)]

    def parsed(self, share: range | None = None) -> Iterator[tuple[object, int]]:
        """(item, line) of each item of `share` (default all), parsed alone; NotStreamable
        when one does not parse alone."""
        text, starts = self.text, self.starts
        share = share if share is not None else range(len(starts))
        if not len(share):
            return
        if _needs_complete_path(text, starts[share.start], self._end(share.stop - 1)):  # checked here, share by share
            raise NotStreamable()
        counted = starts[share.start]
        line = text.count("\n", 0, counted) + 1
        for i in share:
            line += text.count("\n", counted, starts[i])
            counted = starts[i]
            try:
                parsed = _fast_loads(text[starts[i]:self._end(i)])
            except Exception:
                raise NotStreamable() from None
            if not isinstance(parsed, list) or len(parsed) != 1:
                raise NotStreamable()
            yield parsed[0], line


def list_items(text: str) -> ListItems | None:
    """The items of a `kubectl get -o yaml` List, to be parsed each on its own so the whole
    list never sits in memory as objects; None when the text is not such a List laid out
    as kubectl writes it (one document, items as a block sequence at the left margin) or
    needs the complete path (the items are checked for that as they are parsed)."""
    if _yaml_rs is None or not _fast_path_possible(text) or "\n---" in text:
        return None
    begin = 0 if text.startswith("items:\n") else text.find("\nitems:\n") + 1
    if begin == 0 and not text.startswith("items:\n"):
        return None
    body = begin + len("items:\n")
    if not text.startswith("- ", body):
        return None
    starts, pos = [body], text.find("\n- ", body)
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n- ", pos + 3)
    tail = _ITEMS_END.search(text, starts[-1])
    end = tail.start() + 1 if tail else len(text)
    rest = text[:begin] + text[end:]
    if _needs_complete_path(rest):
        return None
    try:
        head = _fast_loads(rest)
    except Exception:
        return None
    if not isinstance(head, dict) or not isinstance(head.get("kind"), str) or not head["kind"].endswith("List"):
        return None
    return ListItems(text, starts, end)


def parse_yaml_documents(text: str) -> list:
    """Every document of a YAML text with the parser mesh-audit uses (the benchmark's floor)."""
    if _yaml_rs is not None:
        docs = _yaml_rs.loads(text, parse_datetime=False)
        return docs if isinstance(docs, list) else [docs]
    return list(yaml.load_all(text, Loader=ManifestLoader))


def is_list(doc: dict) -> bool:
    """A `kind: List` (or `*List`) document with its `items`."""
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)


def _yaml_item_lines(node) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "items" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []
