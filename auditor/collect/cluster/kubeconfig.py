"""Which cluster, with which credentials: the kubernetes client's configuration, picked the
way kubectl picks it (kubeconfig and context, or the pod's service account)."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import UsageError

# Where a pod finds its service account (kubernetes' in-cluster config reads the same files).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ClusterError(Exception):
    """The cluster cannot be read at all: unreachable, credentials rejected, TLS failure."""


@dataclass
class Connection:
    config: object  # kubernetes.client.Configuration
    context: str | None
    server: str


def connect(kubeconfig: str | None = None, context: str | None = None, environ=None) -> Connection:
    """Build the client configuration the way kubectl would pick it.

    `--kubeconfig`, else `$KUBECONFIG` (read now, not when the client was imported), else
    `~/.kube/config`; with none of them, the pod's service account when running in a pod.
    Anything the client prints while loading goes to stderr, never into a report on stdout.
    """
    environ = os.environ if environ is None else environ
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
                    "no cluster to scan: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running "
                    "in a pod; pass -f or --snapshot to scan files"
                )
            return _in_cluster(config, environ, ConfigException)
        files = [p for p in paths.split(os.pathsep) if p]
        missing = [p for p in files if not Path(p).exists()]
        if kubeconfig and missing:
            raise UsageError("kubeconfig not found", missing[0])
        try:
            from kubernetes.config import kube_config

            loader = kube_config._get_kube_config_loader(filename=paths, active_context=context, persist_config=False)
            loader.load_and_set(config)
            current = loader.current_context.get("name") if loader.current_context else context
        except ConfigException as err:
            raise UsageError(f"kubeconfig: {first_line(err)}", files[0] if len(files) == 1 else paths) from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise UsageError(f"kubeconfig could not be read: {first_line(err)}", files[0] if len(files) == 1 else paths) from None
        except Exception as err:  # exec plugins and auth providers raise their own types
            raise ClusterError(f"credentials for context {context or '(current)'}: {first_line(err)}") from None
    return Connection(config, current, config.host)


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
    return Connection(config, "in-cluster", config.host)


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
