"""Command line: parse options, call the library (auditor.api), pick a reporter, set the
exit code. One module per command.

Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it (for `plan`: a
failed --verify, or a namespace named with -n that cannot move); 2 usage, input
or rule-file errors (the report of what did load is still written); 3 the cluster could
not be read, or something was not collected (unless --allow-partial); 130 interrupted.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

import click

from auditor import __version__
from auditor.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, write_output
from auditor.cli.explain import explain_cmd
from auditor.cli.plan import plan_cmd
from auditor.cli.rules import rules
from auditor.cli.scan import scan
from auditor.cli.serve import serve_cmd
from auditor.cli.snapshot import snapshot_cmd
from auditor.core.words import printable

__all__ = ["cli", "main", "terminate_cleanly", "write_output"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mesh-audit")
def cli() -> None:
    """Audit Istio sidecar and ambient configuration for settings the data plane ignores."""


for command in (scan, plan_cmd, explain_cmd, snapshot_cmd, rules, serve_cmd):
    cli.add_command(command)


def main() -> None:
    """The console script: click's own handling, except that Ctrl-C exits 130 at once.

    Outputs are written through temporary files, so an interrupted run leaves no partial
    report or snapshot. os._exit skips waiting for collector threads still blocked in a
    request; there is nothing left for them to finish."""
    # A run is short and builds millions of objects without cycles; the cyclic garbage
    # collector would rescan them all again and again (seconds on a 50k-pod snapshot).
    gc.disable()
    terminate_cleanly()
    try:
        returned = cli.main(prog_name="mesh-audit", standalone_mode=False)
    except SystemExit as done:
        leave(done.code)  # here, while the exception still holds the command's frames
    except click.exceptions.Abort as err:
        if isinstance(err.__context__, EOFError):  # click turns any EOFError into Abort: not a Ctrl-C
            sys.stderr.write(printable(f"mesh-audit: error: an input ended before it was complete ({err.__context__})")
                             + "\n")
            leave(EXIT_USAGE)
        _interrupted()
    except KeyboardInterrupt:
        _interrupted()
    except click.UsageError as err:  # one line, as every other error
        command = err.ctx.command_path if err.ctx is not None else "mesh-audit"
        sys.stderr.write(printable(f"mesh-audit: error: {err.format_message()} (see '{command} --help')") + "\n")
        leave(err.exit_code)
    except click.ClickException as err:
        err.show()
        leave(err.exit_code)
    except BrokenPipeError:  # `mesh-audit ... | head`: the reader left; that is not an error
        os._exit(0)
    leave(returned if isinstance(returned, int) else EXIT_OK)


EXIT_TERMINATED = 128 + signal.SIGTERM


def terminate_cleanly() -> None:
    """SIGTERM (a CI job cancelled, a pod stopped) unwinds like Ctrl-C: the temporary file
    of a report or snapshot being written is removed, and the exit code is 143."""
    def stop(signum, frame):
        raise SystemExit(EXIT_TERMINATED)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, stop)


def leave(code) -> None:
    """Leave without tearing down what the run built. Every report and snapshot is closed
    by now (written through atomic_file), so what is left is freeing objects one by one:
    about a quarter of a second for a 50,000-pod cluster, for memory the OS reclaims
    anyway. Codes follow sys.exit: None is 0, a string is printed and exits 1."""
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    try:
        if sys.stdout is not None:  # None when started with stdout closed
            sys.stdout.flush()
    except BrokenPipeError:
        pass
    except OSError:  # a full disk: the report's own write said so, with its exit code
        pass
    if sys.stderr is not None:
        sys.stderr.flush()
    os._exit(code)


def _interrupted() -> None:
    sys.stderr.write("mesh-audit: interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
