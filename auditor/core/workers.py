"""Running a loop's shares in forked processes, for the heaviest loops of a large scan.

The loops that use it: reading many large files (collect/files.py) and the items of one
large JSON dump, YAML List or snapshot (collect/jsonlist/items.py, yamldocs/lists.py,
snapshot/shares.py), where each share parses on its own and a child pickles back what it
read; evaluating rules (engine.py), where once facts are built one object's evaluation
depends on no other's, so each child evaluates its share on its copy-on-write view of the
facts and sends back only its hits; and the plan's namespaces (plan/planner.py). In each,
the parent does the first share itself and merges in order, so the result is the one a
single process gets.

Forking is used only where it is safe and pays off: on Linux, in a process with a single
OS thread (no collector thread or native runtime thread can hold a lock the child would
need), for loops big enough to cover the fork. A child that fails in any way (killed,
crashed, unreadable result) costs only time: the parent runs that share itself, so a
problem surfaces exactly as it would in a single process.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_AUTO_JOBS = 4


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_jobs() -> int:
    """Processes a loop may use when the user did not say: the CPUs this process may run
    on, at most MAX_AUTO_JOBS (beyond that, merging and forking eat the gain)."""
    return max(1, min(available_cpus(), MAX_AUTO_JOBS))


def fork_safe() -> bool:
    """Linux, and this process runs one OS thread (threads started by native code count)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def split(weights: Sequence[float], parts: int) -> list[range]:
    """`parts` contiguous ranges of indices whose weights (estimated costs) add up to about
    the same. Contiguous, because neighbours were allocated together: a child that touches
    only its own share's memory copies fewer pages (every reference count it changes
    dirties a page it shares with the parent)."""
    total = float(sum(weights))
    shares, start, acc = [], 0, 0.0
    for i, w in enumerate(weights):
        acc += w
        if len(shares) < parts - 1 and acc >= total * (len(shares) + 1) / parts:
            shares.append(range(start, i + 1))
            start = i + 1
    shares.append(range(start, len(weights)))
    return shares + [range(len(weights), len(weights))] * (parts - len(shares))


def map_shares(work: Callable[[T], R], shares: Sequence[T]) -> list[R]:
    """`work(share)` for every share, in order: the first in this process, the others in
    forked children when fork_safe(). The results of children must pickle."""
    if len(shares) < 2 or not fork_safe():
        return [work(share) for share in shares]
    children: list[tuple[int, int] | None] = []
    try:
        for share in shares[1:]:
            children.append(_fork(work, share))
        results = [work(shares[0])]
        for i, share in enumerate(shares[1:]):
            result = _collect(children[i])
            children[i] = None  # reaped, its pipe closed
            results.append(result if result is not _FAILED else work(share))
        return results
    finally:  # interrupted or failed: no child outlives the run
        for child in children:
            if child is not None:
                _kill(child)


_FAILED = object()


def as_completed(work: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
    """(index, work(item)) for every item, each computed in a forked child when
    fork_safe(), yielded as the children finish, so the caller can use one result while
    the others are still being computed (the parent only waits and reads). Without
    forking, in order, here. A child that fails in any way is run again here."""
    import selectors

    if len(items) < 2 or not fork_safe():
        for i, item in enumerate(items):
            yield i, work(item)
        return
    children: dict[int, tuple[int, int, bytearray]] = {}  # read end -> (index, pid, data)
    again: list[int] = []
    selector = selectors.DefaultSelector()
    try:
        for i, item in enumerate(items):
            child = _fork(work, item)
            if child is None:
                again.append(i)
                continue
            children[child[1]] = (i, child[0], bytearray())
            selector.register(child[1], selectors.EVENT_READ)
        while children:
            for key, _ in selector.select():
                i, pid, data = children[key.fd]
                chunk = os.read(key.fd, 1 << 20)
                if chunk:
                    data += chunk
                    continue
                selector.unregister(key.fd)
                del children[key.fd]
                os.close(key.fd)
                result = _result(pid, bytes(data))
                yield i, (result if result is not _FAILED else work(items[i]))
        for i in again:
            yield i, work(items[i])
    finally:  # interrupted or failed: no child outlives the run
        for fd, (_, pid, _) in children.items():
            _kill((pid, fd))
        selector.close()


def _fork(work: Callable, share) -> tuple[int, int] | None:
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: never returns into the caller
        status = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it quietly; the parent reports
            os.close(read_end)
            data = pickle.dumps(work(share), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
            status = 0
        except BaseException:
            pass
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _collect(child: tuple[int, int] | None):
    """The child's result, or _FAILED (no child, a crash, a non-zero exit, a short read)."""
    if child is None:
        return _FAILED
    pid, read_end = child
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    return _result(pid, data)


def _result(pid: int, data: bytes):
    """A finished child's result (reaped here), or _FAILED."""
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return _FAILED
    try:
        return pickle.loads(data)
    except Exception:
        return _FAILED


def _kill(child: tuple[int, int]) -> None:
    pid, read_end = child
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass
    try:
        os.close(read_end)
    except OSError:
        pass
