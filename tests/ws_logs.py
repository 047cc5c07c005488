"""Following a task's lines on the task API's ``/ws``, as a subscriber would: every message with
the time it arrived, until the task's final status."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import websocket

#: Prints its own clock three times, a second apart: a line's arrival says how live the stream is.
DATED_LINES = "for i in 1 2 3; do sleep 1; date +%s.%N; done"


def follow_logs(ws_url: str, token: str, task_id: str, *, timeout: float = 30) -> list[tuple[float, dict[str, Any]]]:
    """Subscribe to ``task_id``'s lines; ``(arrival time, message)`` of each, the final status (or
    the error that refused the subscription) last."""
    connection = websocket.create_connection(ws_url, header=[f"Authorization: Bearer {token}"], timeout=timeout)
    received: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    try:
        connection.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": task_id}}))
        while time.monotonic() < deadline:
            message = json.loads(connection.recv())
            received.append((time.time(), message))
            if message["type"] == "error" or (message["type"] == "task.status" and message["data"].get("final")):
                return received
    finally:
        connection.close()
    raise TimeoutError(f"task {task_id} did not end within {timeout:g} s; received {received}")


def stream_dated_lines(base_url: str, ws_url: str, operator: str, viewer: str) -> tuple[str, list[tuple[float, float]]]:
    """Start ``DATED_LINES`` as a background task and follow it: its final status, and each line's
    ``(printed at, arrived at)``."""
    task = {"type": "shell", "sync": False, "timeout": 20, "command": DATED_LINES}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {operator}"}, timeout=30) as http:
        task_id = http.post("/api/v1/tasks", json=task).json()["id"]
    messages = follow_logs(ws_url, viewer, task_id)
    lines = [
        (float(message["data"]["line"]), arrived) for arrived, message in messages if message["type"] == "task.log"
    ]
    return messages[-1][1]["data"]["status"], lines
