"""Verification from the ``k8s`` executor's typed rows: pods, events and endpoints of the
component's deployment and the text of ``kubectl logs``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from models.domain._hypothesis import Evidence, Hypothesis
from models.domain._types import FaultType
from models.playbook._votes import STRONG, WEAK, _Vote

_BAD_LOG = re.compile(r"panic|exception|nil pointer|nullpointer|traceback|fatal", re.I)


def _read_k8s(hypothesis: Hypothesis, data: Any, output: str, deployment: str) -> _Vote | None:
    """A vote from a ``k8s`` result: its typed rows (``data["items"]``) of pods, events or endpoints.

    Only ``kubectl logs`` is read as text: its ``data`` holds no rows (pod, container, a line
    count), the log lines themselves are the output.
    """
    if not isinstance(data, Mapping):
        return None
    items = data.get("items")
    if isinstance(items, list):
        pods = _rows(items, "Pod")
        if pods:
            return _read_pods(hypothesis, pods, deployment)
        events = _rows(items, "Event")
        if events:
            return _read_events(hypothesis, events, deployment)
        endpoints = _rows(items, "Endpoints")
        if endpoints:
            return _read_endpoints(hypothesis, endpoints)
        return None
    if "container" in data and "lines" in data:
        return _read_logs(hypothesis, output)
    return None


def _rows(items: list[Any], kind: str) -> list[Mapping[str, Any]]:
    """The executor's rows of ``kind`` (with ``-o json`` the items are API objects, not rows)."""
    return [
        item
        for item in items
        if isinstance(item, Mapping) and item.get("kind") == kind and isinstance(item.get("name"), str)
    ]


def _of_deployment(name: str, deployment: str) -> bool:
    return name == deployment or name.startswith(deployment + "-")


def _read_pods(hypothesis: Hypothesis, pods: list[Mapping[str, Any]], deployment: str) -> _Vote | None:
    c = hypothesis.component
    fault = hypothesis.fault
    mine = [pod for pod in pods if _of_deployment(pod["name"], deployment)]
    if not mine:
        if fault is FaultType.DEPENDENCY_DOWN:
            return _Vote(WEAK, Evidence(kind="pod", source=c, summary=f"no pod of {c} found", score=0.5, details={}))
        return None
    statuses = [str(pod.get("status", "")) for pod in mine]
    unready = [pod for pod in mine if pod.get("ready_containers") != pod.get("total_containers")]
    details = {"pods": [{key: pod.get(key) for key in ("name", "ready", "status", "restarts")} for pod in mine]}
    if fault is FaultType.DEPENDENCY_DOWN:
        if unready or any(status != "Running" for status in statuses):
            return _Vote(
                STRONG,
                Evidence(
                    kind="pod",
                    source=c,
                    summary=f"{c} pods not ready: {', '.join(statuses)}",
                    score=0.9,
                    details=details,
                ),
            )
        return _Vote(
            -WEAK,
            Evidence(
                kind="pod",
                source=c,
                summary=f"all {len(mine)} pod(s) of {c} running and ready",
                score=0.4,
                details=details,
            ),
        )
    if fault is FaultType.MEMORY and any("OOMKilled" in status for status in statuses):
        return _Vote(STRONG, Evidence(kind="pod", source=c, summary=f"{c} pods OOMKilled", score=0.9, details=details))
    return None


def _read_events(hypothesis: Hypothesis, events: list[Mapping[str, Any]], deployment: str) -> _Vote | None:
    c = hypothesis.component
    fault = hypothesis.fault
    # An event is about the component when its object is: the deployment, its replica sets, its pods.
    mine = [
        event
        for event in events
        if (name := str(event.get("object", "")).partition("/")[2]) == c or _of_deployment(name, deployment)
    ]

    def said(*words: str) -> bool:
        return any(word in str(event.get(key, "")) for event in mine for word in words for key in ("reason", "message"))

    details = {
        "events": [
            {key: event.get(key) for key in ("type", "reason", "object", "message", "count")} for event in mine[-5:]
        ]
    }
    if fault is FaultType.MEMORY and said("OOMKill"):
        return _Vote(
            STRONG, Evidence(kind="pod", source=c, summary=f"OOMKilled events for {c}", score=0.9, details=details)
        )
    if fault is FaultType.DEPENDENCY_DOWN and said("BackOff", "Unhealthy", "Failed", "Killing"):
        return _Vote(
            WEAK, Evidence(kind="pod", source=c, summary=f"failure events for {c}", score=0.6, details=details)
        )
    if fault is FaultType.BAD_DEPLOY and said("ScalingReplicaSet"):
        return _Vote(
            WEAK, Evidence(kind="deploy", source=c, summary=f"a recent rollout of {c}", score=0.5, details=details)
        )
    return None


def _read_endpoints(hypothesis: Hypothesis, endpoints: list[Mapping[str, Any]]) -> _Vote | None:
    c = hypothesis.component
    if hypothesis.fault is not FaultType.DEPENDENCY_DOWN:
        return None
    row = next((row for row in endpoints if row["name"] == c), None)
    if row is None:
        return None
    ready = [str(address) for address in row.get("ready") or []]
    details = {"endpoints": {"name": c, "ready": ready, "not_ready": list(row.get("not_ready") or [])}}
    if not ready:
        return _Vote(
            STRONG, Evidence(kind="pod", source=c, summary=f"service {c} has no endpoints", score=1.0, details=details)
        )
    return _Vote(
        -WEAK,
        Evidence(
            kind="pod", source=c, summary=f"service {c} has endpoints {','.join(ready[:3])}", score=0.4, details=details
        ),
    )


def _read_logs(hypothesis: Hypothesis, output: str) -> _Vote | None:
    c = hypothesis.component
    if hypothesis.fault is not FaultType.BAD_DEPLOY:
        return None
    bad = [line for line in output.splitlines() if _BAD_LOG.search(line)]
    if len(bad) >= 5:
        return _Vote(
            WEAK,
            Evidence(
                kind="log",
                source=c,
                summary=f"{len(bad)} panic/exception lines in {c}'s logs",
                score=0.6,
                details={"sample": bad[:3]},
            ),
        )
    return None
