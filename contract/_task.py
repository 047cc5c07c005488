"""The task contract of the spec: what a caller asks for and what it gets back."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract._errors import InvalidTask

#: Upper bound on any task's timeout, whatever an environment allows (one day).
MAX_TIMEOUT_SECONDS = 86_400.0
#: Commands longer than this are refused: a diagnostic command is not a payload.
MAX_COMMAND_CHARS = 100_000
#: ``params`` nested deeper than this are refused: no executor's params go beyond a few levels, and
#: every layer below (masking, audit, storage, JSON) walks them recursively.
MAX_PARAMS_DEPTH = 32


class RiskClass(StrEnum):
    """How much a task may change the world. Ordered: read < write < destructive."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        return _RISK_ORDER[self]

    @classmethod
    def highest(cls, risks: Iterable[RiskClass]) -> RiskClass:
        """The riskiest of ``risks`` (``read`` when there are none)."""
        return max(risks, key=lambda risk: risk.rank, default=cls.READ)


_RISK_ORDER = {RiskClass.READ: 0, RiskClass.WRITE: 1, RiskClass.DESTRUCTIVE: 2}


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    DENIED = "denied"
    APPROVAL_REQUIRED = "approval_required"
    #: The process running the task died (worker killed, gateway restarted mid-task).
    CRASHED = "crashed"

    @property
    def is_terminal(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)


class Approval(BaseModel):
    """Who allowed a ``write`` or ``destructive`` task to run, and why."""

    model_config = ConfigDict(extra="forbid")

    approved_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    approved_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    #: Whether the system checked who ``approved_by`` is (a token, the OS user, the auto-fix policy).
    #: ``False`` for a name typed in a form nobody logged in to (the Prefect UI without
    #: authentication in front): the task still runs — the policy asks for an approval, not for an
    #: identity — but its result and audit records say the name is unverified.
    verified: bool = True


class TaskSpec(BaseModel):
    """A task as the spec writes it: ``{agent_id, type, command, params, sync, timeout}``.

    ``agent_id`` may be omitted (most of the spec's examples do): the configured default agent
    runs it. ``approval`` is ours: a ``write``/``destructive`` task runs only when it carries one.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=64)
    command: str = Field(default="", max_length=MAX_COMMAND_CHARS)
    params: dict[str, Any] = Field(default_factory=dict)
    # Strict: JSON's true is not a timeout of one second, nor "yes" a sync flag (the schema says so).
    sync: bool = Field(default=True, strict=True)
    timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False, strict=True)
    approval: Approval | None = None

    @field_validator("command")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("command contains a NUL byte")
        return value

    @field_validator("params")
    @classmethod
    def _storable_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = _json_problem(value, MAX_PARAMS_DEPTH)
        if problem:
            raise ValueError(problem)
        return value

    @classmethod
    def parse(cls, data: Any) -> TaskSpec:
        """Validate a task from JSON-like data, raising ``InvalidTask`` with one clear line."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidTask(describe_validation_error(exc)) from exc

    def describe(self) -> str:
        """A short human name for the task, e.g. ``shell: df -h`` (used for runs and logs)."""
        what = self.command.strip().splitlines()[0] if self.command.strip() else ""
        if not what:
            what = str(self.params.get("operation") or self.params.get("url") or "")
        if len(what) > 60:
            what = what[:57] + "..."
        return f"{self.type}: {what}" if what else self.type


def _json_problem(value: Any, max_depth: int) -> str | None:
    """Why JSON-like ``value`` cannot be carried through (stored, audited, sent on), or ``None``."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string is not valid Unicode (a lone surrogate such as \\ud800)"
        elif isinstance(item, float) and not math.isfinite(item):
            # Python's json reads NaN and Infinity, but they are not JSON: stored or sent on, they
            # would come back as null or not parse at all.
            return f"{item} is not a JSON number"
        elif isinstance(item, dict):
            stack.extend((element, depth + 1) for pair in item.items() for element in pair)
        elif isinstance(item, list | tuple):
            stack.extend((element, depth + 1) for element in item)
    return None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, ``field: message``, joined with ``; ``."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "task"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


class ErrorInfo(BaseModel):
    """Why a task did not succeed: a stable ``code`` and a message meant for a person."""

    code: str
    message: str


class TaskResult(BaseModel):
    """The outcome of one task. Always returned, never raised."""

    id: str = Field(default_factory=lambda: f"task-{uuid.uuid4().hex[:16]}")
    agent_id: str | None = None
    environment: str | None = None
    type: str
    status: TaskStatus
    risk: RiskClass | None = None
    exit_code: int | None = None
    #: Text output: a shell's stdout, the table text of a kubectl command, a Redis reply.
    output: str | None = None
    stderr: str | None = None
    #: Structured output: SQL result sets, a parsed INFO, an HTTP response, search hits.
    data: Any = None
    truncated: bool = False
    #: The size before truncation, in bytes of text output (``None`` when nothing was cut).
    original_bytes: int | None = None
    #: The number of rows before truncation (``None`` when no rows were cut).
    original_rows: int | None = None
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    #: What ran, as a person would name it: ``postgres: SELECT pid ... @local``.
    invocation: str = ""
    output_digest: str | None = None
    approved_by: str | None = None
    #: ``False`` when ``approved_by`` is a name nobody checked (see ``Approval.verified``).
    approval_verified: bool | None = None
    #: Things the caller should know that are not errors (a timeout capped by the environment).
    notes: list[str] = Field(default_factory=list)
    #: What weakened the safety of this run (it ran without the sandbox): also in the audit log.
    warnings: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.SUCCEEDED


def output_lines(text: str | None) -> list[str]:
    """The lines a live subscriber is sent for ``text``: split at ``\n`` as the executors stream
    output (a ``\r`` stays inside its line), without the empty piece after a final newline. A
    replay of stored output and a gap filled from a result must show the very same lines."""
    if not text:
        return []
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines
