"""Outputs replace regular files atomically and write through everything else: symlinks,
FIFOs, character devices and links into a process's handles (`-o json=/dev/stdout`).
Every special path here is made inside the test's own temporary directory."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from auditor.core.fileio import atomic_file
from conftest import DEMO, ROOT



def write(path, data: bytes = b"new\n") -> None:
    with atomic_file(str(path)) as fh:
        fh.write(data)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_new_file_gets_the_umask_and_no_temporary_file_is_left(tmp_path):
    old = os.umask(0o027)
    try:
        write(tmp_path / "report.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_a_replaced_file_keeps_its_mode(tmp_path):
    secret = tmp_path / "snapshot.json"
    secret.write_bytes(b"old\n")
    secret.chmod(0o600)
    write(secret)
    assert secret.read_bytes() == b"new\n" and stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_replaced_file_keeps_its_owner_where_root_may_give_it(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    owned = tmp_path / "report.json"
    owned.write_bytes(b"old\n")
    os.chown(owned, 12345, 12345)
    write(owned)
    assert (owned.stat().st_uid, owned.stat().st_gid) == (12345, 12345)


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "reports" / "latest.json"
    target.parent.mkdir()
    target.write_bytes(b"old\n")
    link = tmp_path / "report.json"
    link.symlink_to(os.path.relpath(target, tmp_path))
    write(link)
    assert link.is_symlink() and target.read_bytes() == b"new\n"
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "made.json")
    write(link)
    assert link.is_symlink() and (tmp_path / "made.json").read_bytes() == b"new\n"


def test_a_fifo_is_written_through_to_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write(fifo, b"through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode) and leftovers(tmp_path) == []


def test_a_character_device_is_written_in_place_not_replaced(tmp_path):
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device, made here
    except (PermissionError, OSError) as err:
        pytest.skip(f"cannot make a device node here: {err}")
    write(null)
    assert stat.S_ISCHR(null.stat().st_mode) and leftovers(tmp_path) == []


def test_a_link_into_this_process_handles_writes_to_the_open_file(tmp_path):
    """`-o json=/dev/stdout` with stdout redirected to a file: the file the shell opened
    receives the report, and it is the same file (not one renamed over it)."""
    log = tmp_path / "log.txt"
    with open(log, "ab") as held:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{held.fileno()}")
        inode = log.stat().st_ino
        write(link, b"report\n")
        assert log.stat().st_ino == inode and link.is_symlink()
    assert log.read_bytes() == b"report\n"


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        write(tmp_path)


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, **kwargs)


def test_scan_to_a_link_to_its_own_stdout(tmp_path):
    out = tmp_path / "captured.json"
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    with open(out, "wb") as stdout:
        done = subprocess.run([sys.executable, "-m", "auditor", "scan", DEMO, "-o", f"json={link}", "--fail-on",
                               "never"], stdout=stdout, stderr=subprocess.PIPE, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert out.read_text().lstrip().startswith("{") and link.is_symlink()


def test_scan_to_a_directory_is_one_error_line(tmp_path):
    done = run_cli("scan", DEMO, "-o", f"json={tmp_path}")
    assert done.returncode == 2
    assert done.stderr == f"mesh-audit: error: {tmp_path}: cannot write the report: Is a directory\n"


def test_sigterm_while_writing_leaves_no_temporary_file_and_exits_143(tmp_path):
    script = (
        "import sys, time\n"
        "from auditor.cli import terminate_cleanly\n"
        "from auditor.core.fileio import atomic_file\n"
        "terminate_cleanly()\n"
        "try:\n"
        "    with atomic_file(sys.argv[1]) as fh:\n"
        "        fh.write(b'half')\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n"
        "except SystemExit as done:\n"
        "    sys.exit(done.code)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "report.json")], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline() == b"writing\n"
    assert len(leftovers(tmp_path)) == 1  # the temporary file, while writing
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    assert list(tmp_path.iterdir()) == []


def _reading_stdin(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().startswith("0 0x0 ")  # read(0, ...)
    except OSError:
        return False


def test_sigterm_stops_a_scan_with_143(tmp_path):
    """A scan waiting on stdin (a pipe nobody writes) is stopped by SIGTERM: exit 143."""
    proc = subprocess.Popen([sys.executable, "-m", "auditor", "scan", "-f", "-", "-o", f"json={tmp_path / 'r.json'}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not _reading_stdin(proc.pid) and time.monotonic() < deadline:  # started, and waiting on the pipe
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    assert list(tmp_path.iterdir()) == []


def test_stdout_on_a_full_disk_is_one_error_line_and_exit_2(tmp_path):
    full = tmp_path / "full"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # the full device, made here
    except OSError as err:
        pytest.skip(f"cannot make a device node here: {err}")
    with open(full, "wb") as stdout:
        done = subprocess.run([sys.executable, "-m", "auditor", "scan", DEMO], stdout=stdout, stderr=subprocess.PIPE,
                              timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr.decode() == "mesh-audit: error: stdout: cannot write the report: No space left on device\n"


def test_stdout_closed_before_the_run_is_one_error_line(tmp_path):
    done = subprocess.run(["bash", "-c", f'exec 1>&-; exec "{sys.executable}" -m auditor scan "{DEMO}" -q'],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr == "mesh-audit: error: stdout is closed: write the report to a file with -o FORMAT=FILE\n"


def test_a_reader_that_leaves_early_does_not_change_the_verdict(tmp_path):
    """`mesh-audit scan ... | head`: the reader closes the pipe; the run still exits as its
    findings say (the demo has errors: 1), with no traceback."""
    big = tmp_path / "many"
    big.mkdir()
    for i in range(40):  # a report larger than a pipe's buffer
        for source in Path(DEMO).glob("*.yaml"):
            (big / f"{i}-{source.name}").write_text(source.read_text().replace("namespace: ", f"namespace: n{i}-")
                                                    .replace("name: ", f"name: n{i}-"))
    proc = subprocess.Popen([sys.executable, "-m", "auditor", "scan", str(big), "-o", "json", "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(120) == 1
    assert proc.stderr.read() == b""
