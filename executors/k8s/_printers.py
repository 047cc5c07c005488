"""kubectl's printers: a table per resource kind (``get``), ``-o json|yaml`` documents, ages and quantities.

Each table printer turns API objects (plain JSON, as the API server sent them) into headers, the
cells kubectl prints, and one typed data row per object, the row ``data["items"]`` carries. Nothing
here calls the API.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

_REVISION = "deployment.kubernetes.io/revision"
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


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


__all__ = ["human_duration"]
