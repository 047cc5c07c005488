"""``CloudAgent``: the execution engine of one process — every environment it serves, one audit log,
and one executor (with its connection pools) per task type and environment, created on first use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from contract import Approval, ErrorInfo, RiskClass, TaskResult, TaskSpec, TaskStatus
from executors._audit import AuditEvent, AuditLog, AuditRecord, open_audit_log
from executors._base import Executor, OutputSink, new_task_id
from executors._config import Environment, EnvironmentCatalog
from executors._errors import AuditUnavailable, CloudAgentError, ConfigurationError, InvalidTask
from executors._redaction import redact_text, redact_value
from executors._registry import executor_class
from executors._settings import AgentSettings

_RETRY_BACKOFF_SECONDS = 0.5
IGNORED_APPROVAL = (
    "the approval inside the task was ignored: approvals come from who runs it (cloud-agent --approve, "
    "an approver's token, the fix step's decision), never from task data"
)


def _worth_retrying(result: TaskResult, spec: TaskSpec) -> bool:
    """Only reads, only when the backend could not be reached, only with time left for it."""
    return (
        result.status is TaskStatus.FAILED
        and result.risk is RiskClass.READ
        and result.error is not None
        and result.error.code == "unreachable"
        and (result.duration_ms or 0) / 1000 + _RETRY_BACKOFF_SECONDS < spec.timeout / 2
    )


class CloudAgent:
    """Runs tasks for the environments it serves.

    Args:
        catalog: every configured environment.
        audit: where every task is recorded.
        serves: the environments this process may run tasks for (a worker placed in ``prod``
            serves ``prod`` only); ``None`` for all of them (the embedded, one-machine default).
    """

    def __init__(self, catalog: EnvironmentCatalog, audit: AuditLog, *, serves: Iterable[str] | None = None):
        self.catalog = catalog
        self.audit = audit
        self.serves = frozenset(serves) if serves is not None else None
        self._executors: dict[tuple[str, str], Executor] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False

    @classmethod
    def from_settings(cls, settings: AgentSettings | None = None, *, serves: Iterable[str] | None = None) -> CloudAgent:
        settings = settings or AgentSettings()
        catalog = EnvironmentCatalog.load(settings.resolved_config_dir(), settings.default_agent)
        return cls(catalog, open_audit_log(settings.resolved_audit_url()), serves=serves)

    def environment_of(self, agent_id: str | None) -> Environment:
        environment = self.catalog.environment_of(agent_id)
        if self.serves is not None and environment.name not in self.serves:
            raise ConfigurationError(
                f"agent {agent_id!r} belongs to environment {environment.name!r}, which this process "
                f"does not serve (it serves: {', '.join(sorted(self.serves))})"
            )
        return environment

    def executor(self, task_type: str, environment: Environment) -> Executor:
        key = (task_type, environment.name)
        with self._lock:
            executor = self._executors.get(key)
            if executor is None:
                executor = executor_class(task_type)(environment, self.audit)
                self._executors[key] = executor
            return executor

    def run(
        self,
        task: TaskSpec | Mapping[str, Any],
        *,
        actor: str = "anonymous",
        task_id: str | None = None,
        on_output: OutputSink | None = None,
        approval: Approval | None = None,
    ) -> TaskResult:
        """Run one task; always returns a result (``failed`` with a clear error when it cannot run).

        Args:
            task: the task, as the spec writes it.
            actor: who asks (recorded in the audit log).
            task_id: the task's id, when the caller already named it.
            on_output: receives output lines as they come.
            approval: who allowed a ``write``/``destructive`` task, given by the component that
                checked their identity (the CLI's OS user, an approver's token, the fix step). An
                ``approval`` inside the task itself is ignored: task data is anybody's to write.
        """
        with self.in_use():
            return self._run(
                task, actor=actor, task_id=task_id or new_task_id(), on_output=on_output, approval=approval
            )

    def _run(
        self,
        task: TaskSpec | Mapping[str, Any],
        *,
        actor: str,
        task_id: str,
        on_output: OutputSink | None,
        approval: Approval | None,
    ) -> TaskResult:
        ignored = False
        try:
            spec = task if isinstance(task, TaskSpec) else TaskSpec.parse(task)
            if spec.approval is not None:
                ignored = approval is None
                spec = spec.model_copy(update={"approval": None})
            if approval is not None:
                spec = spec.model_copy(update={"approval": approval})
            if spec.agent_id is None:
                spec = spec.model_copy(update={"agent_id": self.catalog.default_agent})
            environment = self.environment_of(spec.agent_id)
            executor = self.executor(spec.type, environment)
        except (InvalidTask, ConfigurationError) as exc:
            return self._rejected(task, task_id, actor, exc)
        result = executor.execute(spec, actor=actor, task_id=task_id, on_output=on_output)
        for attempt in range(environment.limits.read_retries):
            if not _worth_retrying(result, spec):
                break
            time.sleep(_RETRY_BACKOFF_SECONDS * (attempt + 1))
            retry = executor.execute(spec, actor=actor, task_id=f"{task_id}-retry{attempt + 1}", on_output=on_output)
            retry.notes.insert(
                0, f"attempt {attempt + 2}: the first attempt failed with {result.error.code if result.error else '?'}"
            )
            retry.id = task_id
            result = retry
        if ignored:
            result.notes.insert(0, IGNORED_APPROVAL)
        return result

    def _rejected(
        self, task: TaskSpec | Mapping[str, Any], task_id: str, actor: str, exc: CloudAgentError
    ) -> TaskResult:
        raw = task.model_dump() if isinstance(task, TaskSpec) else dict(task) if isinstance(task, Mapping) else {}
        now = datetime.now(UTC)
        task_type = str(raw["type"]) if isinstance(raw.get("type"), str) else "unknown"
        agent_id = str(raw["agent_id"]) if isinstance(raw.get("agent_id"), str) else None
        result = TaskResult(
            id=task_id,
            agent_id=agent_id,
            type=task_type,
            status=TaskStatus.FAILED,
            error=ErrorInfo(code=exc.code, message=redact_text(str(exc))),
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
        )
        command = raw.get("command")
        params = raw.get("params")
        try:
            self.audit.append(
                AuditRecord(
                    event=AuditEvent.REJECTED,
                    task_id=task_id,
                    actor=actor,
                    agent_id=agent_id,
                    task_type=task_type,
                    command=redact_text(command) if isinstance(command, str) else "",
                    params=redact_value(params) if isinstance(params, dict) else {},
                    status=result.status.value,
                    error_code=exc.code,
                    message=result.error.message if result.error else None,
                )
            )
        except AuditUnavailable:
            result.notes.append("the audit record of this rejection could not be written")
        return result

    @contextmanager
    def in_use(self) -> Iterator[CloudAgent]:
        """Hold the engine: retired meanwhile, it closes only when the last holder lets go."""
        with self._lock:
            self._in_flight += 1
        try:
            yield self
        finally:
            with self._lock:
                self._in_flight -= 1
                last_out = self._retired and self._in_flight == 0
            if last_out:
                self.close()

    def retire(self) -> None:
        """Close once the runs in flight are done (at once when there are none): a newer engine,
        read from changed settings or files, takes the runs that start from now on."""
        with self._lock:
            self._retired = True
            idle = self._in_flight == 0
        if idle:
            self.close()

    def close(self) -> None:
        with self._lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            executor.close()
        self.audit.close()

    def __enter__(self) -> CloudAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
