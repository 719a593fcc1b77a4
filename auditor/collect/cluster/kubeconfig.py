"""Which cluster, with which credentials: the kubernetes client's configuration, picked the
way kubectl picks it (kubeconfig and context, or the pod's service account)."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from auditor.core.errors import ClusterError, UsageError
from auditor.core.words import did_you_mean

# Where a pod finds its service account (kubernetes' in-cluster config reads the same files).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class Connection:
    config: object  # kubernetes.client.Configuration
    context: str | None
    server: str


def connect(kubeconfig: str | None = None, context: str | None = None, environ=None,
            timeout: float | None = None) -> Connection:
    """Build the client configuration the way kubectl would pick it.

    `--kubeconfig`, else `$KUBECONFIG` (read now, not when the client was imported), else
    `~/.kube/config`; with none of them, the pod's service account when running in a pod.
    Anything the client prints while loading goes to stderr, never into a report on stdout.
    An exec credential plugin gets `timeout` seconds (--timeout), each time it runs.
    """
    environ = os.environ if environ is None else environ
    require_client()
    with contextlib.redirect_stdout(sys.stderr):
        from kubernetes.client import Configuration
        from kubernetes.config.config_exception import ConfigException

        config = Configuration()
        paths = kubeconfig or environ.get("KUBECONFIG")
        if not paths:
            default = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
            paths = str(default) if default.exists() else None
        if paths is None:
            if not environ.get("KUBERNETES_SERVICE_HOST"):
                raise ClusterError(
                    "no cluster to read: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running "
                    "in a pod"
                )
            return _in_cluster(config, environ, ConfigException)
        # An explicit --kubeconfig is one file, whatever characters its path holds; only
        # $KUBECONFIG is a list, as kubectl reads them.
        files = [paths] if kubeconfig else [p for p in paths.split(os.pathsep) if p]
        missing = [p for p in files if not Path(p).exists()]
        if kubeconfig and missing:
            raise UsageError("kubeconfig not found", missing[0])
        documents = {p: _read_kubeconfig(p) for p in files if p not in missing}
        if timeout is not None:
            _bound_plugins(timeout)
        try:
            loader = _loader(files, documents, context)
            with _client_errors() as logged:
                loader.load_and_set(config)
            if logged:  # the client logs a failed exec plugin and goes on without credentials
                raise ClusterError(f"credentials for context {_context_name(loader, context)}: {logged[0]}")
            current = _context_name(loader, context)
        except ConfigException as err:
            where = files[0] if len(files) == 1 else paths
            names = _context_names_in(documents.values())
            if context is not None and context not in names:  # say which there are, as kubectl would have you look
                known = ", ".join(names) if names else "none"
                raise UsageError(f"kubeconfig: no context named {context!r}{did_you_mean(context, names)}; it has: "
                                 f"{known}", where) from None
            raise UsageError(f"kubeconfig: {first_line(err)}", where) from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise UsageError(f"kubeconfig could not be read: {first_line(err)}", files[0] if len(files) == 1 else paths) from None
        except ClusterError:
            raise
        except Exception as err:  # exec plugins and auth providers raise their own types
            raise ClusterError(f"credentials for context {context or '(current)'}: {first_line(err)}") from None
    return Connection(config, current, shown_url(config.host))


def _bound_plugins(seconds: float) -> None:
    """The kubernetes client waits for an exec credential plugin as long as it runs (a
    plugin stuck on a login prompt, a network call that never returns); bound each run to
    `seconds`, then stop it. The client logs the failure, which connect() reports."""
    import subprocess
    from types import SimpleNamespace

    from kubernetes.config import exec_provider
    from kubernetes.config.config_exception import ConfigException

    class Bounded(subprocess.Popen):
        def communicate(self, input=None, timeout=None):
            try:
                return super().communicate(input, timeout=seconds if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                super().communicate()
                raise ConfigException(f"exec: the credential plugin did not finish within {seconds:g} s "
                                      "(--timeout)") from None

    exec_provider.subprocess = SimpleNamespace(Popen=Bounded, PIPE=subprocess.PIPE)


def shown_url(url: str | None) -> str | None:
    """A server URL fit to print or store: without user:password@ and without a query,
    which can hold credentials (`https://admin:s3cret@10.0.0.1:6443` -> `https://10.0.0.1:6443`)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a server URL that does not parse)"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def require_client() -> None:
    """UsageError when the kubernetes client, an extra, is not installed."""
    import importlib.util

    if importlib.util.find_spec("kubernetes") is None:
        raise UsageError("reading a live cluster needs the kubernetes client, which this install of mesh-audit "
                         "leaves out: pip install 'mesh-audit[cluster]' (files and snapshots need nothing more)")


def preload() -> None:
    """Import the kubernetes client now (about 0.2 s), so that processes forked to read
    several clusters share it instead of each importing it."""
    import importlib

    require_client()
    with contextlib.redirect_stdout(sys.stderr):
        for module in ("kubernetes.client", "kubernetes.config.kube_config"):
            importlib.import_module(module)


def context_names(kubeconfig: str | None = None, environ=None) -> list[str]:
    """Every context the kubeconfig defines (kubectl config get-contexts -o name), in the
    order written; several files of $KUBECONFIG in order, the first of a name winning."""
    environ = os.environ if environ is None else environ
    paths = kubeconfig or environ.get("KUBECONFIG")
    if not paths:
        default = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
        paths = str(default) if default.exists() else None
    if paths is None:
        raise UsageError("--all-contexts: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config)")
    files = [paths] if kubeconfig else [p for p in paths.split(os.pathsep) if p and Path(p).exists()]
    return _context_names_in(_read_kubeconfig(path) for path in files)


def _context_names_in(documents) -> list[str]:
    """The context names of parsed kubeconfig documents, in order, each once."""
    names: list[str] = []
    for doc in documents:
        for entry in (doc.get("contexts") if isinstance(doc, dict) else None) or []:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name and name not in names:
                names.append(name)
    return names


def _read_kubeconfig(path: str):
    """A kubeconfig file parsed, or a UsageError at its line (exit 2: a file to fix, not a
    cluster that cannot be reached)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise UsageError(f"kubeconfig is not valid YAML: {err.problem or err.context}", path,
                         mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"kubeconfig is not valid YAML: {first_line(err)}", path) from None
    except OSError as err:
        raise UsageError(f"kubeconfig could not be read: {err.strerror or err}", path) from None


def _loader(files: list[str], documents: dict, context: str | None):
    """The client's loader: one file's document as it is (relative paths from its folder),
    several merged the client's way."""
    from kubernetes.config import kube_config

    if len(files) == 1:
        doc = documents.get(files[0])
        if not isinstance(doc, dict):
            from kubernetes.config.config_exception import ConfigException

            raise ConfigException("Invalid kube-config file. No configuration found.")
        return kube_config.KubeConfigLoader(config_dict=doc, config_base_path=os.path.dirname(os.path.abspath(files[0])),
                                            active_context=context)
    return kube_config._get_kube_config_loader(filename=os.pathsep.join(files), active_context=context,
                                               persist_config=False)


def _context_name(loader, context: str | None) -> str | None:
    return loader.current_context.get("name") if loader.current_context else context


@contextlib.contextmanager
def _client_errors():
    """Error messages the kubernetes client logs instead of raising (a failed exec credential
    plugin), kept off stderr and handed to the caller."""
    import logging

    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                messages.append(first_line(Exception(record.getMessage())))

    root = logging.getLogger()
    handler = Keep()
    root.addHandler(handler)  # with a handler in place, logging.error() does not print ERROR:root:...
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def _in_cluster(config, environ, config_exception) -> Connection:
    from kubernetes.config.incluster_config import InClusterConfigLoader

    try:
        InClusterConfigLoader(
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            environ=environ,
        ).load_and_set(config)
    except config_exception as err:
        raise ClusterError(f"in-cluster configuration: {first_line(err)}") from None
    return Connection(config, "in-cluster", shown_url(config.host))


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
