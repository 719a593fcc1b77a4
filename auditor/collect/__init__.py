"""Where objects come from: manifest files and dumps (`files`), a live cluster
(`cluster`, which alone imports the kubernetes client) and snapshot files (`snapshot`)."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """Bulk parsing allocates millions of containers and no cycles; collection only costs time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
