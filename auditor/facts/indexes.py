"""How a Context's indices declare themselves, so that a what-if copy (auditor.facts.derive)
can tell which of them its change leaves as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Index:
    """An index a Context builds on first use (`Context.once`), declared where it is built.
    `reads`: the kinds of object it is made from; a what-if copy whose change touches none
    of them keeps it as it is (None: it reads more than objects, and is never kept as is).
    `carry(old, change, ctx)`: how a copy takes it over with a few entries redone, or None
    when it cannot; called on the copy's first use."""

    name: str
    reads: frozenset | None = None
    carry: Callable | None = None


@dataclass(frozen=True)
class Change:
    """What a what-if copy changed (see auditor.facts.derive)."""

    put: tuple  # objects replaced or added
    objects: tuple  # those and the objects removed
    gks: frozenset
    namespaces: frozenset  # where the changed objects sit (a Namespace: its own name)
    relabelled_services: dict | None  # key -> Service, when the change only relabels Services
