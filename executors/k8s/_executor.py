"""The ``k8s`` executor: its parameters, the connection to a cluster, the result, and API errors as ours.

The operations themselves (``_calls``) return the printed lines and the typed ``data``; here a
trailing ``| tail -N``, ``| head -N`` or ``| grep [-i -v -F -w] PATTERN`` is applied to the
printed lines; for tables, ``data["items"]`` keeps exactly the rows whose lines survived.

Namespace: ``-n`` in the command or ``params.namespace`` (both given must agree); otherwise the
connection's ``namespace``, else the kubeconfig context's, else ``default``.

Connection settings (type ``k8s``): ``kubeconfig`` (a path) and/or ``context``; or ``host`` with
``token`` and ``ca_cert`` (or ``verify: false``); ``namespace`` (the default namespace). A task
that names no connection where no ``default`` is configured uses ``KUBECONFIG`` (or
``~/.kube/config``), else the in-cluster service account.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from pydantic import BaseModel, ConfigDict

from contract import TaskResult, TaskSpec
from executors._base import Executor, RunContext
from executors._config import Connection
from executors._errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigurationError,
    ExecutorError,
    NotFound,
    PermissionDenied,
    QueryFailed,
    TaskTimedOut,
    UnknownConnection,
)
from executors._pool import PerConnection
from executors.k8s._calls import _OPERATIONS, _body, _Calls, _Cluster, _View
from executors.k8s._kubectl import KubectlCommand, apply_filters, parse_kubectl

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubernetesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str | None = None
    namespace: str | None = None


class KubernetesExecutor(Executor):
    type = "k8s"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._clusters: PerConnection[_Cluster] = PerConnection(lambda cluster: cluster.api.close())

    def validate(self, spec: TaskSpec) -> None:
        params: KubernetesParams = self.params(KubernetesParams, spec)
        parse_kubectl(spec.command).namespace_for(params.namespace, default="default")

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        params: KubernetesParams = self.params(KubernetesParams, spec)
        command = parse_kubectl(spec.command)
        cluster = self._cluster(params.connection)
        namespace = command.namespace_for(params.namespace, default=cluster.namespace)
        call = _Calls(cluster, ctx)
        try:
            view = _OPERATIONS[command.operation](call, command, namespace)
        except ApiException as exc:
            raise _api_error(exc, cluster.where) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _transport_error(exc, cluster.where, ctx) from exc
        return _result(ctx, command, view)

    def _cluster(self, name: str | None) -> _Cluster:
        def connect() -> _Cluster:
            try:
                connection: Connection | None = self.environment.connection(self.type, name)
            except UnknownConnection:
                if name is not None:
                    raise
                connection = None  # no default configured: KUBECONFIG, then in-cluster
            return _connect(connection)

        return self._clusters.get(name or "default", connect)

    def close(self) -> None:
        self._clusters.close()


# -- connecting ----------------------------------------------------------------------------------


def _connect(connection: Connection | None) -> _Cluster:
    settings = dict(connection.settings) if connection is not None else {}
    label = f"connection {connection.name!r}" if connection is not None else "the default configuration"
    configuration = k8s.Configuration()
    namespace = settings.get("namespace")
    try:
        if settings.get("host"):
            configuration.host = str(settings["host"]).rstrip("/")
            if settings.get("token"):
                configuration.api_key["BearerToken"] = f"Bearer {settings['token']}"
            if settings.get("ca_cert"):
                configuration.ssl_ca_cert = settings["ca_cert"]
            if "verify" in settings:
                configuration.verify_ssl = bool(settings["verify"])
            for key, target in (("client_cert", "cert_file"), ("client_key", "key_file")):
                if settings.get(key):
                    setattr(configuration, target, settings[key])
        elif settings.get("kubeconfig") or settings.get("context") or _kubeconfig_file():
            path = settings.get("kubeconfig") or _kubeconfig_file()
            context = settings.get("context")
            k8s_config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration, persist_config=False
            )
            namespace = namespace or _context_namespace(path, context)
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)
            if _IN_CLUSTER_NAMESPACE.exists():
                namespace = namespace or _IN_CLUSTER_NAMESPACE.read_text().strip()
    except ConfigException as exc:
        raise ConfigurationError(
            f"no usable Kubernetes configuration for {label}: {exc}; set KUBECONFIG, run inside a cluster, "
            "or configure a k8s connection (kubeconfig/context, or host + token + ca_cert)"
        ) from exc
    # Retrying is the agent's decision (reads only, within the task's timeout).
    configuration.retries = 0
    return _Cluster(k8s.ApiClient(configuration), namespace or "default", f"the Kubernetes API at {configuration.host}")


def _kubeconfig_file() -> str | None:
    configured = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if configured:
        return configured
    home = Path.home() / ".kube" / "config"
    return str(home) if home.exists() else None


def _context_namespace(path: str | None, context: str | None) -> str | None:
    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file=path)
    except ConfigException:
        return None
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    return (chosen or {}).get("context", {}).get("namespace")


# -- the result ----------------------------------------------------------------------------------


def _result(ctx: RunContext, command: KubectlCommand, view: _View) -> TaskResult:
    lines, data = view.lines, view.data
    notes = list(view.notes)
    if command.filters:
        kept = apply_filters(lines, command.filters)
        if view.line_items is not None and isinstance(data, dict) and isinstance(data.get("items"), list):
            survivors = sorted({item for item in (view.line_items[i] for i in kept) if item is not None})
            data = {**data, "items": [data["items"][i] for i in survivors]}
        elif isinstance(data, dict) and "lines" in data:
            data = {**data, "lines": len(kept)}
        else:
            notes.append("the pipeline (" + " | ".join(str(f) for f in command.filters) + ") was applied to the text")
        lines = [lines[i] for i in kept]
    output = "\n".join(lines) + "\n" if lines else ""
    result = ctx.result(
        output=output, data=data, stderr=view.stderr, truncated=view.truncated, original_rows=view.original_rows
    )
    result.notes.extend(notes)
    return result


# -- errors --------------------------------------------------------------------------------------


def _api_error(exc: ApiException, where: str) -> ExecutorError:
    message = exc.reason or f"HTTP {exc.status}"
    try:
        status = json.loads(_body(exc))
        if isinstance(status, dict) and status.get("message"):
            message = status["message"]
    except ValueError:
        pass
    code = exc.status or 0
    if code == 401:
        return AuthenticationFailed(f"{where} rejected the credentials: {message}")
    if code == 403:
        return PermissionDenied(message)
    if code == 404:
        return NotFound(message)
    if code in (408, 504):
        return TaskTimedOut(f"{where}: {message}")
    if code in (400, 409, 410, 422):
        return QueryFailed(message)
    if code == 0:
        return BackendUnavailable(f"{where}: {message}")
    return BackendUnavailable(f"{where} answered {code}: {message}")


def _transport_error(exc: urllib3.exceptions.HTTPError, where: str, ctx: RunContext) -> ExecutorError:
    reason = getattr(exc, "reason", None) or exc
    # NewConnectionError subclasses ConnectTimeoutError in urllib3: a refused connection is no timeout.
    timed_out = isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )
    if timed_out:
        return TaskTimedOut(f"{where} did not answer within the task's {ctx.timeout:g} s timeout")
    text = str(reason)
    errno = re.search(r"\[Errno -?\d+\] [^\"'()]+", text)
    return BackendUnavailable(f"cannot reach {where}: {errno.group(0).strip() if errno else text}")


__all__ = ["KubernetesExecutor", "KubernetesParams"]
