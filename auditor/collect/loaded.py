"""What loading inputs produces (LoadResult: objects, problems, and where list items sit
in their files), and how one decoded document becomes an object (add_object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auditor.collect.jsonlist import items as json_items
from auditor.collect.shapes import describe, spec_problem
from auditor.collect.validate import metadata_problem
from auditor.core import kinds as k
from auditor.core.coverage import Gap
from auditor.core.kinds import group_kind
from auditor.core.errors import UsageError
from auditor.model.snapshot import K8sObject, Projector, Snapshot, is_observed

MAX_ITEM_BYTES = 64 * 1024 * 1024  # the last item of a dump: searched to here at most


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
    texts: dict[str, bytes] = field(default_factory=dict)
    json_lines: dict[str, list[int]] = field(default_factory=dict)
    json_offsets: dict[str, list[int]] = field(default_factory=dict)  # of list items read as a stream
    _json_index: dict[str, dict[int, int]] = field(default_factory=dict)  # line -> item, for object_span
    yaml_spans: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)  # line -> bytes of a List item
    projector: Projector = field(default_factory=Projector, repr=False)

    def note(self, warnings: list[UsageError] = (), errors: list[UsageError] = ()) -> None:
        """Problems met before any file was read (expanding the paths)."""
        self.warnings.extend(warnings)
        self.errors.extend(errors)

    def opened(self) -> None:
        """One more input opened (a file, a pipe or stdin)."""
        self.files_read += 1

    def without_projector(self) -> "LoadResult":
        """Leave the replica table behind (a forked share's result: its objects keep what
        they share), returning this result."""
        self.projector = None
        return self

    def absorb(self, part: "LoadResult") -> None:
        """Append what another load found (a staged document, a forked share's file)."""
        self.objects.extend(part.objects)
        self.warnings.extend(part.warnings)
        self.errors.extend(part.errors)
        self.snapshots.extend(part.snapshots)
        self.files_read += part.files_read
        self.rendered.extend(part.rendered)
        self.not_rendered.extend(part.not_rendered)

    def collection_record(self, require_rendering: bool = False) -> dict:
        """Where these objects came from, as a report's `collection` says it. Files are
        complete by definition, but for sources that could not be rendered (a gap with
        `require_rendering`, else a warning); snapshots among them carry their own record."""
        if not self.snapshots:
            collection = {"source": "files", "files_read": self.files_read}
            if self.rendered or self.not_rendered:
                collection["rendered"] = self.rendered
                collection["not_rendered"] = self.not_rendered
            if require_rendering and self.not_rendered:
                collection["not_collected"] = [Gap(n["path"], f"not rendered by {n['by']}: {n['reason']}").to_dict()
                                               for n in self.not_rendered]
            return collection
        path, first = self.snapshots[0]
        collection = {"source": "snapshot", "snapshot": path, **first.describe()}
        for _, other in self.snapshots[1:]:
            collection["not_collected"] += [g.to_dict() for g in other.not_collected]
        return collection

    def mark(self) -> tuple[int, int, int]:
        """Where the objects, warnings and errors stand, for rollback()."""
        return len(self.objects), len(self.warnings), len(self.errors)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Forget what a reading added since `mark`: another path reads the input again."""
        objects, warnings, errors = mark
        del self.objects[objects:], self.warnings[warnings:], self.errors[errors:]

    def snapshot(self, collection: dict | None = None) -> Snapshot:
        """The objects read, with this reading's problems (duplicates among them added
        now) and what `collection` says of where they came from."""
        snap = Snapshot(self.objects, line_resolver=self.resolve_line, collection=collection, errors=self.errors,
                        warnings=self.warnings, object_span=self.object_span)
        for previous, later in snap.duplicates:
            self.warnings.append(
                UsageError(
                    f"{later.ref()} is also defined at {where(previous)}; using this one",
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

    def object_span(self, name: str, line: int) -> tuple[int, int] | None:
        """The byte range of the list item that starts on `line` of a dump read as a stream."""
        yaml_spans = self.yaml_spans.get(name)
        if yaml_spans is not None:
            return yaml_spans.get(line)
        offsets = self.json_offsets.get(name)
        if not offsets or self.item_line(name, 0) is None:
            return None
        index = self._json_index.setdefault(name, {})
        if not index:
            for i, at in enumerate(self.json_lines[name]):
                index[at] = -1 if at in index else i  # items sharing a line (compact JSON): no key starts it
        i = index.get(line)
        if i is None or offsets[i] < 0:
            return None
        if i == -1:
            return 0, 0
        end = offsets[i + 1] if i + 1 < len(offsets) and offsets[i + 1] >= 0 else offsets[i] + MAX_ITEM_BYTES
        return offsets[i], end

    def item_line(self, name: str, index: int | None) -> int | None:
        """Line of item `index` of a JSON document's list (computed once per file)."""
        if index is None:
            return None
        lines = self.json_lines.get(name)
        if lines is None:
            data = self.texts.get(name)
            if data is None:
                try:
                    data = Path(name).read_bytes()
                except OSError:
                    return None
            offsets = self.json_offsets.get(name)
            lines = json_items.lines_at(data, offsets) if offsets is not None else json_items.json_item_lines(data)
            self.json_lines[name] = lines
        return lines[index] if index < len(lines) else None


def where(obj: K8sObject) -> str:
    return f"{obj.file}:{obj.line}" if obj.line else str(obj.file)


def add_object(doc, name: str, line: int | None, index: int | None, result: LoadResult, from_cluster: bool = False) -> None:
    if isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str) and doc["kind"]:
        problem = None if from_cluster else object_problem(doc)
        if problem is not None:  # audited under a wrong name, or with fields read as absent: wrong answers
            where = line if line is not None else result.item_line(name, index)
            result.errors.append(UsageError(f"{doc['kind']}: {problem}", name, where))
            return
        signature = None
        if doc["kind"] in ("Pod", "ReplicaSet"):
            doc, signature = result.projector(doc)
        result.objects.append(K8sObject(doc, None if from_cluster else name, line, index, signature))
    elif isinstance(doc, dict) and ("apiVersion" in doc or "kind" in doc) and _typed_wrong(doc):
        where = line if line is not None else result.item_line(name, index)  # kubectl cannot decode it either
        result.errors.append(UsageError(_typed_wrong(doc), name, where))
    else:
        result.warnings.append(UsageError("skipped: not a Kubernetes object (needs apiVersion and kind)", name, line))


def object_problem(doc: dict) -> str | None:
    """Why the API server would refuse this object, in what mesh-audit reads: its metadata,
    a List's items, the fields of its spec facts read (collect.shapes; for workloads and
    Services only in manifests, not in what a server returned, with a uid or a status)."""
    problem = metadata_problem(doc.get("metadata"))
    if problem is None and doc["kind"].endswith("List") and doc.get("items") is not None:
        problem = f"items is {describe(doc['items'])}, not a list" if not isinstance(doc["items"], list) else \
            "a List inside a List: kubectl applies the items of one List (no kind List is served); move these items up"
    if problem is None:
        gk = group_kind(doc["apiVersion"], doc["kind"])
        if gk not in BULK_GKS or not is_observed(doc):  # pods a server returned were judged there: most of a dump
            problem = spec_problem(gk, doc)
    return problem


# The kinds a cluster has by the thousand.
BULK_GKS = frozenset({*k.WORKLOAD_GKS, k.SERVICE})


def _typed_wrong(doc: dict) -> str | None:
    """`kind: 5`, `apiVersion: 1`: an object kubectl cannot decode (not a file of another sort)."""
    for key in ("apiVersion", "kind"):
        if key in doc and not isinstance(doc[key], str):
            return f"{key} is {describe(doc[key])}, not a string"
    return None
