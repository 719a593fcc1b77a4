"""Writing mesh-audit's own files: reports, snapshots and baselines replace their target
only when complete."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str) -> Iterator[BinaryIO]:
    """A binary file whose content replaces `path` only when the block completes: a failed
    or interrupted run leaves the previous file (or none), never a partial one. It gets the
    permissions any new file gets here (the umask), not the temporary file's 0600."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent) if str(target.parent) else ".")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
