"""What every dispatcher shares: the item it is given, its interface, and the result of a
task whose run was lost."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, TypeVar

import structlog

from contract import PlannedTask
from executors import AuditEvent, AuditLog, AuditQuery, ErrorInfo, TaskResult, TaskSpec, TaskStatus
from gateway.logstream import LineSink

log = structlog.get_logger("cloud_agent.gateway")

BATCH_DEPLOYMENT = "execute-batch/{environment}"
#: ``TaskRecord.dispatch`` of tasks that ran on a worker (their run can be followed after a restart).
REMOTE_DISPATCHES = frozenset({"work-pool", "task-worker"})
BATCH_ENTRYPOINT = "flows/batch.py:execute_batch"
WORKER_TYPE = "cloud-agent"
#: What a result that completed on a worker but cannot be read here most likely means.
SHARED_STORAGE_HINT = (
    "the gateway and the workers need a shared result storage: the same CLOUD_AGENT_RESULT_STORAGE on every host"
)
#: Flow runs and log lines read per request (the API's page size), and log pages per tick at most.
_PAGE = 200
_MAX_LOG_PAGES = 10

T = TypeVar("T")


@dataclass(frozen=True)
class DispatchItem:
    """One task to run: its id, the task (``agent_id`` resolved), its environment and who asked."""

    task_id: str
    spec: TaskSpec
    environment: str
    actor: str
    #: The environment's cap on the task's timeout.
    max_timeout: float

    @property
    def timeout(self) -> float:
        return min(self.spec.timeout, self.max_timeout)

    def planned(self) -> PlannedTask:
        """The task as one item of an ``execute-batch`` run, streaming its output."""
        described = self.spec.describe()
        label = described.partition(": ")[2] or self.spec.type
        return PlannedTask(
            label=label[:80],
            task=self.spec.model_dump(mode="json", exclude_none=True, exclude={"approval"}),
            task_id=self.task_id,
            stream_output=True,
            approval=self.spec.approval,
        )

    @property
    def run_name(self) -> str:
        return self.planned().run_name(self.environment)

    @property
    def tags(self) -> list[str]:
        return ["task-api", f"agent:{self.spec.agent_id}", f"environment:{self.environment}"]


FlowRunNotice = Callable[[str], None]
"""Told the Prefect flow run id of a task as soon as there is one."""


class Dispatcher(ABC):
    """Runs tasks somewhere and returns their results."""

    name: ClassVar[str]
    #: Tasks run in other processes (workers) and go on when this one stops: followed after a restart.
    remote: ClassVar[bool] = False
    #: Where the engine records tasks; tells whether a lost task had started (set by the service).
    audit: AuditLog | None = None

    def started(self, task_id: str) -> bool:
        """Whether the audit log says ``task_id`` started (so a lost run may have had effects)."""
        if self.audit is None:
            return True
        try:
            records = self.audit.query(AuditQuery(task_id=task_id, event=AuditEvent.STARTED.value, limit=1))
        except Exception:  # cannot tell: assume the worst, it may have run
            return True
        return bool(records)

    async def start(self) -> None:
        """Open connections; called once on the event loop that will call ``run``."""

    async def prepare(self, environment: str) -> None:
        """Raise ``DispatchUnavailable`` if tasks of ``environment`` cannot be dispatched now."""

    @abstractmethod
    async def run(self, item: DispatchItem, on_line: LineSink, on_flow_run: FlowRunNotice) -> TaskResult:
        """Run ``item``; its output lines go to ``on_line`` as they are produced."""

    async def follow(self, flow_run_id: str, item: DispatchItem, on_line: LineSink) -> TaskResult | None:
        """Pick up a run dispatched before a restart; ``None`` if this dispatcher cannot."""
        return None

    async def close(self) -> None:
        """Release threads and connections."""


def lost_result(item: DispatchItem, code: str, message: str, *, ran: bool) -> TaskResult:
    """The result of a task whose run was lost (``crashed``) or never started (``failed``)."""
    now = datetime.now(UTC)
    return TaskResult(
        id=item.task_id,
        agent_id=item.spec.agent_id,
        environment=item.environment,
        type=item.spec.type,
        status=TaskStatus.CRASHED if ran else TaskStatus.FAILED,
        error=ErrorInfo(code=code, message=message),
        finished_at=now,
        invocation=f"{item.spec.describe()} @{item.environment}",
        approved_by=item.spec.approval.approved_by if item.spec.approval else None,
        approval_verified=item.spec.approval.verified if item.spec.approval else None,
    )


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _local_result_storage() -> Path:
    """Prefect's local result folder, named explicitly.

    Without it every run asks the server for its default result storage (``GET /admin/storage``):
    one blocking request per task run, 10-70 ms on a busy server, for runs that persist nothing.
    """
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path)
