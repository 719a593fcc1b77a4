"""What every command shares: the error line and exit codes, output files, and the
options for reading a cluster."""

from __future__ import annotations

import sys

import click

from auditor.errors import UsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CLUSTER = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE):
    click.echo(f"mesh-audit: error: {message}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"mesh-audit: warning: {message}", err=True)


def call(function, *args, **kwargs):
    """Run a library call; a UsageError (exit 2) or ClusterError (exit 3) becomes one line."""
    from auditor.collect.cluster.kubeconfig import ClusterError

    try:
        return function(*args, **kwargs)
    except ClusterError as err:
        fail(str(err), EXIT_CLUSTER)
    except UsageError as err:
        fail(str(err))


def write_output(text: str, path: str | None) -> None:
    """Write to stdout, or atomically to a file (a failed run leaves no half-written report)."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from auditor.fileio import atomic_file

    try:
        with atomic_file(path) as fh:
            fh.write(text.encode("utf-8"))
    except OSError as err:
        fail(f"{path}: cannot write the report: {err.strerror or err}")


def where(problem: dict) -> str:
    """`file:line: message` of a report's warning or error."""
    if problem.get("file") and problem.get("line"):
        return f"{problem['file']}:{problem['line']}: {problem['message']}"
    if problem.get("file"):
        return f"{problem['file']}: {problem['message']}"
    return problem["message"]


class VersionType(click.ParamType):
    """An Istio version option: 1.24 or 1.24.2."""

    name = "X.Y[.Z]"

    def convert(self, value, param, ctx):
        from auditor.versions import Version, parse_version

        if value is None or isinstance(value, Version):
            return value
        version = parse_version(value)
        if version is None:
            self.fail(f"{value!r} is not a version like 1.24 or 1.24.2", param, ctx)
        return version


VERSION = VersionType()

rules_dir_option = click.option(
    "--rules-dir", "rules_dirs", multiple=True, metavar="DIR", type=click.Path(exists=True, file_okay=False),
    help="Also load the rules in this directory (repeatable); see 'mesh-audit rules test'.",
)


follow_symlinks_option = click.option(
    "--follow-symlinks", is_flag=True,
    help="Follow symlinks that lead out of a directory being scanned (by default they are skipped, with a warning).")


def file_options(func):
    """Options of commands that read files: what to leave out, and how to render."""
    options = [
        click.option("--exclude", "exclude", multiple=True, metavar="PATTERN",
                     help="Do not scan paths matching this gitignore-style pattern (repeatable; also 'exclude:' in the "
                          "configuration)."),
        click.option("--no-gitignore", "no_gitignore", is_flag=True,
                     help="Also scan what .gitignore ignores (by default skipped inside a git work tree)."),
        click.option("--require-rendering", is_flag=True,
                     help="A Helm chart or Kustomize directory that cannot be rendered (helm or kustomize missing) "
                          "makes the scan incomplete (exit 3) instead of a warning."),
        follow_symlinks_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def cluster_options(func):
    """Options of every command that reads a live cluster."""
    options = [
        click.option("--kubeconfig", metavar="FILE", help="Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)."),
        click.option("--context", metavar="NAME", help="Kubeconfig context (default: the current one)."),
        click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
                     help="Audit only these namespaces (repeatable; default all). Istio's own namespaces are read too."),
        click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True, metavar="SECONDS",
                     help="Upper bound on the whole collection."),
        click.option("--allow-partial", is_flag=True,
                     help="Do not exit 3 when some resources could not be collected (they are still reported)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def cluster_source(opts: dict, quiet: bool):
    from auditor.api import ClusterSource

    return ClusterSource(opts["kubeconfig"], opts["context"], tuple(opts["namespaces"]), opts["timeout"], progress=not quiet)


def load_input(paths, snapshot_path, opts: dict, quiet: bool, jobs=None, settings=None):
    """Objects from files (-f), a snapshot (--snapshot) or, with neither, the live cluster."""
    from auditor import api

    if paths or snapshot_path:
        return call(api.load, list(paths) or None, snapshot=snapshot_path, jobs=jobs,
                    follow_symlinks=opts.get("follow_symlinks", False), settings=settings)
    return call(api.load, cluster_source(opts, quiet))


def report_gaps(gaps: list[dict], quiet: bool) -> None:
    from auditor.report import describe_gap

    if not quiet:
        for gap in gaps:
            warn(f"not collected: {describe_gap(gap)}")
