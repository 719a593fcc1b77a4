"""What the planner computes once per context (a namespace's pods, the pods as a restart
brings them back, the routes to each Service) is kept here, beside the plan, for as long
as that context lives."""

from __future__ import annotations

import weakref
from typing import Callable

_MEMOS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def memo(ctx, name: str, build: Callable):
    """`build()` for this context, made on first use and then kept with it."""
    kept = _MEMOS.setdefault(ctx, {})
    if name not in kept:
        kept[name] = build()
    return kept[name]
