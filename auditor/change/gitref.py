"""What a pull request deletes: objects the scanned paths held at a git ref and no longer
hold (`--diff-base REF`).

The scanned paths are read again as they were at the ref (from `git archive`, into a
temporary folder, charts and overlays rendered as in a scan, the same exclusions applied)
and every object found there is a candidate; `apply_change` deletes those the change no
longer has and the base still does.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile

from auditor.change.apply import Changed, in_namespace
from auditor.collect.excludes import work_tree
from auditor.core.errors import UsageError

GIT_TIMEOUT = 60


def removed_since(ref: str, paths: list[str], load, excluder=None, namespace: str | None = None,
                  ) -> tuple[list[Changed], list[UsageError]]:
    """(the objects `paths` held at `ref`, each as a deletion to apply, warnings).
    `load(paths, relocate)` reads files into a Snapshot as the scan does, where
    `relocate(path)` says where a path of the work tree (a configured chart's folder) lies
    as read at the ref; `excluder` leaves out what the scan leaves out. UsageError for a
    ref that is no commit, or a path outside git."""
    with tempfile.TemporaryDirectory(prefix="mesh-audit-diff-base-") as folder:
        read: list[tuple[str, str]] = []  # (the path as it was at the ref, here; the path as given)
        roots: list[tuple[str, str]] = []  # (a work tree, where its paths were extracted)
        for i, path in enumerate(p for p in paths if p != "-"):
            absolute = os.path.abspath(path)
            root = _work_tree(absolute, ref, path)
            relative = os.path.relpath(absolute, root).replace(os.sep, "/")
            dest = os.path.join(folder, str(i))
            if _extract(root, ref, relative, dest):
                _prune(dest, root, excluder)
                read.append((os.path.normpath(os.path.join(dest, relative)), path))
                roots.append((root, dest))
        if not read:
            return [], []

        def relocate(path: str) -> str | None:
            for root, dest in roots:
                moved = os.path.join(dest, os.path.relpath(path, root))
                if not os.path.relpath(path, root).startswith("..") and os.path.exists(moved):
                    return moved
            return None

        snapshot = load([p for p, _ in read], relocate)
        return _deletions(snapshot, read, ref, namespace)


def _deletions(snapshot, read: list[tuple[str, str]], ref: str, namespace: str | None,
               ) -> tuple[list[Changed], list[UsageError]]:
    why = f"removed since {ref}"

    def original(file: str | None) -> str | None:
        """Where a file read at the ref lies, written from the path the user gave."""
        for old, given in read:
            if file is not None and (file == old or file.startswith(old + os.sep)):
                return os.path.normpath(os.path.join(given, os.path.relpath(file, old)))
        return file

    out = []
    for obj in snapshot:
        obj = in_namespace(obj, namespace)
        location = snapshot.location(obj)
        out.append(Changed(obj.key, obj.ref(), (original(location[0]), location[1]) if location else None, True, why))
    warnings = [UsageError(f"--diff-base {ref}: this did not parse there; its objects are not counted as deleted "
                           f"({err.message})", original(err.file), err.line) for err in snapshot.errors]
    return out, warnings


def _git(root: str, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, timeout=GIT_TIMEOUT, check=False,
                              text=not binary)
    except FileNotFoundError:
        raise UsageError("--diff-base needs git, which is not on the PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"--diff-base: git did not answer within {GIT_TIMEOUT} s in {root}") from None


def _work_tree(absolute: str, ref: str, path: str) -> str:
    root = work_tree(absolute)
    if root is None:
        raise UsageError(f"--diff-base {ref}: {path} is not in a git work tree")
    if _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        raise UsageError(f"--diff-base {ref}: no such commit in {root} (in CI, fetch it first: "
                         f"git fetch origin {ref.removeprefix('origin/')})")
    return root


def _extract(root: str, ref: str, relative: str, dest: str) -> bool:
    """`relative` as it was at `ref`, under `dest`; False when it did not exist there."""
    spec = [] if relative == "." else ["--", relative]
    listed = _git(root, "ls-tree", "--name-only", ref, *spec)
    if listed.returncode != 0 or not listed.stdout.strip():
        return False
    archive = _git(root, "archive", "--format=tar", ref, *spec, binary=True)
    if archive.returncode != 0:
        raise UsageError(f"--diff-base {ref}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # a Python without extraction filters: no links, nothing outside dest
            tar.extractall(dest, members=[m for m in tar.getmembers() if (m.isfile() or m.isdir())
                                          and not m.name.startswith(("/", "..")) and "/../" not in m.name])
    return True


def _prune(dest: str, root: str, excluder) -> None:
    """Leave out what the scan leaves out, judged by where each file lies in the work tree."""
    if excluder is None:
        return
    for folder, dirs, files in os.walk(dest, topdown=True):
        for name in list(dirs):
            if excluder.excluded(os.path.join(root, os.path.relpath(os.path.join(folder, name), dest)), True, git=False):
                shutil.rmtree(os.path.join(folder, name))
                dirs.remove(name)
        for name in files:
            if excluder.excluded(os.path.join(root, os.path.relpath(os.path.join(folder, name), dest)), git=False):
                os.remove(os.path.join(folder, name))
