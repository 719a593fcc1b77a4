"""Check that a change kept mesh-audit's reports byte for byte: run the same scans with the
working tree and with an earlier commit, and compare JSON, SARIF and the migration plan
(as JSON, with --verify).

    python bench/same_output.py                       # against HEAD
    python bench/same_output.py --ref main~3 --size 10k

The earlier commit is checked out in a temporary git worktree and run from there with
`python -m auditor` (no install needed: a checkout finds its rules next to the package).
Inputs: the bundled demo, and a generated cluster as a snapshot, a `kubectl get -o json`
dump, a `kubectl get -o yaml` dump and a directory of YAML (bench/data/<size>, generated
on first use). Exit 1 when any report differs, with the first differing line of each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("json", "sarif", "plan")


def inputs(size: str | None) -> list[list[str]]:
    """Scan arguments, one list per input, relative to the repository root."""
    scans = [["-f", "fixtures/demo"]]
    if size:
        data = ROOT / "bench" / "data" / size
        if not data.is_dir():
            pods = int(float(size.rstrip("k")) * 1000)
            subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--pods", str(pods), "--out", str(data)],
                           check=True, stdout=subprocess.DEVNULL)
        scans += [["--snapshot", str(data / "snapshot.json")], ["-f", str(data / "dump.json")], ["-f", str(data / "dump.yaml")],
                  ["-f", str(data / "yaml")]]
    return scans


def run(tree: Path, args: list[str], fmt: str) -> bytes:
    env = dict(os.environ, PYTHONPATH=str(tree))
    if fmt == "plan":
        command = ["plan", *args, "-o", "json", "--verify", "-q"]
    else:
        command = ["scan", *args, "-o", fmt, "--fail-on", "never", "-q"]
    done = subprocess.run([sys.executable, "-m", "auditor", *command], cwd=ROOT, env=env, capture_output=True)
    return done.stdout + b"\n--- stderr ---\n" + done.stderr + f"\n--- exit {done.returncode}\n".encode()


def first_difference(a: bytes, b: bytes) -> str:
    for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), start=1):
        if x != y:
            return f"line {number}:\n  before: {x[:200]!r}\n  after:  {y[:200]!r}"
    return f"lengths differ ({len(a)} and {len(b)} bytes)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD", help="the commit to compare with (default HEAD)")
    parser.add_argument("--size", default="10k", help="generated cluster size, or '' for the demo alone")
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mesh-audit-ref-") as tmp:
        before = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.ref], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for scan in inputs(args.size or None):
                for fmt in FORMATS:
                    old, new = run(before, scan, fmt), run(ROOT, scan, fmt)
                    same = old == new
                    failed += not same
                    print(f"{'same' if same else 'DIFFERENT'}  {fmt:5}  {' '.join(scan)}")
                    if not same:
                        print("  " + first_difference(old, new))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
