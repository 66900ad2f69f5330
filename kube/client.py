"""The one loader of the kubernetes client's configuration, for every process of the project.

A kubeconfig named on the command line is checked before the client opens it (``kube.regular_file``:
a FIFO would block the client for good, ``/dev/zero`` never ends, a directory is no file); without
one, the pod's service account is used (in-cluster), else ``$KUBECONFIG`` / ``~/.kube/config``, each
existing file checked the same way. Every failure is one ``KubeConfigError`` naming the source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import yaml
from kubernetes import client, config as config_module
from kubernetes.config.config_exception import ConfigException

from kube.regular_file import file_problem

# The kubernetes client's loaders are unannotated.
_config: Any = config_module
# Where the client looks without --kubeconfig (kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION).
DEFAULT_KUBECONFIG: Final = "~/.kube/config"
# What the client raises for an unusable file: its own error, unreadable, malformed YAML or fields.
_LOAD_ERRORS: Final = (ConfigException, OSError, TypeError, ValueError, KeyError, yaml.YAMLError)


class KubeConfigError(ValueError):
    """No usable Kubernetes configuration; ``str()`` names the source and the reason in one line."""


def _check(path: str, source: str) -> None:
    problem = file_problem(path)
    if problem:
        raise KubeConfigError(f"{source} {path}: {problem}")


def _default_paths(environ: Mapping[str, str]) -> list[str]:
    """The files the client merges without --kubeconfig: $KUBECONFIG (a path list), else ~/.kube/config."""
    paths = environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [os.path.expanduser(path) for path in paths.split(os.pathsep) if path]


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for ``kubeconfig``, else in-cluster, else $KUBECONFIG / ~/.kube/config.

    The configuration also becomes the process default (leader election's Lease lock and
    ``client.CoreV1Api()`` without arguments use it). KubeConfigError when none is usable.
    """
    try:
        if kubeconfig:
            _check(kubeconfig, "--kubeconfig")
            _config.load_kube_config(config_file=kubeconfig)
            return client.ApiClient()
        try:
            _config.load_incluster_config()
            return client.ApiClient()
        except ConfigException:
            pass  # not in a pod: the kubeconfig files, as kubectl reads them
        existing = [path for path in _default_paths(os.environ) if os.path.exists(path)]
        if not existing:
            raise KubeConfigError("no Kubernetes configuration: not in a pod (no service account) and no"
                                  f" kubeconfig ({os.environ.get('KUBECONFIG') or DEFAULT_KUBECONFIG})")
        for path in existing:
            _check(path, "KUBECONFIG" if os.environ.get("KUBECONFIG") else "kubeconfig")
        _config.load_kube_config()
    except KubeConfigError:
        raise
    except _LOAD_ERRORS as error:
        source = f"--kubeconfig {kubeconfig}" if kubeconfig else "the kubeconfig"
        reason = (str(error).splitlines() or [type(error).__name__])[0][:300]
        raise KubeConfigError(f"{source}: {reason}") from None
    return client.ApiClient()
