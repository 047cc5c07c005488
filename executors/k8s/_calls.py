"""The Kubernetes API calls each kubectl operation makes, and what each prints and returns.

Lists ask the API server for at most ``max_rows`` objects (``limit``); more is reported as
``truncated`` with ``original_rows`` from the server's ``remainingItemCount``. Logs are read with
``limitBytes`` at the output limit. Every call carries the task's remaining time as its timeout.

An operation hands back a ``_View``: the printed lines (from ``_printers`` / ``_describe``) and the
typed ``data``, with which line shows which item of ``data["items"]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from executors._base import RunContext
from executors._errors import NotFound, QueryFailed, TaskTimedOut
from executors.k8s._describe import _describe_pod
from executors.k8s._kubectl import NAMESPACED, KubectlCommand, sort_key
from executors.k8s._printers import (
    _KIND_PREFIX,
    _REVISION,
    _TABLES,
    _annotations,
    _as_document,
    _drop_managed_fields,
    _event_row,
    _millicores,
    _summary,
    _table,
)

_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
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
    notes = []
    pod_name = command.name
    if command.resources == ("deployments",):
        pod_name, found = _pod_of_deployment(call, command.name, namespace)
        if found > 1:
            notes.append(f"Found {found} pods, using pod/{pod_name}")
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
    read = call.cluster.core.read_namespaced_pod_log
    try:
        raw = call.text(read, pod_name, namespace, container=container, **kwargs)
    except ApiException as exc:
        # Like kubectl: a pod of several containers and none named -> its default container.
        if container is not None or exc.status != 400 or "container name must be specified" not in str(exc.body):
            raise
        pod = call.json(call.cluster.core.read_namespaced_pod, pod_name, namespace)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = _annotations(pod).get("kubectl.kubernetes.io/default-container") or names[0]
        notes.append(f'Defaulted container "{container}" out of: {", ".join(names)}')
        raw = call.text(read, pod_name, namespace, container=container, **kwargs)
    text = raw.decode("utf-8", errors="replace")
    truncated = len(raw) >= limit
    if truncated:
        notes.append(f"the log was read up to the output limit ({limit - 1} bytes)")
    lines = text.splitlines()
    data = {"pod": pod_name, "namespace": namespace, "container": container, "lines": len(lines)}
    return _View(lines, data, notes=notes, truncated=truncated)


def _pod_of_deployment(call: _Calls, name: str, namespace: str) -> tuple[str, int]:
    """The pod whose logs ``kubectl logs deployment/NAME`` reads, and how many the deployment has.

    As kubectl does: the pods its selector matches, a running and ready one first, then the
    longest running of those.
    """
    deployment = call.json(call.cluster.apps.read_namespaced_deployment, name, namespace)
    labels = (deployment.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    listed = call.json(call.cluster.core.list_namespaced_pod, namespace, label_selector=selector or None)
    pods = [
        pod
        for pod in listed.get("items", [])
        if labels.items() <= (pod["metadata"].get("labels") or {}).items()
        and not pod["metadata"].get("deletionTimestamp")
    ]
    if not pods:
        raise NotFound(f"deployment.apps/{name} in namespace {namespace!r} has no pods to read logs from")

    def preference(pod: dict[str, Any]) -> tuple[bool, bool, str]:
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        return (status.get("phase") != "Running", not ready, status.get("startTime") or "~")

    return min(pods, key=preference)["metadata"]["name"], len(pods)


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


def _body(exc: ApiException) -> bytes:
    body = exc.body
    if isinstance(body, bytes):
        return body
    return str(body or "").encode()
