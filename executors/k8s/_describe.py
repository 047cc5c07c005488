"""The ``kubectl describe pod`` text, from the pod and its events as the API server sent them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from executors.k8s._printers import _event_row, _rfc1123, _seen, _table


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
