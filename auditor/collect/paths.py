"""Which files a scan reads, and reading them within bounds.

A directory is walked recursively, in sorted order, skipping hidden files and folders and what the
Excluder leaves out (--exclude, `exclude:`, .gitignore). A folder with a Chart.yaml or a
kustomization is not read file by file: it is rendered (see render.py), and what a
kustomization consumes (its bases, resources and patches) is not read again. Only
regular files named *.yaml, *.yml or *.json are read: a FIFO or device among them would
block or never end, so it is skipped with a warning. A symlink is followed only when it
stays inside the directory given (a link to `/` would scan the machine), unless the user
asks to follow symlinks. A file given by name may also be a pipe (`-f <(kubectl ...)`).
No input is read past MESH_AUDIT_MAX_FILE_MB (2 GiB by default), compressed or not.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from typing import BinaryIO

from auditor.collect.excludes import Excluder
from auditor.collect.render import CHART_FILE, KUSTOMIZATION_FILES, is_chart, kustomization_file, referenced_paths
from auditor.core.errors import UsageError

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
MAX_FILE_MB = 2048


def max_file_bytes() -> int:
    try:
        return int(float(os.environ.get("MESH_AUDIT_MAX_FILE_MB", MAX_FILE_MB)) * 1024 * 1024)
    except ValueError:
        return MAX_FILE_MB * 1024 * 1024


def over_limit_decompressed() -> str:
    """What a compressed input that unpacks past the limit is told (a gzip bomb)."""
    return (f"over the {max_file_bytes() // 1048576:,} MiB limit for one input once decompressed "
            "(raise MESH_AUDIT_MAX_FILE_MB)")


def _too_big(size: int) -> str:
    return (f"{size / 1048576:,.0f} MiB is over the {max_file_bytes() / 1048576:,.0f} MiB limit for one input "
            "(raise MESH_AUDIT_MAX_FILE_MB)")


class Expansion:
    """The files named by the paths a user gave, and why anything else was left out."""

    def __init__(self, follow_symlinks: bool = False, excluder: Excluder | None = None):
        self.follow_symlinks = follow_symlinks
        self.excluder = excluder or Excluder(gitignore=False)
        self.files: list[str] = []
        self.charts: list[str] = []  # folders to render with helm
        self.kustomizations: list[str] = []  # folders to build with kustomize
        self.warnings: list[UsageError] = []
        self.errors: list[UsageError] = []

    def add(self, path: str) -> None:
        if path == STDIN:
            self.files.append(STDIN)
        elif os.path.isdir(path):
            if not self._renderable(path):
                self._walk(path)
        elif os.path.lexists(path):
            self.files.append(path)
        else:
            raise UsageError("no such file or directory", path)

    def _renderable(self, folder: str) -> bool:
        """A chart or a kustomization: noted to be rendered, not walked."""
        if is_chart(folder):
            self.charts.append(folder)
            return True
        if kustomization_file(folder) is not None:
            self.kustomizations.append(folder)
            return True
        return False

    def finish(self) -> None:
        """Leave out what a kustomization consumes: a base an overlay builds on is audited
        through the overlay (as it is deployed), and its files are not read on their own."""
        consumed = {p for k in self.kustomizations for p in referenced_paths(k)}
        self.kustomizations = [k for k in self.kustomizations if os.path.abspath(k) not in consumed]
        self.files = [f for f in self.files if f == STDIN or os.path.abspath(f) not in consumed]

    def _walk(self, top: str) -> None:
        real_top = os.path.realpath(top)
        seen: set[tuple[int, int]] = set()
        git = not self.excluder.git_ignores(top)  # a folder named though git ignores it: read what is in it

        def unreadable(err: OSError) -> None:
            # Whatever it holds is not audited: an input error like an unreadable file, not a
            # warning a gate would pass over.
            self.errors.append(UsageError(f"cannot read this directory: {err.strerror}", err.filename))

        for root, dirs, files in os.walk(top, followlinks=True, onerror=unreadable):
            st = os.stat(root)
            if (st.st_dev, st.st_ino) in seen:  # a symlink loop, or a tree reached twice
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            if root != top and (CHART_FILE in files or any(k in files for k in KUSTOMIZATION_FILES)):
                self._renderable(os.path.normpath(root))
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and self._may_enter(os.path.join(root, d), real_top)
                             and not self.excluder.excluded(os.path.join(root, d), is_dir=True, git=git))
            for name in sorted(files):  # hidden files (.mesh-audit.yaml, .gitlab-ci.yml) are no manifests
                if name.endswith(SUFFIXES) and not name.startswith(".") and \
                        not self.excluder.excluded(os.path.join(root, name), git=git):
                    self._consider(os.path.normpath(os.path.join(root, name)), real_top)

    def _outside(self, path: str, real_top: str) -> str | None:
        """For a symlink out of the scanned tree (and not to be followed): where it points."""
        if self.follow_symlinks or not os.path.islink(path):
            return None
        target = os.path.realpath(path)
        inside = target == real_top or target.startswith(real_top.rstrip(os.sep) + os.sep)
        return None if inside else target

    def _may_enter(self, path: str, real_top: str) -> bool:
        target = self._outside(path, real_top)
        if target is not None:
            self.warnings.append(UsageError(f"skipped: a symlink to {target}, outside the directory scanned "
                                            "(--follow-symlinks reads it)", path))
        return target is None

    def _consider(self, path: str, real_top: str) -> None:
        if not self._may_enter(path, real_top):
            return
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            self.warnings.append(UsageError(f"skipped: {err.strerror} (a broken symlink?)", path))
            return
        if not stat.S_ISREG(mode):
            self.warnings.append(UsageError(f"skipped: not a regular file ({_file_type(mode)})", path))
            return
        self.files.append(path)


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def regular_file_size(path: str) -> int | None:
    """The size of a regular file, checked against the limit; None for a pipe (read it with
    read_stream). A device or other special file given by name is refused."""
    mode_size = os.stat(path)
    mode = mode_size.st_mode
    if stat.S_ISREG(mode):
        if mode_size.st_size > max_file_bytes():
            raise UsageError(_too_big(mode_size.st_size), path)
        return mode_size.st_size
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return None
    raise UsageError(f"not a file or a pipe ({_file_type(mode)})", path)


def read_stream(stream: BinaryIO, name: str) -> bytes:
    """All of a pipe or stdin, refusing more than the limit instead of filling memory."""
    limit = max_file_bytes()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UsageError(_too_big(len(data)) + "; it goes on past that", name)
    return data


def gunzip(data: bytes, name: str) -> bytes:
    """A gzip stream (one member or several, as snapshots are), decompressed within the limit."""
    limit = max_file_bytes()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise UsageError(f"not a readable gzip file ({err})", name) from None
    if len(out) > limit:
        raise UsageError(_too_big(len(out)) + " once decompressed", name)
    return out
