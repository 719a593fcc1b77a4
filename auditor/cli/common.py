"""What every command shares: the error line and exit codes, output files, and the
options for reading a cluster."""

from __future__ import annotations

import os
import sys

import click

from auditor.core.errors import UsageError
from auditor.core.words import printable

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CLUSTER = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE):
    error(message)
    sys.exit(code)


def error(message) -> None:
    """One error line on stderr; what the input wrote in it is shown, never obeyed
    (words.printable: no terminal escapes, no workflow commands)."""
    click.echo(f"mesh-audit: error: {printable(str(message))}", err=True)


def warn(message: str) -> None:
    click.echo(f"mesh-audit: warning: {printable(str(message))}", err=True)


def call(function, *args, **kwargs):
    """Run a library call; a UsageError (exit 2) or ClusterError (exit 3) becomes one line."""
    from auditor.core.errors import ClusterError

    try:
        return function(*args, **kwargs)
    except ClusterError as err:
        fail(str(err), EXIT_CLUSTER)
    except UsageError as err:
        fail(str(err))


def write_output(text: str, path: str | None) -> None:
    """Write to stdout, or atomically to a file (a failed run leaves no half-written report)."""
    if path is None:
        if sys.stdout is None:  # started with stdout closed (`>&-`)
            fail("stdout is closed: write the report to a file with -o FORMAT=FILE")
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left (`| head`): what it wanted it has; the gate still decides
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError as err:  # a full disk, a closed descriptor
            fail(f"stdout: cannot write the report: {err.strerror or err}")
        return
    from auditor.core.fileio import atomic_file

    try:
        with atomic_file(path) as fh:
            fh.write(text.encode("utf-8"))
    except OSError as err:
        fail(f"{path}: cannot write the report: {err.strerror or err}")


def terminal_width(path: str | None) -> int | None:
    """How wide a text report may be: the terminal's width (or COLUMNS) for stdout; None
    (the report's own default) for a file."""
    if path is not None:
        return None
    import shutil

    return shutil.get_terminal_size((0, 0)).columns or None


def where(problem: dict) -> str:
    """`file:line: message` of a report's warning or error."""
    if problem.get("file") and problem.get("line"):
        return f"{problem['file']}:{problem['line']}: {problem['message']}"
    if problem.get("file"):
        return f"{problem['file']}: {problem['message']}"
    return problem["message"]


def outputs_parser(formats: list[str], example: str):
    """The callback of a repeatable `-o FORMAT` or `-o FORMAT=FILE` option: a list of
    (format, file or None for stdout), at most one to stdout (`example` shows another
    going to a file)."""
    def parse(ctx, param, values) -> list[tuple[str, str | None]]:
        outputs = []
        for value in values or ("table",):
            fmt, _, path = value.partition("=")
            if fmt not in formats:
                raise click.BadParameter(f"{fmt!r} is not one of {', '.join(formats)}", ctx, param)
            if "=" in value and not path:
                raise click.BadParameter(f"{value!r} names no file after '='", ctx, param)
            outputs.append((fmt, path or None))
        if sum(path is None for _, path in outputs) > 1:
            raise click.BadParameter(f"only one output can go to stdout; give the others a file: -o {example}", ctx, param)
        return outputs
    return parse


class VersionType(click.ParamType):
    """An Istio version option: 1.24 or 1.24.2."""

    name = "X.Y[.Z]"

    def convert(self, value, param, ctx):
        from auditor.core.versions import Version, checked_version

        if value is None or isinstance(value, Version):
            return value
        try:
            version, note = checked_version(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        if note:
            warn(note)
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
        click.option("--context", "contexts", multiple=True, metavar="[NAME=]CONTEXT",
                     help="Kubeconfig context (default: the current one). Repeat it to audit several clusters as one "
                          "mesh, each named by its context or by NAME."),
        click.option("--all-contexts", is_flag=True, help="Audit every context of the kubeconfig as one mesh."),
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


def cluster_sources(opts: dict, quiet: bool) -> dict:
    """The clusters to read, by name: one (the current or given context) under the name
    None, or several with --context given more than once, or --all-contexts."""
    from auditor.api import ClusterSource

    contexts = list(opts.get("contexts") or ())
    if opts.get("all_contexts"):
        from auditor.collect.cluster.kubeconfig import context_names

        if contexts:
            fail("use --context or --all-contexts, not both")
        contexts = call(context_names, opts["kubeconfig"])
        if not contexts:
            fail("--all-contexts: the kubeconfig defines no contexts")
    single = len(contexts) <= 1
    out: dict = {}
    for value in contexts or [None]:
        name, context = _named_context(value) if value is not None else (None, None)
        if single:
            name = None
        elif name in out:
            fail(f"--context {value}: two clusters named {name!r}; name them with --context NAME=CONTEXT")
        out[name] = ClusterSource(opts["kubeconfig"], context, tuple(opts["namespaces"]), opts["timeout"],
                                  progress=not quiet and single)
    return out


def _named_context(value: str) -> tuple[str, str]:
    """`NAME=CONTEXT`, else the context's name made fit for a cluster name (letters,
    digits, '.', '_', '-'), as SARIF paths and reports name the cluster."""
    import re

    from auditor.model.clusters import NAME

    name, sep, context = value.partition("=")
    if sep and NAME.match(name) and context:
        return name, context
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._")[:63] or "cluster", value


def cluster_source(opts: dict, quiet: bool):
    """The one cluster to read; exit 2 when several were named."""
    sources = cluster_sources(opts, quiet)
    if len(sources) > 1:
        fail("this command reads one cluster: give --context once")
    return next(iter(sources.values()))


def split_named(paths) -> tuple[dict[str, list[str]], list[str]]:
    """(`NAME=PATH` inputs by cluster name, the other paths): a path that exists as written
    is a path, never a NAME=."""
    from auditor.model.clusters import NAME

    named: dict[str, list[str]] = {}
    plain = []
    for path in paths:
        name, sep, rest = path.partition("=")
        if sep and rest and NAME.match(name) and not os.path.exists(path):
            named.setdefault(name, []).append(rest)
        else:
            plain.append(path)
    return named, plain


def named_paths(paths) -> dict[str, list[str]] | None:
    """`-f NAME=PATH` inputs by cluster (a path that exists as written is a path, never a
    NAME=); None when no input names a cluster. Exit 2 when some do and some do not."""
    named, plain = split_named(paths)
    if named and plain:
        fail(f"-f {plain[0]}: give every input a cluster (-f NAME=PATH), or none")
    return named or None


def load_input(paths, snapshot_path, opts: dict, quiet: bool, jobs=None, settings=None):
    """Objects from files (-f, NAME=PATH for several clusters), a snapshot (--snapshot) or,
    with neither, the live cluster (several with --context repeated or --all-contexts)."""
    from auditor import api

    named = named_paths(paths)
    if named is not None:
        if snapshot_path:
            fail("use -f or --snapshot, not both")
        if len(named) < 2:
            fail(f"-f {next(iter(named))}=...: name at least two clusters to audit them as one mesh")
        return call(api.load, named, jobs=jobs, follow_symlinks=opts.get("follow_symlinks", False), settings=settings)
    if paths or snapshot_path:
        return call(api.load, list(paths) or None, snapshot=snapshot_path, jobs=jobs,
                    follow_symlinks=opts.get("follow_symlinks", False), settings=settings, progress=not quiet)
    sources = cluster_sources(opts, quiet)
    return call(_live, api.load, sources if len(sources) > 1 else sources[None])


def _live(load, sources):
    """A live cluster for a command that also reads files: where there is no cluster, say how
    to give it files instead (`mesh-audit snapshot` reads only clusters, so says less)."""
    from auditor.core.errors import ClusterError

    try:
        return load(sources)
    except ClusterError as err:
        if str(err).startswith("no cluster to read"):
            raise ClusterError(f"{err}; to read files, give them as PATHs (or -f), or --snapshot FILE") from None
        raise


def change_options(func):
    """Options of commands that judge a change against the cluster it lands in."""
    options = [
        click.option("--against", metavar="SNAPSHOT|cluster",
                     help="Apply the PATHs (the change) on top of this snapshot, or of the live cluster ('cluster': the "
                          "kubeconfig's context, or --context), as kubectl apply would, and audit the result. "
                          "NAME=PATH pins a change to one cluster of a snapshot of several."),
        click.option("--delete", "deletes", multiple=True, metavar="KIND/NS/NAME",
                     help="With --against: the change deletes this object (KIND/NAME when cluster-scoped). Repeatable."),
        click.option("--diff-base", metavar="GIT_REF",
                     help="With --against: objects the PATHs held at this git ref and no longer hold are deleted, "
                          "as a pull request that removes them would."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_change(paths, snapshot_path, opts: dict, quiet: bool, jobs=None, settings=None):
    """The change in `paths` applied to `--against` (or to `--snapshot` given with paths):
    an auditor.change.Applied; None when the command judges no change."""
    from auditor import api

    against = opts.get("against")
    if against and snapshot_path:
        fail("use --against or --snapshot, not both")
    if not against and snapshot_path and paths:
        against = snapshot_path  # --snapshot S -f PATH: the change in PATH against S
    if not against:
        for option, given in (("--delete", opts.get("deletes")), ("--diff-base", opts.get("diff_base")),
                              ("--changes-only", opts.get("changes_only"))):
            if given:
                fail(f"{option} judges a change against a base: add --against SNAPSHOT or --against cluster")
        return None
    named, plain = split_named(paths)
    namespaces = opts.get("namespaces") or ()
    if against == "cluster":
        if opts.get("no_cluster"):
            fail("--against cluster reads the live cluster, which --no-cluster rules out: give a snapshot")
        sources = cluster_sources(opts, quiet)
        against = sources if len(sources) > 1 else sources[None]
    elif not os.path.exists(against):
        fail(f"--against {against}: no such file (give a snapshot written by 'mesh-audit snapshot', or 'cluster')")
    return call(api.apply, {None: plain, **named}, against, deletes=tuple(opts.get("deletes") or ()),
                diff_base=opts.get("diff_base"), namespace=namespaces[0] if len(namespaces) == 1 else None,
                settings=settings, jobs=jobs, follow_symlinks=opts.get("follow_symlinks", False))


def report_gaps(gaps: list[dict], quiet: bool) -> None:
    from auditor.model.report import describe_gap

    if not quiet:
        for gap in gaps:
            warn(f"not collected: {describe_gap(gap)}")
