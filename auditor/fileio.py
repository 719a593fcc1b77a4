"""Reading and writing mesh-audit's own files: atomic output, and YAML that is checked for
alias bombs and reports errors with their line."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

import yaml

from auditor.errors import UsageError


@contextmanager
def atomic_file(path: str) -> Iterator[BinaryIO]:
    """A binary file whose content replaces `path` only when the block completes: a failed
    or interrupted run leaves the previous file (or none), never a partial one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent) if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_yaml(text: str, name: str, loader) -> tuple:
    """(node tree, data) of a one-document YAML file, refusing alias bombs; a syntax error
    is a UsageError at its line."""
    from auditor.collect.files import check_aliases

    try:
        node = yaml.compose(text, Loader=loader)
        check_aliases(node, name)
        data = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise UsageError(f"invalid YAML: {err.problem or err.context}", name, mark.line + 1 if mark else None) from None
    return node, data
