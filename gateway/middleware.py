"""What wraps every request: the body size limit and the audit record of the request.

Both are plain ASGI middleware (no per-request task or body buffering): the size limit answers
413 from the ``Content-Length`` header, or as soon as a streamed body passes the limit; the audit
writes one ``api_request`` record per request or WebSocket session after it ends, with the
caller's token name (never the token), the method, path and status.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from executors import AuditEvent, AuditLog, AuditRecord, AuditUnavailable, redact_text
from gateway.auth import PRINCIPAL_SCOPE_KEY, Principal

log = structlog.get_logger("cloud_agent.gateway")

#: Handlers leave the task id and the error code of a request here for its audit record.
TASK_SCOPE_KEY = "cloud_agent.task_id"
ERROR_SCOPE_KEY = "cloud_agent.error_code"
UNAUTHENTICATED = "-"


class _BodyTooLarge(BaseException):
    """Not an ``Exception``: FastAPI turns any ``Exception`` raised while it reads a body into a 400."""


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "fields": []}}).encode()


class BodySizeLimit:
    """Answer 413 for a request body larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        scope[ERROR_SCOPE_KEY] = "payload_too_large"
        body = error_body("payload_too_large", f"the request body is larger than {self.max_bytes} bytes")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestAudit:
    """Append an ``api_request`` audit record for every request and WebSocket session."""

    def __init__(self, app: ASGIApp, audit: AuditLog):
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        clock = time.perf_counter()
        status: int | None = None
        recorded = False

        async def capture(message: Message) -> None:
            nonlocal status, recorded
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status is None:
                status = 403
            elif kind == "http.response.body" and not message.get("more_body", False):
                # Recorded before the client has the whole reply: no one holds an answer whose
                # request the audit log does not show yet.
                recorded = True
                await self._append(scope, status or 500, clock)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not recorded:
                await self._append(scope, status or 500, clock)

    async def _append(self, scope: Scope, status: int, clock: float) -> None:
        record = self._record(scope, status, (time.perf_counter() - clock) * 1000)
        try:
            await asyncio.to_thread(self.audit.append, record)
        except AuditUnavailable as exc:
            log.error("request_audit_failed", error=str(exc), path=scope.get("path"))

    @staticmethod
    def _record(scope: Scope, status: int, duration_ms: float) -> AuditRecord:
        principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
        path_params: dict[str, Any] = scope.get("path_params") or {}
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope.get("path", "") + (f"?{query}" if query else "")
        method = scope.get("method", "WEBSOCKET")
        client = scope.get("client")
        return AuditRecord(
            event=AuditEvent.API_REQUEST,
            task_id=str(scope.get(TASK_SCOPE_KEY) or path_params.get("task_id") or ""),
            actor=principal.name if principal else UNAUTHENTICATED,
            command=redact_text(f"{method} {target}")[:2000],
            status=str(status),
            error_code=scope.get(ERROR_SCOPE_KEY),
            message=f"client {client[0]}" if client else None,
            duration_ms=round(duration_ms, 3),
        )
