"""``/ws``: live task output over a WebSocket, as in the spec.

Send ``{"type": "task.subscribe_logs", "data": {"task_id": "task-123"}}``; receive the task's
status (``task.status``, ``final: false``), every output line so far and then each new one as it is
produced (``task.log``: ``{task_id, seq, stream, line, at}``), and last its final status
(``task.status``, ``final: true``). One connection may follow several tasks;
``task.unsubscribe_logs`` stops one. Problems come back as ``{"type": "error", "data": {code, message}}``.

The token goes in the ``Authorization: Bearer`` header of the handshake or, for clients that cannot
set headers (browsers), as ``data.token`` of the subscribe message. Any role may subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gateway.auth import authenticate_websocket
from gateway.errors import GatewayError
from gateway.logstream import Subscription
from gateway.task_service import TaskService

router = APIRouter()

#: Messages waiting for a slow client; beyond this its subscriptions are cut off.
OUTBOX_SIZE = 1_000
#: What a task id looks like (the REST API's path parameter says the same).
TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


async def _next_text(websocket: WebSocket) -> str | None:
    """The next text frame's text; ``None`` for a binary frame. ``WebSocketDisconnect`` at the end."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    return text


def _error(code: str, message: str, task_id: str | None = None) -> dict[str, Any]:
    data = {"code": code, "message": message}
    if task_id:
        data["task_id"] = task_id
    return {"type": "error", "data": data}


@router.websocket("/ws")
async def task_logs(websocket: WebSocket) -> None:
    """Subscribe to the output of tasks (see the module docstring)."""
    service: TaskService = websocket.app.state.service
    await service.start()
    await websocket.accept()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX_SIZE)
    following: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}

    async def write() -> None:
        while True:
            message = await outbox.get()
            await websocket.send_text(json.dumps(message, ensure_ascii=False))

    async def forward(subscription: Subscription) -> None:
        async for message in subscription:
            await outbox.put(message)
        if subscription.overflowed:
            await outbox.put(_error("too_slow", "the client did not keep up; subscribe again", subscription.task_id))
        following.pop(subscription.task_id, None)

    writer = asyncio.create_task(write())
    try:
        while True:
            text = await _next_text(websocket)
            try:
                message = json.loads(text) if text is not None else None
            except (ValueError, RecursionError):  # not JSON, nested past the parser, too many digits
                message = None
            if message is None:
                await outbox.put(_error("invalid_message", "messages are JSON objects in text frames"))
                continue
            if not isinstance(message, dict) or not isinstance(message.get("data", {}), dict):
                await outbox.put(_error("invalid_message", 'messages look like {"type": ..., "data": {...}}'))
                continue
            kind, data = message.get("type"), message.get("data") or {}
            if kind == "ping":
                await outbox.put({"type": "pong", "data": {}})
                continue
            if kind not in ("task.subscribe_logs", "task.unsubscribe_logs"):
                await outbox.put(
                    _error("unknown_message_type", f"unknown message type {repr(kind)[:80]}; use task.subscribe_logs")
                )
                continue
            task_id = data.get("task_id")
            if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
                await outbox.put(_error("invalid_message", "data.task_id is missing or is not a task id"))
                continue
            if kind == "task.unsubscribe_logs":
                if task_id in following:
                    subscription, forwarder = following.pop(task_id)
                    service.hub.unsubscribe(subscription)
                    forwarder.cancel()
                continue
            token = data.get("token")
            if authenticate_websocket(websocket, token if isinstance(token, str) else None) is None:
                await outbox.put(_error("unauthenticated", "a valid bearer token is needed", task_id))
                continue
            if task_id in following:
                continue
            try:
                subscription = service.subscribe(task_id)
            except GatewayError as exc:
                await outbox.put(_error(exc.code, exc.message, task_id))
                continue
            following[task_id] = (subscription, asyncio.create_task(forward(subscription)))
    except WebSocketDisconnect:
        pass
    finally:
        for subscription, forwarder in list(following.values()):
            service.hub.unsubscribe(subscription)
            forwarder.cancel()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
