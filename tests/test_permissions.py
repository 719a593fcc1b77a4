"""Permission cases, with the permission checks root would skip: the scan runs as root
without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv), so a file or folder it may not
read is refused to it as to any user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT

SETPRIV = shutil.which("setpriv")
DROP = "-dac_override,-dac_read_search"


def as_a_user(*args: str, cwd) -> subprocess.CompletedProcess:
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if os.geteuid() != 0:
        command = [sys.executable, "-m", "auditor", *args]  # an ordinary user already meets the checks
    else:
        command = [SETPRIV, f"--bounding-set={DROP}", f"--inh-caps={DROP}", sys.executable, "-m", "auditor", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "ok").mkdir()
    shutil.copy(FIXTURES / "demo" / "payments.yaml", tmp_path / "ok" / "payments.yaml")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(FIXTURES / "demo" / "legacy.yaml", locked / "legacy.yaml")
    locked.chmod(0)
    yield tmp_path
    locked.chmod(0o755)


def test_an_unreadable_subdirectory_is_an_input_error(tree):
    result = as_a_user("scan", str(tree), "-o", "json", "--fail-on", "never", cwd=tree)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"mesh-audit: error: {tree / 'locked'}: cannot read this directory: "
                                          "Permission denied"]


def test_an_unreadable_file_is_an_input_error_named_without_a_line(tree):
    (tree / "ok" / "payments.yaml").chmod(0)
    result = as_a_user("scan", str(tree / "ok"), "--fail-on", "never", cwd=tree)
    assert result.returncode == 2
    assert f"mesh-audit: error: {tree / 'ok' / 'payments.yaml'}: Permission denied" in result.stderr
    assert f"error: {tree / 'ok' / 'payments.yaml'}: Permission" in result.stdout and ":None:" not in result.stdout
