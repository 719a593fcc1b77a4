"""Writing mesh-audit's own files: reports, snapshots and baselines replace their target
only when complete, and never replace what is not a regular file.

A regular file (or a new path) is written through a temporary file renamed over it, with
the mode and owner of the file it replaces. A symlink is written through: the file it
points at is replaced, the link stays. A character device, a FIFO or a socket (`/dev/null`,
`/dev/stdout`, a named pipe a reader waits on) is opened and written in place, as a
shell's `>` would: renaming a file over it would replace the device node itself (as root)
or leave the reader with nothing.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

# Links into these are handles of this process (/dev/stdout -> /proc/self/fd/1 -> a file
# the shell opened): written through, never replaced, so an appending shell keeps its file.
_HANDLES = ("/proc/", "/dev/")


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _in_place(path: str) -> bool:
    """Whether `path` must be written in place: it exists and is not a regular file, or
    it is a link into a process's handles."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", path)
    if not stat.S_ISREG(mode):
        return True
    return os.path.islink(path) and _links_through_handles(path)


def _links_through_handles(path: str) -> bool:
    seen = 0
    while os.path.islink(path) and seen < 40:
        target = os.readlink(path)
        path = os.path.join(os.path.dirname(path), target)
        if os.path.abspath(path).startswith(_HANDLES):
            return True
        seen += 1
    return False


@contextmanager
def atomic_file(path: str) -> Iterator[BinaryIO]:
    """A binary file whose content replaces `path` only when the block completes: a failed
    or interrupted run leaves the previous file (or none), never a partial one. A new file
    gets the permissions any new file gets here (the umask), not the temporary file's
    0600; a replaced one keeps its mode (and, where this process may set it, its owner).
    Devices, FIFOs and links into /dev or /proc are written in place (see the module)."""
    if _in_place(path):
        with open(path, "wb") as fh:
            yield fh
        return
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    try:
        kept = os.stat(target)
    except FileNotFoundError:
        kept = None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent) if str(target.parent) else ".")
    try:
        os.chmod(tmp, stat.S_IMODE(kept.st_mode) if kept is not None else 0o666 & ~_umask())
        if kept is not None and (kept.st_uid, kept.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.chown(tmp, kept.st_uid, kept.st_gid)
            except PermissionError:  # not ours to give away: the file becomes this user's
                pass
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
