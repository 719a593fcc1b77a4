"""A `kubectl get -o yaml` List read item by item (never the whole list at once), a large
one in forked shares: memory holds the objects, not the whole document."""

from __future__ import annotations

from auditor.collect.loaded import LoadResult, add_object
from auditor.collect.yamldocs.documents import NotStreamable
from auditor.core.workers import map_shares, split

# Below this much YAML, parsing a List's items in a second process costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def load_yaml_items(listed, name: str, result: LoadResult, jobs: int = 1) -> bool:
    """A kubectl -o yaml List, item by item (never the whole list at once), a large one in
    forked shares; False when an item does not parse alone (nothing is kept then)."""
    jobs = jobs if len(listed.text) > PARALLEL_MIN_BYTES else 1
    shares = split(listed.sizes(), jobs) if jobs > 1 else [range(len(listed))]
    try:
        parts = map_shares(_YamlShare(listed, name), shares)
    except NotStreamable:
        return False
    if any(part is None for part in parts):
        return False
    for part in parts:
        result.absorb(part)
    if listed.text.isascii():  # characters are bytes: where each item lies in the file, for locate
        spans, line, counted = {}, 1, 0
        for i, start in enumerate(listed.starts):
            line += listed.text.count("\n", counted, start)
            counted = start
            spans[line] = (start, listed.starts[i + 1] if i + 1 < len(listed.starts) else listed.end)
        result.yaml_spans[name] = spans
    return True


class _YamlShare:
    """Parses a share of a List's items into a LoadResult (picklable, for a forked loader);
    None when an item does not parse alone."""

    def __init__(self, listed, name: str):
        self.listed, self.name = listed, name

    def __call__(self, share: range) -> LoadResult | None:
        part = LoadResult()
        try:
            for item, line in self.listed.parsed(share):
                add_object(item, self.name, line, None, part)
        except NotStreamable:
            return None
        return part.without_projector()
