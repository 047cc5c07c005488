"""Live output of tasks, fanned out to WebSocket subscribers.

A task's lines are produced in another thread (an in-process task) or read from the Prefect
task-run log (a task on an environment's worker). Either way they are published here, stamped with
the time they arrived, kept (bounded) for subscribers that come late, and pushed to every current
subscriber through the event loop. The last message of a task is its final status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from gateway.schemas import LogLine, TaskStatusData

LineSink = Callable[[str, str], None]
"""Receives ``(stream, line)``; callable from any thread."""

LOG_MESSAGE = "task.log"
STATUS_MESSAGE = "task.status"


def log_message(line: LogLine) -> dict[str, Any]:
    return {"type": LOG_MESSAGE, "data": line.model_dump(mode="json")}


def status_message(status: TaskStatusData) -> dict[str, Any]:
    return {"type": STATUS_MESSAGE, "data": status.model_dump(mode="json")}


class Subscription:
    """One subscriber's messages, in order. A subscriber too slow to keep up is cut off."""

    def __init__(self, task_id: str, limit: int):
        self.task_id = task_id
        self.overflowed = False
        self._limit = limit
        self._items: deque[dict[str, Any]] = deque()
        self._closed = False
        self._ready = asyncio.Event()

    def push(self, message: dict[str, Any], *, last: bool = False) -> None:
        if self._closed:
            return
        if len(self._items) >= self._limit:
            self.overflowed = True
            self._closed = True
        else:
            self._items.append(message)
            self._closed = last
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            while self._items:
                yield self._items.popleft()
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()


class _TaskLog:
    def __init__(self, task_id: str, max_lines: int):
        self.task_id = task_id
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self.seq = 0
        self.final: TaskStatusData | None = None
        self.subscribers: set[Subscription] = set()


class LogHub:
    """Every task's recent lines and subscribers. Publish from any thread; subscribe on the loop.

    Args:
        max_lines: lines kept per task for late subscribers (older ones are dropped).
        max_tasks: finished tasks whose lines are kept (the oldest go first; running ones stay).
    """

    def __init__(self, max_lines: int = 10_000, max_tasks: int = 1_000):
        self.max_lines = max_lines
        self.max_tasks = max_tasks
        self._logs: OrderedDict[str, _TaskLog] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def open(self, task_id: str) -> None:
        """Start (or restart, after an approval) the log of ``task_id``. Call on the loop."""
        log = self._logs.get(task_id)
        if log is None:
            self._logs[task_id] = _TaskLog(task_id, self.max_lines)
        else:
            log.final = None
            self._logs.move_to_end(task_id)
        self._evict()

    def sink(self, task_id: str) -> LineSink:
        """A thread-safe ``(stream, line)`` callback feeding ``task_id``'s log."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("LogHub.bind(loop) first")

        def publish(stream: str, line: str) -> None:
            at = datetime.now(UTC)
            # A task still running while the gateway shuts down outlives the loop: its lines have
            # no one left to go to, and must not fail the task.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._append, task_id, stream, line, at)

        return publish

    def publish(self, task_id: str, stream: str, line: str, at: datetime | None = None) -> None:
        """Add a line from the loop itself (lines read from the Prefect log)."""
        self._append(task_id, stream, line, at or datetime.now(UTC))

    def _append(self, task_id: str, stream: str, line: str, at: datetime) -> None:
        log = self._logs.get(task_id)
        if log is None:
            return
        log.seq += 1
        entry = LogLine(
            task_id=task_id, seq=log.seq, stream="stderr" if stream == "stderr" else "stdout", line=line, at=at
        )
        log.lines.append(entry)
        if log.subscribers:
            message = log_message(entry)
            for subscriber in list(log.subscribers):
                subscriber.push(message)
                if subscriber.overflowed:
                    log.subscribers.discard(subscriber)

    def line_count(self, task_id: str) -> int:
        """How many lines ``task_id`` has printed so far (0 for a task it does not know)."""
        log = self._logs.get(task_id)
        return log.seq if log is not None else 0

    def finish(self, status: TaskStatusData) -> None:
        """The task ended: tell its subscribers and end their subscriptions. Call on the loop."""
        log = self._logs.get(status.task_id)
        if log is None:
            return
        log.final = status
        message = status_message(status)
        for subscriber in log.subscribers:
            subscriber.push(message, last=True)
        log.subscribers.clear()
        self._evict()

    def subscribe(self, task_id: str, current: TaskStatusData | None = None) -> Subscription | None:
        """The lines so far, then live ones, then the final status; ``None`` if none are kept.

        ``current`` (the stored status) is sent first so the subscriber knows where the task is.
        """
        log = self._logs.get(task_id)
        if log is None:
            return None
        subscription = Subscription(task_id, limit=self.max_lines + 16)
        if current is not None and log.final is None:
            subscription.push(status_message(current))
        for entry in log.lines:
            subscription.push(log_message(entry))
        if log.final is not None:
            subscription.push(status_message(log.final), last=True)
        else:
            log.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        log = self._logs.get(subscription.task_id)
        if log is not None:
            log.subscribers.discard(subscription)
        subscription.close()

    def _evict(self) -> None:
        if len(self._logs) <= self.max_tasks:
            return
        for task_id in [task_id for task_id, log in self._logs.items() if log.final is not None]:
            if len(self._logs) <= self.max_tasks:
                break
            del self._logs[task_id]
