"""Task records: every task the API accepted, its status and result, kept across restarts.

SQLite in the state folder by default (``<state_dir>/tasks.sqlite3``, WAL). A record holds the
task with its secrets masked; the unmasked task is kept only while it waits for an approval (it
must run as sent once approved) and is cleared when it is approved or rejected. Tokens are never
stored: ``submitted_by`` and ``approved_by`` are token names.

Each record names the gateway that runs it, so that at start a gateway marks its own orphans
(records left ``pending``/``running`` by a process that died) ``crashed`` — never ``succeeded``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from executors import ConfigurationError, ErrorInfo, TaskResult, TaskStatus
from gateway.schemas import TaskSummary, TaskView

_COLUMNS = (
    "id",
    "created_at",
    "agent_id",
    "environment",
    "type",
    "status",
    "submitted_by",
    "approved_by",
    "dispatch",
    "gateway",
    "invocation",
    "started_at",
    "finished_at",
    "flow_run_id",
    "exit_code",
    "error",
    "spec",
    "pending_spec",
    "result",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    {", ".join(f"{c} TEXT PRIMARY KEY" if c == "id" else f"{c} TEXT" for c in _COLUMNS)}
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks(created_at);
CREATE INDEX IF NOT EXISTS tasks_agent ON tasks(agent_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status, created_at);
"""
_ACTIVE = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)


def _timestamp(value: datetime | None) -> str | None:
    # One fixed format, so that text order is time order in SQL.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) if value else None


class TaskRecord(BaseModel):
    """One task as stored: the summary columns, the masked task and, once it ended, its result."""

    id: str
    created_at: datetime
    agent_id: str
    environment: str
    type: str
    status: TaskStatus
    submitted_by: str
    approved_by: str | None = None
    dispatch: str
    gateway: str
    invocation: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    flow_run_id: str | None = None
    exit_code: int | None = None
    error: ErrorInfo | None = None
    #: The task with its secrets masked, for people.
    spec: dict[str, Any]
    #: The task as sent, only while it waits for an approval.
    pending_spec: dict[str, Any] | None = None
    result: TaskResult | None = None

    def summary(self) -> TaskSummary:
        return TaskSummary.model_validate(self._public())

    def view(self) -> TaskView:
        return TaskView.model_validate({**self._public(), "result": self.result})

    def _public(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"spec", "pending_spec", "result", "gateway"})
        data["error"] = self.error.model_dump() if self.error else None
        return data

    def with_result(self, result: TaskResult) -> TaskRecord:
        """This record ended with ``result`` (the waiting task is kept only while it still waits)."""
        return self.model_copy(
            update={
                "status": result.status,
                "result": result,
                "invocation": result.invocation or self.invocation,
                "started_at": self.started_at or result.started_at,
                "finished_at": result.finished_at or datetime.now(UTC),
                "exit_code": result.exit_code,
                "error": result.error,
                "approved_by": result.approved_by or self.approved_by,
                "pending_spec": self.pending_spec if result.status is TaskStatus.APPROVAL_REQUIRED else None,
            }
        )

    def as_row(self) -> tuple[Any, ...]:
        values: dict[str, Any] = {
            **self.model_dump(
                mode="json",
                include={
                    "id",
                    "agent_id",
                    "environment",
                    "type",
                    "submitted_by",
                    "approved_by",
                    "dispatch",
                    "gateway",
                    "invocation",
                    "flow_run_id",
                },
            ),
            "status": self.status.value,
            "created_at": _timestamp(self.created_at),
            "started_at": _timestamp(self.started_at),
            "finished_at": _timestamp(self.finished_at),
            "exit_code": None if self.exit_code is None else str(self.exit_code),
            "error": self.error.model_dump_json() if self.error else None,
            "spec": json.dumps(self.spec, ensure_ascii=False, default=str),
            "pending_spec": json.dumps(self.pending_spec, ensure_ascii=False) if self.pending_spec else None,
            "result": self.result.model_dump_json() if self.result else None,
        }
        return tuple(values[column] for column in _COLUMNS)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> TaskRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        for column in ("created_at", "started_at", "finished_at"):
            values[column] = _parse_time(values[column])
        values["exit_code"] = int(values["exit_code"]) if values["exit_code"] is not None else None
        values["error"] = ErrorInfo.model_validate_json(values["error"]) if values["error"] else None
        values["spec"] = json.loads(values["spec"] or "{}")
        values["pending_spec"] = json.loads(values["pending_spec"]) if values["pending_spec"] else None
        values["result"] = TaskResult.model_validate_json(values["result"]) if values["result"] else None
        return cls.model_validate(values)


@dataclass(frozen=True)
class TaskQuery:
    """Filters of the history, all optional; ``since``/``until`` bound ``created_at``."""

    agent_id: str | None = None
    type: str | None = None
    status: TaskStatus | None = None
    submitted_by: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


class SQLiteTaskStore:
    """Task records in one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
            if fresh:
                # Waiting tasks are stored as sent, so the file is for this user only.
                os.chmod(path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigurationError(f"cannot open the task store at {path}: {exc}") from exc

    def put(self, record: TaskRecord) -> None:
        """Insert or replace ``record``."""
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO tasks ({', '.join(_COLUMNS)}) VALUES ({placeholders})", record.as_row()
            )

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return TaskRecord.from_row(row) if row else None

    def claim(self, task_id: str, expected: TaskStatus, record: TaskRecord) -> bool:
        """Replace the record only if it is still in ``expected`` status (one approver wins)."""
        assignments = ", ".join(f"{c} = ?" for c in _COLUMNS if c != "id")
        values = [v for c, v in zip(_COLUMNS, record.as_row(), strict=True) if c != "id"]
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE tasks SET {assignments} WHERE id = ? AND status = ?", (*values, task_id, expected.value)
            )
        return cursor.rowcount == 1

    def query(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        """Records matching ``query``, newest first, and how many match in all."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("agent_id", query.agent_id),
            ("type", query.type),
            ("status", query.status.value if query.status else None),
            ("submitted_by", query.submitted_by),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if query.since is not None:
            clauses.append("created_at >= ?")
            args.append(_timestamp(query.since))
        if query.until is not None:
            clauses.append("created_at < ?")
            args.append(_timestamp(query.until))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM tasks {where}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM tasks {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                [*args, query.limit, query.offset],
            ).fetchall()
        return [TaskRecord.from_row(row) for row in rows], total

    def active(self, gateway: str) -> list[TaskRecord]:
        """This gateway's records still ``pending`` or ``running``."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM tasks WHERE gateway = ? AND status IN (?, ?)",
                (gateway, *_ACTIVE),
            ).fetchall()
        return [TaskRecord.from_row(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_task_store(url: str) -> SQLiteTaskStore:
    """``sqlite:///path/to/tasks.sqlite3``."""
    if url.startswith("sqlite:///"):
        return SQLiteTaskStore(Path(url.removeprefix("sqlite:///")).expanduser())
    raise ConfigurationError(f"unsupported task store URL {url!r}: use sqlite:///PATH")
