"""Paths a scan leaves out: --exclude and the configuration's `exclude` (gitignore-style
patterns), and, inside a git work tree, what git ignores.

Patterns given on the command line are relative to the working directory, those of the
configuration to its file's folder; like .gitignore lines, a pattern without a slash
(`vendor/`, `*.tmpl.yaml`) matches at any depth. Git decides what it ignores itself
(`git ls-files --others --ignored --exclude-standard`), so nested .gitignore files, the
repository's info/exclude and the user's global excludes all count; tracked files are
never "ignored", whatever a pattern says, as with git.
"""

from __future__ import annotations

import os
import subprocess


class Excluder:
    def __init__(self, patterns: list[tuple[str, str]] = (), gitignore: bool = True):
        """`patterns`: (pattern, folder it is relative to)."""
        by_base: dict[str, list[str]] = {}
        for pattern, base in patterns:
            by_base.setdefault(os.path.abspath(base), []).append(pattern)
        if by_base:
            from pathspec import GitIgnoreSpec  # 20 ms to import: only where there are patterns

        self._specs = [(base, GitIgnoreSpec.from_lines(lines)) for base, lines in by_base.items()]
        self._gitignore = gitignore
        self._ignored: dict[str, set[str] | None] = {}  # work tree root -> paths git ignores

    def excluded(self, path: str, is_dir: bool = False, git: bool = True) -> bool:
        """Whether to leave `path` out; `git` False when the folder being walked is itself
        one git ignores (the user named it: what lies in it is wanted)."""
        absolute = os.path.abspath(path)
        suffix = "/" if is_dir else ""
        for base, spec in self._specs:
            relative = os.path.relpath(absolute, base)
            if not relative.startswith("..") and spec.match_file(relative.replace(os.sep, "/") + suffix):
                return True
        return git and self.git_ignores(absolute, is_dir)

    def git_ignores(self, path: str, is_dir: bool = True) -> bool:
        """Whether git ignores `path` (in a work tree, and when .gitignore applies)."""
        if not self._gitignore:
            return False
        absolute = os.path.abspath(path)
        root = work_tree(absolute)
        if root is None:
            return False
        if root not in self._ignored:
            self._ignored[root] = _ignored_by_git(root)
        ignored = self._ignored[root]
        if not ignored:
            return False
        relative = os.path.relpath(absolute, root).replace(os.sep, "/")
        if relative + ("/" if is_dir else "") in ignored:
            return True
        parts = relative.split("/")
        return any("/".join(parts[:i]) + "/" in ignored for i in range(1, len(parts)))


def work_tree(path: str) -> str | None:
    """The top of the git work tree holding `path` (a file or folder), found as git does, by
    the `.git` folder or file; None outside one."""
    probe = path if os.path.isdir(path) else os.path.dirname(path)
    while True:
        if os.path.exists(os.path.join(probe, ".git")):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent


def _ignored_by_git(root: str) -> set[str] | None:
    """Untracked paths git ignores under `root` (folders end with /); None without git."""
    try:
        done = subprocess.run(["git", "-C", root, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory",
                               "-z"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return {p.decode("utf-8", "surrogateescape") for p in done.stdout.split(b"\0") if p}
