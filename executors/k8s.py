"""``k8s``: kubectl commands, run as Kubernetes API calls through the official ``kubernetes`` client.

No kubectl binary runs. The command is parsed (``executors._kubectl``, the same parser the policy
uses) and each operation becomes API calls; the result is both ``data`` (structured rows or API
objects) and ``output`` (the table text kubectl would print). Supported::

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

A trailing ``| tail -N``, ``| head -N`` or ``| grep [-i -v -F -w] PATTERN`` is applied here to
the printed lines; for tables, ``data["items"]`` keeps exactly the rows whose lines survived.

Namespace: ``-n`` in the command or ``params.namespace`` (both given must agree); otherwise the
connection's ``namespace``, else the kubeconfig context's, else ``default``.

Lists ask the API server for at most ``max_rows`` objects (``limit``); more is reported as
``truncated`` with ``original_rows`` from the server's ``remainingItemCount``. Logs are read with
``limitBytes`` at the output limit. Every call carries the task's remaining time as its timeout.

Connection settings (type ``k8s``): ``kubeconfig`` (a path) and/or ``context``; or ``host`` with
``token`` and ``ca_cert`` (or ``verify: false``); ``namespace`` (the default namespace). A task
that names no connection where no ``default`` is configured uses ``KUBECONFIG`` (or
``~/.kube/config``), else the in-cluster service account.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.utils import parse_quantity
from pydantic import BaseModel, ConfigDict

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
from executors._kubectl import NAMESPACED, KubectlCommand, apply_filters, parse_kubectl, sort_key
from executors._pool import PerConnection
from executors._spec import TaskResult, TaskSpec

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_REVISION = "deployment.kubernetes.io/revision"
_CHANGE_CAUSE = "kubernetes.io/change-cause"
# Annotations kubectl's rollback leaves as they are on the deployment (rollback.go).
_ROLLBACK_SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        _REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
#: How kubectl names each resource in ``kind/name`` output.
_KIND_PREFIX = {
    "pods": "pod",
    "services": "service",
    "endpoints": "endpoints",
    "events": "event",
    "deployments": "deployment.apps",
    "replicasets": "replicaset.apps",
    "nodes": "node",
    "namespaces": "namespace",
}
_KIND = {
    "pods": ("Pod", "v1"),
    "services": ("Service", "v1"),
    "endpoints": ("Endpoints", "v1"),
    "events": ("Event", "v1"),
    "deployments": ("Deployment", "apps/v1"),
    "replicasets": ("ReplicaSet", "apps/v1"),
    "nodes": ("Node", "v1"),
    "namespaces": ("Namespace", "v1"),
}


class KubernetesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str | None = None
    namespace: str | None = None


@dataclass
class _Cluster:
    """The API clients of one connection."""

    api: k8s.ApiClient
    namespace: str
    where: str

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @property
    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)


@dataclass
class _View:
    """What a command printed and returned, before the pipeline is applied."""

    lines: list[str]
    data: Any
    #: For each printed line, the index of its item in ``data["items"]`` (None: header, blank...).
    line_items: list[int | None] | None = None
    stderr: str | None = None
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    original_rows: int | None = None


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


# -- calling the API -----------------------------------------------------------------------------


class _Calls:
    """API calls with the task's deadline and raw JSON replies (kubectl prints from JSON too)."""

    def __init__(self, cluster: _Cluster, ctx: RunContext):
        self.cluster = cluster
        self.ctx = ctx

    def timeout(self) -> tuple[float, float]:
        remaining = self.ctx.remaining()
        if remaining <= 0:
            raise TaskTimedOut(f"the task did not finish within its {self.ctx.timeout:g} s timeout")
        return (min(remaining, 10.0), remaining)

    def json(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        response = method(*args, _preload_content=False, _request_timeout=self.timeout(), **kwargs)
        return json.loads(response.data)

    def text(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        response = method(*args, _preload_content=False, _request_timeout=self.timeout(), **kwargs)
        return bytes(response.data)

    def list(self, resource: str, command: KubectlCommand, namespace: str) -> dict[str, Any]:
        """``kubectl get RESOURCE [NAME]``: one object (as a one-item list) or one page of ``max_rows``."""
        group, read, in_namespace, everywhere = _API_METHODS[resource]
        api = self.cluster.apps if group == "apps" else self.cluster.core
        cluster_scoped = in_namespace is None
        if command.name:
            if cluster_scoped:
                return {"items": [self.json(getattr(api, read), command.name)], "metadata": {}}
            return {"items": [self.json(getattr(api, read), command.name, namespace)], "metadata": {}}
        kwargs: dict[str, Any] = {"limit": self.ctx.limits.max_rows}
        if command.selector:
            kwargs["label_selector"] = command.selector
        if command.field_selector:
            kwargs["field_selector"] = command.field_selector
        if in_namespace is None or command.all_namespaces:
            return self.json(getattr(api, everywhere), **kwargs)
        return self.json(getattr(api, in_namespace), namespace, **kwargs)


#: resource -> (API group, read one, list in a namespace (None: cluster-scoped), list everywhere)
_API_METHODS: dict[str, tuple[str, str, str | None, str]] = {
    "pods": ("core", "read_namespaced_pod", "list_namespaced_pod", "list_pod_for_all_namespaces"),
    "services": ("core", "read_namespaced_service", "list_namespaced_service", "list_service_for_all_namespaces"),
    "endpoints": (
        "core",
        "read_namespaced_endpoints",
        "list_namespaced_endpoints",
        "list_endpoints_for_all_namespaces",
    ),
    "events": ("core", "read_namespaced_event", "list_namespaced_event", "list_event_for_all_namespaces"),
    "deployments": (
        "apps",
        "read_namespaced_deployment",
        "list_namespaced_deployment",
        "list_deployment_for_all_namespaces",
    ),
    "replicasets": (
        "apps",
        "read_namespaced_replica_set",
        "list_namespaced_replica_set",
        "list_replica_set_for_all_namespaces",
    ),
    "nodes": ("core", "read_node", None, "list_node"),
    "namespaces": ("core", "read_namespace", None, "list_namespace"),
}


# -- the operations ------------------------------------------------------------------------------


def _get(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    lists = [(resource, call.list(resource, command, namespace)) for resource in command.resources]
    truncated, original = False, 0
    for _, listed in lists:
        metadata = listed.get("metadata") or {}
        if metadata.get("continue"):
            truncated = True
            original += len(listed.get("items", [])) + int(metadata.get("remainingItemCount") or 0)
        else:
            original += len(listed.get("items", []))
    notes = []
    if truncated:
        notes.append(
            f"the API server had more than max_rows ({call.ctx.limits.max_rows}) objects; the first ones are shown"
            + (" and --sort-by sorted only those" if command.sort_by else "")
        )
    if command.sort_by:
        for _, listed in lists:
            listed["items"] = sorted(listed.get("items", []), key=sort_key(command.sort_by))

    if command.output in ("json", "yaml"):
        document = _as_document(lists, single=command.name is not None)
        text = json.dumps(document, indent=4) if command.output == "json" else yaml.safe_dump(document, sort_keys=False)
        return _View(
            text.splitlines(), document, notes=notes, truncated=truncated, original_rows=original if truncated else None
        )

    everywhere = command.all_namespaces
    prefixed = len(command.resources) > 1 or command.output == "name"
    lines: list[str] = []
    line_items: list[int | None] = []
    items: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for resource, listed in lists:
        objects = listed.get("items", [])
        if not objects:
            continue
        if command.output == "name":
            for obj in objects:
                line_items.append(len(items))
                items.append(_summary(resource, obj, now))
                lines.append(f"{_KIND_PREFIX[resource]}/{obj['metadata']['name']}")
            continue
        if lines:
            lines.append("")
            line_items.append(None)
        headers, cells, rows = _TABLES[resource](objects, now, command.output == "wide")
        if everywhere and resource in NAMESPACED:
            headers = ["NAMESPACE", *headers]
            cells = [[obj["metadata"].get("namespace", ""), *row] for obj, row in zip(objects, cells, strict=True)]
        if prefixed:
            cells = [
                [
                    f"{_KIND_PREFIX[resource]}/{row[1 if everywhere else 0]}" if i == (1 if everywhere else 0) else cell
                    for i, cell in enumerate(row)
                ]
                for row in cells
            ]
        table = _table(headers, cells, command.no_headers)
        if not command.no_headers:
            line_items.append(None)
        line_items.extend(range(len(items), len(items) + len(rows)))
        items.extend(rows)
        lines.extend(table)
    stderr = None
    if not items:
        namespaced = not everywhere and any(r in NAMESPACED for r in command.resources)
        where = f" in {namespace} namespace" if namespaced else ""
        stderr = f"No resources found{where}.\n"
    data = {"namespace": None if everywhere else namespace, "items": items}
    return _View(lines, data, line_items, stderr, notes, truncated, original if truncated else None)


def _describe(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    assert command.name is not None
    pod = call.json(call.cluster.core.read_namespaced_pod, command.name, namespace)
    selector = (
        f"involvedObject.name={command.name},involvedObject.namespace={namespace},involvedObject.kind=Pod,"
        f"involvedObject.uid={pod['metadata'].get('uid', '')}"
    )
    events = call.json(call.cluster.core.list_namespaced_event, namespace, field_selector=selector)
    event_items = sorted(events.get("items", []), key=sort_key(".lastTimestamp"))
    _drop_managed_fields(pod)
    lines = _describe_pod(pod, event_items, datetime.now(UTC))
    now = datetime.now(UTC)
    return _View(lines, {"pod": pod, "events": [_event_row(e, now) for e in event_items]})


def _logs(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    assert command.name is not None
    limit = call.ctx.limits.max_output_bytes + 1
    kwargs: dict[str, Any] = {"limit_bytes": min(command.limit_bytes or limit, limit)}
    for key, value in (("tail_lines", command.tail), ("since_seconds", command.since_seconds)):
        if value is not None:
            kwargs[key] = value
    if command.previous:
        kwargs["previous"] = True
    if command.timestamps:
        kwargs["timestamps"] = True
    container = command.container
    notes = []
    read = call.cluster.core.read_namespaced_pod_log
    try:
        raw = call.text(read, command.name, namespace, container=container, **kwargs)
    except ApiException as exc:
        # Like kubectl: a pod of several containers and none named -> its default container.
        if container is not None or exc.status != 400 or "container name must be specified" not in str(exc.body):
            raise
        pod = call.json(call.cluster.core.read_namespaced_pod, command.name, namespace)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = _annotations(pod).get("kubectl.kubernetes.io/default-container") or names[0]
        notes.append(f'Defaulted container "{container}" out of: {", ".join(names)}')
        raw = call.text(read, command.name, namespace, container=container, **kwargs)
    text = raw.decode("utf-8", errors="replace")
    truncated = len(raw) >= limit
    if truncated:
        notes.append(f"the log was read up to the output limit ({limit - 1} bytes)")
    lines = text.splitlines()
    data = {"pod": command.name, "namespace": namespace, "container": container, "lines": len(lines)}
    return _View(lines, data, notes=notes, truncated=truncated)


def _top(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    custom = call.cluster.custom
    group, version = "metrics.k8s.io", "v1beta1"
    try:
        if command.name:
            metrics = [call.json(custom.get_namespaced_custom_object, group, version, namespace, "pods", command.name)]
        elif command.all_namespaces:
            listed = call.json(
                custom.list_cluster_custom_object, group, version, "pods", label_selector=command.selector
            )
            metrics = listed.get("items", [])
        else:
            listed = call.json(
                custom.list_namespaced_custom_object, group, version, namespace, "pods", label_selector=command.selector
            )
            metrics = listed.get("items", [])
    except ApiException as exc:
        if exc.status == 404 and b"could not find the requested resource" in _body(exc):
            raise NotFound(
                "the metrics API (metrics.k8s.io) is not available in this cluster: kubectl top needs metrics-server"
            ) from exc
        raise
    rows = []
    for item in metrics:
        containers = []
        for c in item.get("containers", []):
            usage = c.get("usage", {})
            containers.append(
                {
                    "name": c.get("name"),
                    "cpu_millicores": _millicores(usage.get("cpu", "0")),
                    "memory_bytes": int(parse_quantity(usage.get("memory", "0"))),
                }
            )
        rows.append(
            {
                "kind": "PodMetrics",
                "namespace": item["metadata"].get("namespace"),
                "name": item["metadata"]["name"],
                "cpu_millicores": sum(c["cpu_millicores"] for c in containers),
                "memory_bytes": sum(c["memory_bytes"] for c in containers),
                "timestamp": item.get("timestamp"),
                "window": item.get("window"),
                "containers": containers,
            }
        )
    if command.sort_by:
        field_name = "cpu_millicores" if command.sort_by == "cpu" else "memory_bytes"
        rows.sort(key=lambda row: row[field_name], reverse=True)
    headers = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    cells = [[row["name"], f"{row['cpu_millicores']}m", f"{row['memory_bytes'] // (1024 * 1024)}Mi"] for row in rows]
    if command.all_namespaces:
        headers = ["NAMESPACE", *headers]
        cells = [[row["namespace"], *cell] for row, cell in zip(rows, cells, strict=True)]
    lines = _table(headers, cells, command.no_headers) if rows else []
    line_items: list[int | None] = ([] if command.no_headers or not rows else [None]) + list(range(len(rows)))
    stderr = None if rows else f"No resources found in {namespace} namespace.\n"
    return _View(lines, {"namespace": None if command.all_namespaces else namespace, "items": rows}, line_items, stderr)


def _rollout_history(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    deployment = _deployment(call, command, namespace)
    history = _history(call, deployment, namespace)
    rows = [
        {
            "revision": revision,
            "change_cause": _annotations(rs).get(_CHANGE_CAUSE),
            "replicaset": rs["metadata"]["name"],
        }
        for revision, rs in history
    ]
    lines = [
        f"deployment.apps/{command.name} ",
        *_table(
            ["REVISION", "CHANGE-CAUSE"], [[str(r["revision"]), r["change_cause"] or "<none>"] for r in rows], False
        ),
        "",
    ]
    line_items: list[int | None] = [None, None, *range(len(rows)), None]
    return _View(lines, {"deployment": command.name, "namespace": namespace, "items": rows}, line_items)


def _rollout_status(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    deployment = _deployment(call, command, namespace)
    spec, status, name = deployment.get("spec", {}), deployment.get("status", {}), command.name
    done = False
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        message = "Waiting for deployment spec update to be observed..."
    elif any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions", [])
    ):
        raise QueryFailed(f'deployment "{name}" exceeded its progress deadline')
    elif spec.get("replicas") is not None and status.get("updatedReplicas", 0) < spec["replicas"]:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {status.get("updatedReplicas", 0)} out of '
            f"{spec['replicas']} new replicas have been updated..."
        )
    elif status.get("replicas", 0) > status.get("updatedReplicas", 0):
        message = (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{status['replicas'] - status.get('updatedReplicas', 0)} old replicas are pending termination..."
        )
    elif status.get("availableReplicas", 0) < status.get("updatedReplicas", 0):
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {status.get("availableReplicas", 0)} of '
            f"{status.get('updatedReplicas', 0)} updated replicas are available..."
        )
    else:
        message, done = f'deployment "{name}" successfully rolled out', True
    data = {
        "deployment": name,
        "namespace": namespace,
        "done": done,
        "message": message,
        "replicas": spec.get("replicas"),
        "updated": status.get("updatedReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "ready": status.get("readyReplicas", 0),
    }
    return _View([message], data)


def _rollout_restart(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    deployment = _deployment(call, command, namespace)
    if deployment.get("spec", {}).get("paused"):
        raise QueryFailed(f"can't restart paused deployment (run rollout resume first): deployment.apps/{command.name}")
    restarted_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {_RESTARTED_AT: restarted_at}}}}}
    call.json(call.cluster.apps.patch_namespaced_deployment, command.name, namespace, patch)
    return _View(
        [f"deployment.apps/{command.name} restarted"],
        {"deployment": command.name, "namespace": namespace, "restarted_at": restarted_at},
    )


def _rollout_undo(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    deployment = _deployment(call, command, namespace)
    name = command.name
    if deployment.get("spec", {}).get("paused"):
        raise QueryFailed(
            f"you cannot rollback a paused deployment; resume it first with "
            f'"kubectl rollout resume deployment/{name}" and try again'
        )
    history = dict(_history(call, deployment, namespace))
    current = int(_annotations(deployment).get(_REVISION, "0") or 0)
    if command.to_revision:
        target = command.to_revision
        if target not in history:
            raise NotFound(f"unable to find specified revision {target} in history of deployment.apps/{name}")
    else:
        earlier = [revision for revision in history if revision < current] or [r for r in history if r != current]
        if not earlier:
            raise NotFound(f"no rollout history found for deployment.apps/{name}")
        target = max(earlier)
    replica_set = history[target]
    template = json.loads(json.dumps(replica_set["spec"]["template"]))
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    if _same_template(template, deployment["spec"]["template"]):
        return _View(
            [f"deployment.apps/{name} skipped rollback (current template already matches revision {target})"],
            {"deployment": name, "namespace": namespace, "revision": target, "skipped": True},
        )
    annotations = {k: v for k, v in _annotations(deployment).items() if k in _ROLLBACK_SKIPPED_ANNOTATIONS}
    annotations.update({k: v for k, v in _annotations(replica_set).items() if k not in _ROLLBACK_SKIPPED_ANNOTATIONS})
    patch = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    call.json(call.cluster.apps.patch_namespaced_deployment, name, namespace, patch)
    return _View(
        [f"deployment.apps/{name} rolled back"],
        {"deployment": name, "namespace": namespace, "revision": target, "from_revision": current, "skipped": False},
    )


def _scale(call: _Calls, command: KubectlCommand, namespace: str) -> _View:
    patch = {"spec": {"replicas": command.replicas}}
    scale = call.json(call.cluster.apps.patch_namespaced_deployment_scale, command.name, namespace, patch)
    return _View(
        [f"deployment.apps/{command.name} scaled"],
        {
            "deployment": command.name,
            "namespace": namespace,
            "replicas": command.replicas,
            "previous_replicas": (scale.get("status") or {}).get("replicas"),
        },
    )


_OPERATIONS: dict[str, Callable[[_Calls, KubectlCommand, str], _View]] = {
    "get": _get,
    "describe": _describe,
    "logs": _logs,
    "top": _top,
    "rollout history": _rollout_history,
    "rollout status": _rollout_status,
    "rollout restart": _rollout_restart,
    "rollout undo": _rollout_undo,
    "scale": _scale,
}


def _deployment(call: _Calls, command: KubectlCommand, namespace: str) -> dict[str, Any]:
    return call.json(call.cluster.apps.read_namespaced_deployment, command.name, namespace)


def _history(call: _Calls, deployment: dict[str, Any], namespace: str) -> list[tuple[int, dict[str, Any]]]:
    """The deployment's ReplicaSets by revision, oldest first (as kubectl's rollout history)."""
    labels = (deployment.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    listed = call.json(call.cluster.apps.list_namespaced_replica_set, namespace, label_selector=selector or None)
    uid = deployment["metadata"].get("uid")
    owned = []
    for rs in listed.get("items", []):
        owners = rs["metadata"].get("ownerReferences") or []
        if any(o.get("uid") == uid and o.get("controller") for o in owners):
            revision = _annotations(rs).get(_REVISION)
            if revision and revision.isdigit():
                owned.append((int(revision), rs))
    return sorted(owned, key=lambda pair: pair[0])


def _same_template(left: dict[str, Any], right: dict[str, Any]) -> bool:
    def normal(template: dict[str, Any]) -> str:
        copy = json.loads(json.dumps(template))
        copy.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        copy.get("metadata", {}).pop("creationTimestamp", None)
        return json.dumps(copy, sort_keys=True)

    return normal(left) == normal(right)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


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


def _as_document(lists: Sequence[tuple[str, dict[str, Any]]], single: bool) -> dict[str, Any]:
    """What ``kubectl get -o json`` prints: the object, or a ``List`` of objects with their kinds."""
    items = []
    for resource, listed in lists:
        kind, api_version = _KIND[resource]
        for obj in listed.get("items", []):
            _drop_managed_fields(obj)
            items.append({"apiVersion": api_version, "kind": kind, **obj})
    if single and len(items) == 1:
        return items[0]
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def _drop_managed_fields(obj: dict[str, Any]) -> None:
    # kubectl hides them by default (--show-managed-fields=false); they are noise for a diagnosis.
    (obj.get("metadata") or {}).pop("managedFields", None)


def _table(
    headers: list[str], rows: list[list[str]], no_headers: bool, padding: int = 3, minimum: int = 6
) -> list[str]:
    """Columns as kubectl's tabwriter lays them out: width = longest cell + padding, at least minimum."""
    every = rows if no_headers else [headers, *rows]
    if not every:
        return []
    widths = [max(len(row[i]) for row in every) for i in range(len(headers))]
    lines = []
    for row in every:
        cells = [cell.ljust(max(widths[i] + padding, minimum)) for i, cell in enumerate(row[:-1])]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return lines


# -- printers: one per resource, (headers, cells, data rows) --------------------------------------

#: headers, cells per object, data row per object
_Printed = tuple[list[str], list[list[str]], list[dict[str, Any]]]
Printer = Callable[[list[dict[str, Any]], datetime, bool], _Printed]


def _pods(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    headers = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if wide:
        headers += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    cells, rows = [], []
    for pod in objects:
        row = _pod_row(pod, now)
        restarts = str(row["restarts"])
        if row["last_restart"]:
            restarts += f" ({human_duration(now - _time(row['last_restart']))} ago)"
        cell = [row["name"], row["ready"], row["status"], restarts, row["age"]]
        if wide:
            gates = pod.get("spec", {}).get("readinessGates") or []
            cell += [
                row["ip"] or "<none>",
                row["node"] or "<none>",
                row["nominated_node"] or "<none>",
                f"{row['readiness_gates_ready']}/{len(gates)}" if gates else "<none>",
            ]
        cells.append(cell)
        rows.append(row)
    return headers, cells, rows


def _pod_row(pod: dict[str, Any], now: datetime) -> dict[str, Any]:
    """kubectl's pod status logic (printPod): phase, init progress, container waiting reasons."""
    metadata, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    restarts = 0
    last_restart: str | None = None

    def note_restart(container_status: dict[str, Any]) -> None:
        nonlocal last_restart
        finished = ((container_status.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished

    initializing = False
    init_specs = spec.get("initContainers") or []
    for index, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        note_restart(cs)
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            reason = "Init:" + (terminated.get("reason") or _exit(terminated))
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break
    ready = 0
    if not initializing:
        restarts = 0
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            note_restart(cs)
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif state.get("terminated"):
                reason = _exit(state["terminated"])
            elif state.get("running") and cs.get("ready"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conditions = status.get("conditions", [])
            ready_condition = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if ready_condition else "NotReady"
    if metadata.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    total = len(spec.get("containers") or [])
    gates = spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
    return {
        "kind": "Pod",
        "namespace": metadata.get("namespace"),
        "name": metadata["name"],
        "ready": f"{ready}/{total}",
        "ready_containers": ready,
        "total_containers": total,
        "status": reason,
        "restarts": restarts,
        "last_restart": last_restart,
        "age": _age(metadata, now),
        "created": metadata.get("creationTimestamp"),
        "ip": status.get("podIP"),
        "node": spec.get("nodeName"),
        "nominated_node": status.get("nominatedNodeName"),
        "readiness_gates_ready": sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True"),
    }


def _services(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    headers = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] + (["SELECTOR"] if wide else [])
    cells, rows = [], []
    for svc in objects:
        spec = svc.get("spec", {})
        kind = spec.get("type", "ClusterIP")
        external = _external_ips(svc, kind)
        ports = (
            ",".join(
                f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                for p in spec.get("ports") or []
            )
            or "<none>"
        )
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
        row = {
            "kind": "Service",
            "namespace": svc["metadata"].get("namespace"),
            "name": svc["metadata"]["name"],
            "type": kind,
            "cluster_ip": spec.get("clusterIP") or None,
            "external_ip": external,
            "ports": spec.get("ports") or [],
            "selector": spec.get("selector") or {},
            "age": _age(svc["metadata"], now),
            "created": svc["metadata"].get("creationTimestamp"),
        }
        cell = [row["name"], kind, spec.get("clusterIP") or "<none>", external, ports, row["age"]]
        cells.append(cell + ([selector] if wide else []))
        rows.append(row)
    return headers, cells, rows


def _external_ips(svc: dict[str, Any], kind: str) -> str:
    spec = svc.get("spec", {})
    external = list(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        return spec.get("externalName") or "<none>"
    if kind == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        found = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")] + external
        return ",".join(found) if found else "<pending>"
    return ",".join(external) if external else "<none>"


def _endpoints(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    cells, rows = [], []
    for ep in objects:
        ready, not_ready = [], []
        for subset in ep.get("subsets") or []:
            ports = subset.get("ports") or [{}]
            for address in subset.get("addresses") or []:
                ready += [f"{address['ip']}:{p['port']}" if p.get("port") else address["ip"] for p in ports]
            for address in subset.get("notReadyAddresses") or []:
                not_ready += [f"{address['ip']}:{p['port']}" if p.get("port") else address["ip"] for p in ports]
        shown = ",".join(ready[:3]) + (f" + {len(ready) - 3} more..." if len(ready) > 3 else "") if ready else "<none>"
        row = {
            "kind": "Endpoints",
            "namespace": ep["metadata"].get("namespace"),
            "name": ep["metadata"]["name"],
            "ready": ready,
            "not_ready": not_ready,
            "age": _age(ep["metadata"], now),
            "created": ep["metadata"].get("creationTimestamp"),
        }
        cells.append([row["name"], shown, row["age"]])
        rows.append(row)
    return ["NAME", "ENDPOINTS", "AGE"], cells, rows


def _events(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    headers = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    if wide:
        headers = [
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME",
        ]
    cells, rows = [], []
    for event in objects:
        row = _event_row(event, now)
        interval = _seen(row)
        if wide:
            cells.append(
                [
                    interval,
                    row["type"],
                    row["reason"],
                    row["object"],
                    row["subobject"],
                    row["source"],
                    row["message"],
                    row["first_seen"],
                    str(row["count"]),
                    row["name"],
                ]
            )
        else:
            cells.append([interval, row["type"], row["reason"], row["object"], row["message"]])
        rows.append(row)
    return headers, cells, rows


def _event_row(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    involved = event.get("involvedObject") or {}
    first = event.get("firstTimestamp") or event.get("eventTime")
    last = event.get("lastTimestamp") or first
    series = event.get("series") or {}
    if series:
        last = series.get("lastObservedTime") or last
    count = series.get("count") or event.get("count") or 1
    source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
    host = (event.get("source") or {}).get("host")
    return {
        "kind": "Event",
        "namespace": event["metadata"].get("namespace"),
        "name": event["metadata"]["name"],
        "type": event.get("type", ""),
        "reason": event.get("reason", ""),
        "object": f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        "subobject": involved.get("fieldPath", ""),
        "source": f"{source}, {host}" if host else source,
        "message": " ".join(str(event.get("message", "")).split()),
        "count": int(count),
        "first_timestamp": first,
        "last_timestamp": last,
        "first_seen": human_duration(now - _time(first)) if first else "<unknown>",
        "last_seen": human_duration(now - _time(last)) if last else "<unknown>",
    }


def _seen(row: dict[str, Any]) -> str:
    """kubectl's LAST SEEN of an event: ``5m`` or ``5m (x42 over 40m)``."""
    return row["last_seen"] + (f" (x{row['count']} over {row['first_seen']})" if row["count"] > 1 else "")


def _deployments(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    headers = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] + (_WIDE_WORKLOAD if wide else [])
    cells, rows = [], []
    for d in objects:
        spec, status = d.get("spec", {}), d.get("status", {})
        desired = spec.get("replicas", 1)
        row = {
            "kind": "Deployment",
            "namespace": d["metadata"].get("namespace"),
            "name": d["metadata"]["name"],
            "desired": desired,
            "ready": status.get("readyReplicas", 0),
            "up_to_date": status.get("updatedReplicas", 0),
            "available": status.get("availableReplicas", 0),
            "revision": _annotations(d).get(_REVISION),
            "age": _age(d["metadata"], now),
            "created": d["metadata"].get("creationTimestamp"),
            "images": [c.get("image") for c in spec.get("template", {}).get("spec", {}).get("containers", [])],
        }
        cell = [row["name"], f"{row['ready']}/{desired}", str(row["up_to_date"]), str(row["available"]), row["age"]]
        cells.append(cell + (_workload_wide(spec) if wide else []))
        rows.append(row)
    return headers, cells, rows


def _replicasets(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    headers = ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] + (_WIDE_WORKLOAD if wide else [])
    cells, rows = [], []
    for rs in objects:
        spec, status = rs.get("spec", {}), rs.get("status", {})
        row = {
            "kind": "ReplicaSet",
            "namespace": rs["metadata"].get("namespace"),
            "name": rs["metadata"]["name"],
            "desired": spec.get("replicas", 1),
            "current": status.get("replicas", 0),
            "ready": status.get("readyReplicas", 0),
            "revision": _annotations(rs).get(_REVISION),
            "age": _age(rs["metadata"], now),
            "created": rs["metadata"].get("creationTimestamp"),
        }
        cell = [row["name"], str(row["desired"]), str(row["current"]), str(row["ready"]), row["age"]]
        cells.append(cell + (_workload_wide(spec) if wide else []))
        rows.append(row)
    return headers, cells, rows


_WIDE_WORKLOAD = ["CONTAINERS", "IMAGES", "SELECTOR"]


def _workload_wide(spec: dict[str, Any]) -> list[str]:
    containers = spec.get("template", {}).get("spec", {}).get("containers", [])
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return [
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _nodes(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    headers = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        headers += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    cells, rows = [], []
    for node in objects:
        status = node.get("status", {})
        ready = next((c.get("status") for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
        state = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
        if node.get("spec", {}).get("unschedulable"):
            state += ",SchedulingDisabled"
        prefix = "node-role.kubernetes.io/"
        roles = sorted(k[len(prefix) :] for k in (node["metadata"].get("labels") or {}) if k.startswith(prefix))
        info = status.get("nodeInfo", {})
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses", [])}
        row = {
            "kind": "Node",
            "name": node["metadata"]["name"],
            "status": state,
            "roles": roles,
            "version": info.get("kubeletVersion"),
            "internal_ip": addresses.get("InternalIP"),
            "external_ip": addresses.get("ExternalIP"),
            "age": _age(node["metadata"], now),
            "created": node["metadata"].get("creationTimestamp"),
            "allocatable": status.get("allocatable", {}),
            "capacity": status.get("capacity", {}),
        }
        cell = [row["name"], state, ",".join(roles) or "<none>", row["age"], info.get("kubeletVersion", "")]
        if wide:
            cell += [
                row["internal_ip"] or "<none>",
                row["external_ip"] or "<none>",
                info.get("osImage", ""),
                info.get("kernelVersion", ""),
                info.get("containerRuntimeVersion", ""),
            ]
        cells.append(cell)
        rows.append(row)
    return headers, cells, rows


def _namespaces(objects: list[dict[str, Any]], now: datetime, wide: bool) -> _Printed:
    cells, rows = [], []
    for ns in objects:
        row = {
            "kind": "Namespace",
            "name": ns["metadata"]["name"],
            "status": ns.get("status", {}).get("phase", ""),
            "age": _age(ns["metadata"], now),
            "created": ns["metadata"].get("creationTimestamp"),
        }
        cells.append([row["name"], row["status"], row["age"]])
        rows.append(row)
    return ["NAME", "STATUS", "AGE"], cells, rows


_TABLES: dict[str, Printer] = {
    "pods": _pods,
    "services": _services,
    "endpoints": _endpoints,
    "events": _events,
    "deployments": _deployments,
    "replicasets": _replicasets,
    "nodes": _nodes,
    "namespaces": _namespaces,
}


def _summary(resource: str, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    return _TABLES[resource]([obj], now, False)[2][0]


# -- describe ------------------------------------------------------------------------------------


def _describe_pod(pod: dict[str, Any], events: list[dict[str, Any]], now: datetime) -> list[str]:
    metadata, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    lines: list[str] = []

    def field_line(name: str, value: Any, indent: str = "", width: int = 18) -> None:
        lines.append(f"{indent}{name + ':':<{width}}{value}")

    def mapping(name: str, values: dict[str, str] | None, separator: str = "=") -> None:
        items = [f"{k}{separator}{v}" for k, v in sorted((values or {}).items())] or ["<none>"]
        field_line(name, items[0])
        lines.extend(" " * 18 + item for item in items[1:])

    field_line("Name", metadata["name"])
    field_line("Namespace", metadata.get("namespace", ""))
    field_line("Priority", spec.get("priority", 0))
    field_line("Service Account", spec.get("serviceAccountName", "default"))
    host_ip = status.get("hostIP")
    node = spec.get("nodeName")
    field_line("Node", f"{node}/{host_ip}" if node and host_ip else node or "<none>")
    if status.get("startTime"):
        field_line("Start Time", _rfc1123(status["startTime"]))
    mapping("Labels", metadata.get("labels"))
    mapping("Annotations", metadata.get("annotations"), ": ")
    field_line("Status", "Terminating" if metadata.get("deletionTimestamp") else status.get("phase", "Unknown"))
    if status.get("reason"):
        field_line("Reason", status["reason"])
    if status.get("message"):
        field_line("Message", status["message"])
    field_line("IP", status.get("podIP", ""))
    if status.get("podIPs"):
        lines.append("IPs:")
        lines.extend(f"  IP:           {ip['ip']}" for ip in status["podIPs"])
    else:
        lines.append("IPs:              <none>")
    owners = [o for o in metadata.get("ownerReferences") or [] if o.get("controller")]
    if owners:
        field_line("Controlled By", f"{owners[0]['kind']}/{owners[0]['name']}", width=16)
    statuses = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
    lines.append("Containers:")
    for container in spec.get("containers", []):
        cs = statuses.get(container["name"], {})
        lines.append(f"  {container['name']}:")
        sub = "    "
        if cs.get("containerID"):
            field_line("Container ID", cs["containerID"], sub, 16)
        field_line("Image", container.get("image", ""), sub, 16)
        if cs.get("imageID"):
            field_line("Image ID", cs["imageID"], sub, 16)
        ports = container.get("ports") or []
        field_line(
            "Port" if len(ports) <= 1 else "Ports",
            ", ".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>",
            sub,
            16,
        )
        lines.extend(_state_lines("State", cs.get("state") or {}))
        if cs.get("lastState"):
            lines.extend(_state_lines("Last State", cs["lastState"]))
        field_line("Ready", str(bool(cs.get("ready"))), sub, 16)
        field_line("Restart Count", cs.get("restartCount", 0), sub, 16)
        resources = container.get("resources") or {}
        for kind in ("limits", "requests"):
            if resources.get(kind):
                lines.append(f"    {kind.capitalize()}:")
                lines.extend(f"      {k}:{' ' * max(1, 8 - len(k))}{v}" for k, v in sorted(resources[kind].items()))
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(probe_name):
                field_line(probe_name.replace("Probe", "").capitalize(), _probe(container[probe_name]), sub, 16)
    if status.get("conditions"):
        lines.append("Conditions:")
        width = max(len("Type"), *(len(c.get("type", "")) for c in status["conditions"])) + 3
        lines.append(f"  {'Type':<{width}}Status")
        lines.extend(f"  {c.get('type', ''):<{width}}{c.get('status', '')}" for c in status["conditions"])
    lines.append(f"QoS Class:        {status.get('qosClass', '')}")
    if not events:
        lines.append("Events:           <none>")
        return lines
    lines.append("Events:")
    underline = ["-" * len(word) for word in ("Type", "Reason", "Age", "From", "Message")]
    rows = [
        [r["type"], r["reason"], _seen(r), (r["source"] or "").split(",")[0], r["message"]]
        for r in (_event_row(e, now) for e in events)
    ]
    # describe's tabwriter pads by 2, not get's 3
    table = _table(["Type", "Reason", "Age", "From", "Message"], [underline, *rows], False, padding=2, minimum=0)
    lines.extend("  " + line for line in table)
    return lines


def _state_lines(title: str, state: dict[str, Any]) -> list[str]:
    if not state:
        return [f"    {title + ':':<16}<none>"] if title == "State" else []
    ((name, detail),) = list(state.items())[:1]
    lines = [f"    {title + ':':<16}{name.capitalize()}"]
    detail = detail or {}
    for key, label in (
        ("reason", "Reason"),
        ("message", "Message"),
        ("exitCode", "Exit Code"),
        ("signal", "Signal"),
        ("startedAt", "Started"),
        ("finishedAt", "Finished"),
    ):
        if detail.get(key) is not None:
            value = _rfc1123(detail[key]) if key in ("startedAt", "finishedAt") else detail[key]
            lines.append(f"      {label + ':':<14}{value}")
    return lines


def _probe(probe: dict[str, Any]) -> str:
    if probe.get("httpGet"):
        get = probe["httpGet"]
        what = f"http-get {get.get('scheme', 'HTTP').lower()}://:{get.get('port')}{get.get('path', '/')}"
    elif probe.get("tcpSocket"):
        what = f"tcp-socket :{probe['tcpSocket'].get('port')}"
    elif probe.get("exec"):
        what = "exec " + json.dumps(probe["exec"].get("command", []))
    else:
        what = "probe"
    return (
        f"{what} delay={probe.get('initialDelaySeconds', 0)}s timeout={probe.get('timeoutSeconds', 1)}s "
        f"period={probe.get('periodSeconds', 10)}s #success={probe.get('successThreshold', 1)} "
        f"#failure={probe.get('failureThreshold', 3)}"
    )


# -- small conversions ---------------------------------------------------------------------------


def human_duration(delta: Any) -> str:
    """A duration as kubectl prints ages (``duration.HumanDuration``): 45s, 5m10s, 3h, 2d5h, 3y."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _exit(terminated: dict[str, Any]) -> str:
    return f"Signal:{terminated['signal']}" if terminated.get("signal") else f"ExitCode:{terminated.get('exitCode')}"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _age(metadata: dict[str, Any], now: datetime) -> str:
    created = metadata.get("creationTimestamp")
    return human_duration(now - _time(created)) if created else "<unknown>"


def _rfc1123(value: str) -> str:
    return _time(value).strftime("%a, %d %b %Y %H:%M:%S %z")


def _millicores(quantity: str) -> int:
    # kubectl prints MilliValue(), which rounds up
    return math.ceil(Decimal(parse_quantity(quantity)) * 1000)


# -- errors --------------------------------------------------------------------------------------


def _body(exc: ApiException) -> bytes:
    body = exc.body
    if isinstance(body, bytes):
        return body
    return str(body or "").encode()


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


__all__ = ["KubernetesExecutor", "KubernetesParams", "human_duration"]
