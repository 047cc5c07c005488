"""Every reply a client can read has its request in the audit log already."""

import asyncio
import time

import pytest

from executors import AuditRecord
from gateway.middleware import RequestAudit


class _SlowAudit:
    """An audit log whose appends take a while, as a busy SQLite file's do."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> None:
        time.sleep(0.05)
        self.records.append(record)


async def _reply(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await send({"type": "http.response.body", "body": b" and the rest"})


def test_the_record_is_written_before_the_reply_is_complete() -> None:
    audit = _SlowAudit()
    seen_at_end: list[int] = []

    async def send(message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            seen_at_end.append(len(audit.records))

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/api/v1/tasks", "query_string": b"", "headers": []}
    asyncio.run(RequestAudit(_reply, audit)(scope, receive, send))
    assert seen_at_end == [1]
    assert len(audit.records) == 1 and audit.records[0].status == "200"
    assert audit.records[0].command == "GET /api/v1/tasks"


def test_a_request_that_fails_before_replying_is_recorded_once() -> None:
    audit = _SlowAudit()

    async def broken(scope, receive, send) -> None:
        raise RuntimeError("handler crashed")

    async def noop(message) -> None:
        return None

    scope = {"type": "http", "method": "POST", "path": "/api/v1/tasks", "query_string": b"", "headers": []}
    with pytest.raises(RuntimeError, match="handler crashed"):
        asyncio.run(RequestAudit(broken, audit)(scope, noop, noop))
    assert [record.status for record in audit.records] == ["500"]
