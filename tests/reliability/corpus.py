"""What the reliability suite throws at the system: hostile requests, hostile output, and command
lines that try to get around the policy. Data only; ``scenarios.py`` sends it.

A hostile request names what must come back: an HTTP status and error code for what the API
refuses, or the task status and error code for what it accepts and the engine refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.spec_data import ALERTMANAGER_SAMPLE

SAMPLE_ALERT = ALERTMANAGER_SAMPLE


@dataclass(frozen=True)
class Hostile:
    """One request: ``body`` (bytes as sent) to ``path``; what it must get back."""

    name: str
    body: bytes
    status: int
    #: The error code of a refused request, or of the task's result when ``status`` is 200.
    code: str | None = None
    #: For an accepted task: the status its result must have.
    task_status: str | None = None
    path: str = "/api/v1/tasks"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def _task(**fields: Any) -> bytes:
    return _json({"type": "shell", "command": "echo ok", **fields})


HOSTILE_TASKS: list[Hostile] = [
    # -- wrong types ------------------------------------------------------------------------------
    Hostile("type is a number", _json({"type": 123, "command": "id"}), 422, "invalid_task"),
    Hostile("command is a list", _json({"type": "shell", "command": ["rm", "-rf", "/"]}), 422, "invalid_task"),
    Hostile("command is an object", _json({"type": "shell", "command": {"$ne": ""}}), 422, "invalid_task"),
    Hostile("params is a string", _task(params="connection=default"), 422, "invalid_task"),
    Hostile("params is a list", _task(params=[1, 2]), 422, "invalid_task"),
    Hostile("sync is a list", _task(sync=[True]), 422, "invalid_task"),
    Hostile("timeout is a word", _task(timeout="soon"), 422, "invalid_task"),
    Hostile("timeout is negative", _task(timeout=-1), 422, "invalid_task"),
    Hostile("timeout is NaN", b'{"type": "shell", "command": "id", "timeout": NaN}', 422, "invalid_task"),
    Hostile("timeout is Infinity", b'{"type": "shell", "command": "id", "timeout": Infinity}', 422, "invalid_task"),
    Hostile("timeout has 5000 digits", b'{"type": "shell", "timeout": ' + b"9" * 5000 + b"}", 400, "bad_request"),
    Hostile("agent_id is a number", _task(agent_id=7), 422, "invalid_task"),
    Hostile("agent_id is empty", _task(agent_id=""), 422, "invalid_task"),
    Hostile("approval is a string", _task(approval="yes"), 422, "invalid_task"),
    Hostile("body is a list", b"[1, 2]", 422, "invalid_task"),
    Hostile("body is a string", b'"rm -rf /"', 422, "invalid_task"),
    Hostile("body is null", b"null", 422, "invalid_task"),
    Hostile("body is empty", b"", 422, "invalid_task"),
    Hostile("body is cut short", b'{"type": "shell", "comm', 422, "invalid_task"),
    Hostile("unknown task type", _json({"type": "telnet", "command": "x"}), 422, "invalid_task"),
    Hostile("unknown agent", _task(agent_id="agent-nowhere"), 404, "unknown_agent"),
    Hostile("no type", _json({"command": "id"}), 422, "invalid_task"),
    Hostile("text/plain body", _task(), 422, "invalid_task", content_type="text/plain"),
    Hostile(
        "form body", b"type=shell&command=id", 422, "invalid_task", content_type="application/x-www-form-urlencoded"
    ),
    # -- unknown fields ---------------------------------------------------------------------------
    Hostile("unknown top-level field", _task(colour="red"), 422, "invalid_task"),
    Hostile(
        "unknown approval field",
        _task(approval={"reason": "x", "approved_by": "root", "level": 9}),
        422,
        "invalid_task",
    ),
    Hostile(
        "unknown api param",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/", "proxy": "x"}}),
        200,
        "invalid_task",
        "failed",
    ),
    # -- huge bodies ------------------------------------------------------------------------------
    Hostile("2 MB command", _task(command="x" * 2_000_000), 413, "payload_too_large"),
    Hostile("200 kB command", _task(command="echo " + "x" * 200_000), 422, "invalid_task"),
    Hostile("100k params keys", _task(params={f"k{n}": n for n in range(60_000)}), 200, None, "succeeded"),
    # -- deep nesting -----------------------------------------------------------------------------
    Hostile(
        "params nested 40 deep",
        f'{{"type": "shell", "command": "id", "params": {_nested(40)}}}'.encode(),
        422,
        "invalid_task",
    ),
    Hostile(
        "params nested 900 deep",
        f'{{"type": "shell", "command": "id", "params": {_nested(900)}}}'.encode(),
        422,
        "invalid_task",
    ),
    Hostile(
        "lists nested 900 deep",
        b'{"type": "shell", "command": "id", "params": {"a": ' + b"[" * 900 + b"]" * 900 + b"}}",
        422,
        "invalid_task",
    ),
    Hostile(
        "params nested 100000 deep", f'{{"type": "shell", "params": {_nested(100_000)}}}'.encode(), 400, "bad_request"
    ),
    # -- encodings --------------------------------------------------------------------------------
    Hostile("latin-1 body", '{"type": "shell", "command": "echo café"}'.encode("latin-1"), 400, "bad_request"),
    Hostile("binary body", b"\xff\xfe\x00\x01garbage", 400, "bad_request"),
    Hostile("lone surrogate in command", b'{"type": "shell", "command": "echo \\ud800"}', 422, "invalid_task"),
    Hostile(
        "lone surrogate in a param",
        b'{"type": "shell", "command": "id", "params": {"x": "\\udfff"}}',
        422,
        "invalid_task",
    ),
    Hostile(
        "lone surrogate in a param name",
        b'{"type": "shell", "command": "id", "params": {"\\ud800": 1}}',
        422,
        "invalid_task",
    ),
    # -- NUL bytes --------------------------------------------------------------------------------
    Hostile("NUL in command", _task(command="echo a\x00b"), 422, "invalid_task"),
    Hostile("NUL in SQL", _json({"type": "postgres", "command": "SELECT 1\x00; DROP TABLE t"}), 422, "invalid_task"),
    Hostile("NUL in agent_id", _task(agent_id="agent-local-001\x00"), 404, "unknown_agent"),
    Hostile(
        "NUL in connection name",
        _json({"type": "postgres", "command": "SELECT 1", "params": {"connection": "a\x00"}}),
        200,
        "unknown_connection",
        "failed",
    ),
    Hostile(
        "CRLF in an HTTP header",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/", "headers": {"x": "a\r\nHost: evil"}}}),
        200,
        "invalid_task",
        "failed",
    ),
    Hostile(
        "NUL in an HTTP header",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/", "headers": {"x": "a\x00"}}}),
        200,
        "invalid_task",
        "failed",
    ),
    Hostile(
        "NUL in a URL",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/\x00"}}),
        200,
        "invalid_task",
        "failed",
    ),
    Hostile("unbalanced Redis quote", _json({"type": "redis", "command": 'GET "a'}), 200, "invalid_task", "failed"),
    # -- paths and queries ------------------------------------------------------------------------
    Hostile("task id with a NUL", b"", 422, "invalid_request", path="/api/v1/tasks/task-%00"),
    Hostile("task id of 500 characters", b"", 422, "invalid_request", path="/api/v1/tasks/" + "a" * 500),
    Hostile("task id climbing out", b"", 404, None, path="/api/v1/tasks/..%2f..%2fetc%2fpasswd"),
    Hostile("history since garbage", b"", 422, "invalid_request", path="/api/v1/tasks?since=yesterday"),
    Hostile("history limit huge", b"", 422, "invalid_request", path="/api/v1/tasks?limit=" + "9" * 30),
    Hostile("history status unknown", b"", 422, "invalid_request", path="/api/v1/tasks?status=great"),
    Hostile(
        "history injection", b"", 200, None, path="/api/v1/tasks?agent_id=%27%20OR%201%3D1%3B%20DROP%20TABLE%20tasks"
    ),
]


def _alert(**fields: Any) -> dict[str, Any]:
    payload = json.loads(SAMPLE_ALERT.read_text())
    payload.update(fields)
    return payload


def _alert_with(**alert_fields: Any) -> bytes:
    payload = _alert()
    payload["alerts"][0].update(alert_fields)
    return _json(payload)


def hostile_alerts() -> list[Hostile]:
    """Alert payloads (read at call time: the sample lives in the shared spec folder)."""
    resolved = _alert(status="resolved")
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    cases = [
        ("version is a number", _json(_alert(version=4)), 422),
        ("alerts is a string", _json(_alert(alerts="x")), 422),
        ("no alerts", _json(_alert(alerts=[])), 422),
        ("labels is a list", _json(_alert(commonLabels=["a"])), 422),
        ("a label is a number", _json(_alert(commonLabels={"a": 1})), 422),
        ("labels nested", _json(_alert(commonLabels=json.loads(_nested(50)))), 422),
        ("startsAt is a word", _alert_with(startsAt="yesterday"), 422),
        ("startsAt in year 0", _alert_with(startsAt="0000-01-01T00:00:00Z"), 422),
        ("status unknown", _json(_alert(status="burning")), 422),
        ("groupKey of 20 kB", _json(_alert(groupKey="x" * 20_000)), 422),
        ("a lone surrogate in a label", _json(_alert()).replace(b'"alertname": "', b'"alertname": "\\udc00'), 422),
        ("a NUL in a label", _json(_alert()).replace(b'"alertname": "', b'"alertname": "\\u0000'), 422),
        ("truncatedAlerts is NaN", _json(_alert()).replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": NaN'), 422),
        ("body is null", b"null", 422),
        ("body is a list", b"[]", 422),
        ("body is empty", b"", 422),
        ("body is cut short", b'{"version": "4", ', 422),
        ("binary body", b"\xff\xfe garbage", 422),
        ("latin-1 body", '{"version": "4", "receiver": "café"}'.encode("latin-1"), 400),
        ("nested 100000 deep", b'{"version": "4", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
        ("2 MB body", _json(_alert(receiver="x" * 2_000_000)), 413),
    ]
    hostile = [Hostile(name, body, status, None, path="/api/v1/alerts") for name, body, status in cases]
    # Unknown fields are ignored on purpose (Alertmanager adds fields between versions); a resolved
    # group starts nothing, so this one is answered without starting a cycle.
    unknown = _json({**resolved, "newField": {"deep": json.loads(_nested(30))}, "x-vendor": [1, 2]})
    hostile.append(Hostile("unknown fields (ignored)", unknown, 202, None, path="/api/v1/alerts"))
    return hostile


#: WebSocket messages: each must be answered (an ``error`` or ``pong``), never drop the connection.
HOSTILE_WS_MESSAGES: list[tuple[str, bytes | str]] = [
    ("binary frame", b"\x00\xff\xfe"),
    ("not JSON", "hello"),
    ("JSON nested 100000 deep", "[" * 100_000 + "]" * 100_000),
    ("a number with 5000 digits", '{"type": ' + "9" * 5000 + "}"),
    ("NaN type", '{"type": NaN}'),
    ("data is a list", '{"type": "task.subscribe_logs", "data": []}'),
    ("task id is a list", '{"type": "task.subscribe_logs", "data": {"task_id": ["x"]}}'),
    ("task id with a lone surrogate", '{"type": "task.subscribe_logs", "data": {"task_id": "\\ud800"}}'),
    ("task id of 100 kB", '{"type": "task.subscribe_logs", "data": {"task_id": "' + "x" * 100_000 + '"}}'),
    ("unknown type", '{"type": "task.delete", "data": {"task_id": "x"}}'),
    ("a 1 MB message", '{"type": "ping", "pad": "' + "x" * 1_000_000 + '"}'),
]

#: Shell tasks with hostile output: each must succeed, come back as valid JSON, and say what it did.
HOSTILE_OUTPUT: list[tuple[str, str, str | None]] = [
    # (name, command, a note the result must carry)
    ("not UTF-8", r"printf 'caf\351 \377\376'", "not valid UTF-8"),
    ("NUL bytes", r"printf 'a\000b\000c'", None),
    ("binary", "head -c 65536 /dev/urandom", "not valid UTF-8"),
    ("a lone surrogate's UTF-8-ish bytes", r"printf '\355\240\200'", "not valid UTF-8"),
    ("escape sequences", r"printf '\033[2J\033]0;title\007\r\b'", None),
    ("a multi-byte character cut by the limit", "yes 'é' | head -c 3000000", None),
]
