"""``k8s``: kubectl commands, run as Kubernetes API calls through the official ``kubernetes`` client.

No kubectl binary runs. The command is parsed (``executors.k8s._kubectl``, the same parser the
policy uses) and each operation becomes API calls; the result is both ``data`` (structured rows or
API objects) and ``output`` (the table text kubectl would print). Supported::

    get pods|services|endpoints|events|deployments|replicasets|nodes|namespaces (comma lists too)
        [NAME] [-n NS | -A] [-o wide|json|yaml|name] [-l SEL] [--field-selector SEL]
        [--sort-by .path] [--no-headers]                                    read
    describe pod NAME                                                       read
    logs POD [-c C] [--tail N] [--since 10m] [-p] [--timestamps]             read
    top pods [NAME] [-A] [-l SEL] [--sort-by cpu|memory]   (metrics.k8s.io) read
    rollout history|status deployment/NAME                                  read
    rollout restart deployment/NAME                                         write
    rollout undo deployment/NAME [--to-revision N]                          write
    scale deployment/NAME --replicas N                                      write

The modules, each importing only those above it::

    _kubectl    the command-line parser (also the policy's)
    _printers   kubectl's tables per resource kind, ``-o json``, ages and quantities
    _describe   the ``describe pod`` text
    _calls      the API calls per operation; they hand the printers plain API JSON
    _executor   the executor: parameters, connecting, the result, error mapping

The names below are loaded on first use, not on import: the policy imports the parser
(``executors.k8s._kubectl``) while ``executors._base`` is still loading, and an eager import of
the executor here would import ``executors._base`` back, and the ``kubernetes`` client with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from executors.k8s._executor import KubernetesExecutor, KubernetesParams
    from executors.k8s._printers import human_duration

_EXPORTS = {
    "KubernetesExecutor": "executors.k8s._executor",
    "KubernetesParams": "executors.k8s._executor",
    "human_duration": "executors.k8s._printers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["KubernetesExecutor", "KubernetesParams", "human_duration"]
