"""The one interface every executor implements, and the one place the cross-cutting work happens.

``Executor.execute(spec)`` does, in this order and nowhere else:
validate -> policy (allow/deny, risk class, approval) -> audit "started" -> timeout -> ``_run`` ->
result-size cap -> secret masking -> audit "finished". Plug-ins implement ``_run`` only.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from contract import ErrorInfo, RiskClass, TaskResult, TaskSpec, TaskStatus, describe_validation_error
from executors._audit import AuditEvent, AuditLog, AuditRecord
from executors._config import Connection, Environment, Limits
from executors._errors import AuditUnavailable, CloudAgentError, ExecutorError, InvalidTask, TaskTimedOut
from executors._limits import cap_data_bytes, cap_text
from executors._policy import Decision, Policy, Verdict
from executors._redaction import (
    mask_secrets,
    redact_output,
    redact_output_value,
    redact_text,
    redact_value,
    task_secrets,
)

log = structlog.get_logger("cloud_agent.executors")

OutputSink = Callable[[str, str], None]
"""Receives ``(stream, line)`` as a task produces output (``stream`` is ``stdout``/``stderr``)."""

P = TypeVar("P", bound=BaseModel)


def new_task_id() -> str:
    return f"task-{uuid.uuid4().hex[:16]}"


@dataclass
class RunContext:
    """What ``_run`` needs besides the task: its deadline, limits, connection and output sink."""

    task_id: str
    spec: TaskSpec
    environment: Environment
    risk: RiskClass
    timeout: float
    deadline: float
    limits: Limits
    on_output: OutputSink | None = None
    notes: list[str] = field(default_factory=list)
    #: What weakened this run's safety (e.g. ``sandbox: off``): kept in the result and the audit log.
    warnings: list[str] = field(default_factory=list)
    #: Credentials the task carries itself (see ``task_secrets``), masked in everything it returns.
    secrets: frozenset[str] = frozenset()

    @property
    def read_only(self) -> bool:
        return self.risk is RiskClass.READ

    def remaining(self) -> float:
        """Seconds left before the task's deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def check_deadline(self) -> None:
        if time.monotonic() >= self.deadline:
            raise TaskTimedOut(f"the task did not finish within its {self.timeout:g} s timeout")

    def connection(self) -> Connection:
        name = self.spec.params.get("connection")
        if name is not None and not isinstance(name, str):
            raise InvalidTask("params.connection must be a connection name (a string)")
        return self.environment.connection(self.spec.type, name)

    def emit(self, line: str, stream: str = "stdout") -> None:
        if self.on_output is not None:
            self.on_output(stream, mask_secrets(redact_output(line), self.secrets))

    def result(self, status: TaskStatus = TaskStatus.SUCCEEDED, **fields: Any) -> TaskResult:
        return TaskResult(type=self.spec.type, status=status, **fields)


class Executor(ABC):
    """Runs tasks of one type in one environment. Subclasses set ``type`` and implement ``_run``."""

    type: ClassVar[str]

    def __init__(self, environment: Environment, audit: AuditLog, policy: Policy | None = None):
        self.environment = environment
        self.audit = audit
        self.policy = policy or Policy(environment.policy, environment.name)

    # -- the public method ---------------------------------------------------------------------

    def execute(
        self,
        spec: TaskSpec,
        *,
        actor: str = "anonymous",
        task_id: str | None = None,
        on_output: OutputSink | None = None,
    ) -> TaskResult:
        """Run ``spec`` under the environment's policy and limits. Always returns a result."""
        task_id = task_id or new_task_id()
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        secrets = task_secrets(spec.command, spec.params)
        base = _AuditBase(self, spec, task_id, actor, secrets)

        try:
            self.validate(spec)
            decision = self.policy.decide(spec)
        except InvalidTask as exc:
            result = self._refusal(spec, task_id, TaskStatus.FAILED, None, exc.code, str(exc), started_at)
            base.write(AuditEvent.REJECTED, result, tolerate_failure=True)
            return result
        except Exception as exc:  # a bug in an analyser must fail closed, never open
            log.exception("policy_bug", task_id=task_id, type=spec.type)
            message = f"the policy could not analyse this task ({type(exc).__name__}); it was not run"
            result = self._refusal(spec, task_id, TaskStatus.DENIED, None, "policy_error", message, started_at)
            base.write(AuditEvent.DENIED, result, tolerate_failure=True)
            return result

        if decision.verdict is not Verdict.ALLOW:
            status = TaskStatus.DENIED if decision.verdict is Verdict.DENY else TaskStatus.APPROVAL_REQUIRED
            code = "policy_denied" if status is TaskStatus.DENIED else "approval_required"
            message = decision.reason + (f" [rule {decision.rule}]" if decision.rule else "")
            result = self._refusal(spec, task_id, status, decision.risk, code, message, started_at)
            event = AuditEvent.DENIED if status is TaskStatus.DENIED else AuditEvent.APPROVAL_REQUIRED
            try:
                base.write(event, result)
            except AuditUnavailable as exc:
                result.error = ErrorInfo(code=exc.code, message=f"{message}; and {exc}")
            return result

        ctx = self._context(spec, task_id, decision, on_output)
        ctx.secrets = secrets
        try:
            base.write(AuditEvent.STARTED, None, risk=decision.risk)
        except AuditUnavailable as exc:
            return self._refusal(
                spec,
                task_id,
                TaskStatus.FAILED,
                decision.risk,
                exc.code,
                f"refused: {exc}; tasks do not run unaudited",
                started_at,
            )

        result = self._run_guarded(spec, ctx)
        result = self._finish(result, spec, ctx, started_at, clock)
        try:
            base.write(AuditEvent.FINISHED, result, risk=decision.risk)
        except AuditUnavailable as exc:
            log.error("audit_finish_failed", task_id=task_id, error=str(exc))
            result.notes.append(f"the audit 'finished' record could not be written: {exc}")
        return result

    # -- hooks for plug-ins --------------------------------------------------------------------

    def validate(self, spec: TaskSpec) -> None:
        """Check ``spec`` beyond the common contract; raise ``InvalidTask``. Runs before policy."""

    @abstractmethod
    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        """Do the I/O. Raise an ``ExecutorError`` subclass for failures the backend reports."""

    def close(self) -> None:
        """Release connections and pools."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    # builtins.type: in this class body, ``type`` is the executor's task type.
    def params(model: builtins.type[P], spec: TaskSpec) -> P:
        """``spec.params`` validated against ``model``, or ``InvalidTask`` with one clear line."""
        try:
            return model.model_validate(spec.params)
        except ValidationError as exc:
            raise InvalidTask(f"params of a {spec.type} task: {describe_validation_error(exc)}") from exc

    def _context(self, spec: TaskSpec, task_id: str, decision: Decision, on_output: OutputSink | None) -> RunContext:
        limits = self.environment.limits
        timeout = min(spec.timeout, limits.max_timeout_seconds)
        notes = []
        if timeout < spec.timeout:
            notes.append(
                f"timeout capped from {spec.timeout:g} s to {timeout:g} s by environment {self.environment.name!r}"
            )
        return RunContext(
            task_id=task_id,
            spec=spec,
            environment=self.environment,
            risk=decision.risk,
            timeout=timeout,
            deadline=time.monotonic() + timeout,
            limits=limits,
            on_output=on_output,
            notes=notes,
        )

    def _run_guarded(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        try:
            return self._run(spec, ctx)
        except TaskTimedOut as exc:
            return ctx.result(TaskStatus.TIMED_OUT, error=ErrorInfo(code=exc.code, message=redact_text(str(exc))))
        except (ExecutorError, InvalidTask, CloudAgentError) as exc:
            return ctx.result(TaskStatus.FAILED, error=ErrorInfo(code=exc.code, message=redact_text(str(exc))))
        except Exception as exc:  # a bug of ours must not take the agent down with it
            log.exception("executor_bug", task_id=ctx.task_id, type=spec.type)
            return ctx.result(
                TaskStatus.FAILED,
                error=ErrorInfo(code="internal_error", message=redact_text(f"{type(exc).__name__}: {exc}")),
            )

    def _finish(
        self, result: TaskResult, spec: TaskSpec, ctx: RunContext, started_at: datetime, clock: float
    ) -> TaskResult:
        limits = ctx.limits
        if ctx.secrets:
            masked = mask_secrets([result.output, result.stderr, result.data], ctx.secrets)
            result.output, result.stderr, result.data = masked
            if result.error is not None:
                result.error.message = mask_secrets(result.error.message, ctx.secrets)
        if result.output is not None:
            result.output = redact_output(result.output)
            kept, cut, size = cap_text(result.output, limits.max_output_bytes)
            if cut:
                result.output, result.truncated = kept, True
                result.original_bytes = max(result.original_bytes or 0, size)
        if result.stderr is not None:
            result.stderr = redact_output(result.stderr)
            kept, cut, size = cap_text(result.stderr, limits.max_output_bytes)
            if cut:
                result.stderr, result.truncated = kept, True
        if result.data is not None:
            result.data = redact_output_value(result.data)
            kept_data, cut, size = cap_data_bytes(result.data, limits.max_output_bytes)
            if cut:
                result.data, result.truncated = kept_data, True
                result.original_bytes = max(result.original_bytes or 0, size)
        if result.error is not None:
            result.error.message = redact_text(result.error.message)
        result.id = ctx.task_id
        result.agent_id = spec.agent_id
        result.environment = self.environment.name
        result.risk = ctx.risk
        result.started_at = started_at
        result.finished_at = datetime.now(UTC)
        result.duration_ms = round((time.perf_counter() - clock) * 1000, 3)
        result.invocation = _invocation(spec, self.environment.name)
        result.approved_by = spec.approval.approved_by if spec.approval else None
        result.approval_verified = spec.approval.verified if spec.approval else None
        result.notes = [*ctx.notes, *result.notes]
        result.warnings = [*ctx.warnings, *result.warnings]
        result.output_digest = _digest(result)
        return result

    @staticmethod
    def _masked(message: str, spec: TaskSpec) -> str:
        return mask_secrets(redact_text(message), task_secrets(spec.command, spec.params))

    def _refusal(
        self,
        spec: TaskSpec,
        task_id: str,
        status: TaskStatus,
        risk: RiskClass | None,
        code: str,
        message: str,
        started_at: datetime,
    ) -> TaskResult:
        now = datetime.now(UTC)
        return TaskResult(
            id=task_id,
            agent_id=spec.agent_id,
            environment=self.environment.name,
            type=spec.type,
            status=status,
            risk=risk,
            error=ErrorInfo(code=code, message=self._masked(message, spec)),
            started_at=started_at,
            finished_at=now,
            duration_ms=round((now - started_at).total_seconds() * 1000, 3),
            invocation=_invocation(spec, self.environment.name),
        )


@dataclass
class _AuditBase:
    executor: Executor
    spec: TaskSpec
    task_id: str
    actor: str
    secrets: frozenset[str] = frozenset()

    def write(
        self,
        event: AuditEvent,
        result: TaskResult | None,
        *,
        risk: RiskClass | None = None,
        tolerate_failure: bool = False,
    ) -> None:
        spec = self.spec
        record = AuditRecord(
            event=event,
            task_id=self.task_id,
            actor=self.actor,
            agent_id=spec.agent_id,
            environment=self.executor.environment.name,
            task_type=spec.type,
            command=mask_secrets(redact_text(spec.command), self.secrets),
            params=redact_value(spec.params),
            risk=(risk or (result.risk if result else None)),
            status=result.status.value if result else None,
            error_code=result.error.code if result and result.error else None,
            message=_audit_message(result),
            approved_by=spec.approval.approved_by if spec.approval else None,
            approval_verified=spec.approval.verified if spec.approval else None,
            duration_ms=result.duration_ms if result else None,
            output_digest=result.output_digest if result else None,
            output_bytes=_output_bytes(result) if result else None,
            truncated=bool(result and result.truncated),
        )
        try:
            self.executor.audit.append(record)
        except AuditUnavailable:
            if not tolerate_failure:
                raise
            log.error("audit_write_failed", task_id=self.task_id, audit_event=event.value)


def _audit_message(result: TaskResult | None) -> str | None:
    """The error, and any warning about how the task ran (the audit log must say it too)."""
    if result is None:
        return None
    parts = [result.error.message] if result.error else []
    parts += [f"warning: {warning}" for warning in result.warnings]
    return "; ".join(parts) or None


def _invocation(spec: TaskSpec, environment: str) -> str:
    return redact_text(f"{spec.describe()} @{environment}")


def _output_bytes(result: TaskResult) -> int:
    size = len((result.output or "").encode("utf-8", "replace"))
    if result.data is not None:
        size += len(json.dumps(result.data, default=str).encode("utf-8", "replace"))
    return size


def _digest(result: TaskResult) -> str:
    digest = hashlib.sha256((result.output or "").encode("utf-8", "replace"))
    digest.update(b"\0")
    digest.update((result.stderr or "").encode("utf-8", "replace"))
    digest.update(b"\0")
    if result.data is not None:
        digest.update(json.dumps(result.data, default=str, sort_keys=True).encode("utf-8", "replace"))
    return "sha256:" + digest.hexdigest()
