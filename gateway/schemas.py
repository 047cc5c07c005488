"""What goes over the wire: request and response bodies of the task API and its WebSocket."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from executors import TaskResult, TaskSpec, TaskStatus


class ApprovalRequest(BaseModel):
    """An approver's approval sent with a task. The token's name is recorded as the approver."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)
    approved_by: str | None = Field(
        default=None,
        max_length=200,
        description="Ignored: the approver is the name of the token that sent the request.",
    )


class TaskRequest(TaskSpec):
    """The spec's task JSON: ``{agent_id, type, command, params, sync, timeout}``.

    ``agent_id`` may be omitted (the default agent runs the task). ``approval`` is ours and only an
    approver's token may send it.
    """

    approval: ApprovalRequest | None = None  # type: ignore[assignment]


class ApproveRequest(BaseModel):
    """``POST /api/v1/tasks/{id}/approve``: run a task that was waiting for an approval."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)
    sync: bool = True


class RejectRequest(BaseModel):
    """``POST /api/v1/tasks/{id}/reject``: refuse a task that was waiting for an approval."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class TaskSummary(BaseModel):
    """One task in the history: what, where, who, when and how it ended (without its output)."""

    id: str
    status: TaskStatus
    agent_id: str
    environment: str
    type: str
    invocation: str = ""
    submitted_by: str
    approved_by: str | None = None
    dispatch: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    error: dict[str, str] | None = None
    flow_run_id: str | None = None


class TaskView(TaskSummary):
    """A task with its result once it has one (``result`` is ``null`` while it is pending/running)."""

    result: TaskResult | None = None


class TaskPage(BaseModel):
    """A page of the task history, newest first."""

    items: list[TaskSummary]
    total: int
    limit: int
    offset: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[dict[str, str]] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message"}}`` (``fields`` names the bad inputs)."""

    error: ErrorDetail


class HealthView(BaseModel):
    status: Literal["ok"] = "ok"
    dispatch: str
    run_as: str


# -- WebSocket messages -------------------------------------------------------------------------


class LogLine(BaseModel):
    """``task.log``: one line of a task's output, as it was produced."""

    task_id: str
    seq: int
    stream: Literal["stdout", "stderr"]
    line: str
    at: datetime
    #: ``True`` when the line comes from the stored result, not from the live stream.
    replayed: bool = False


class TaskStatusData(BaseModel):
    """``task.status``: the task's status; ``final`` is ``True`` once it ends."""

    task_id: str
    status: TaskStatus
    final: bool
    exit_code: int | None = None
    error: dict[str, str] | None = None


class WsMessage(BaseModel):
    type: str
    data: dict[str, Any]
