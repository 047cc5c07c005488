"""The task API's service functions: submit, wait, approve, reject, read, list, subscribe.

The HTTP and WebSocket handlers are thin shells around these. A task goes:

    resolve (agent -> environment, type known?)  -> 404 / 422
    -> dispatcher ready for that environment?     -> 503
    -> a place in the agent's lane?               -> 429
    -> record (pending) -> wait for a slot -> running -> dispatch -> result -> record

``write``/``destructive`` tasks of an operator end at ``approval_required`` (the engine's policy
decides); the task as sent is kept until an approver approves it (it runs again under the same id,
carrying the approval) or rejects it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from contract import output_lines
from executors import (
    Approval,
    AuditLog,
    CloudAgentError,
    Environment,
    EnvironmentCatalog,
    ErrorInfo,
    TaskResult,
    TaskSpec,
    TaskStatus,
    UnknownAgent,
    executor_types,
    new_task_id,
    open_audit_log,
    redact_text,
    redact_value,
)
from gateway.auth import Principal, Role
from gateway.dispatch import REMOTE_DISPATCHES, Dispatcher, DispatchItem, lost_result, make_dispatcher
from gateway.errors import AgentNotFound, Forbidden, InvalidRequest, NotAwaitingApproval, TaskNotFound
from gateway.lanes import AgentLanes, Ticket
from gateway.logstream import LogHub, Subscription, log_message, status_message
from gateway.schemas import (
    ApproveRequest,
    LogLine,
    RejectRequest,
    TaskPage,
    TaskRequest,
    TaskStatusData,
    TaskView,
)
from gateway.settings import GatewaySettings
from gateway.task_store import SQLiteTaskStore, TaskQuery, TaskRecord, open_task_store

log = structlog.get_logger("cloud_agent.gateway")


@dataclass
class _Active:
    """A task this gateway is running or queueing, and the asyncio task doing it."""

    record: TaskRecord
    runner: asyncio.Task[TaskRecord] | None = None
    started: bool = False


def status_of(record: TaskRecord) -> TaskStatusData:
    return TaskStatusData(
        task_id=record.id,
        status=record.status,
        final=record.status.is_terminal,
        exit_code=record.exit_code,
        error=record.error.model_dump() if record.error else None,
    )


def masked(spec: TaskSpec) -> dict[str, Any]:
    """The task with its secrets masked, as people may see it in the history."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["command"] = redact_text(spec.command)
    data["params"] = redact_value(spec.params)
    return data


class TaskService:
    """Runs and records the API's tasks. Create it anywhere; ``start()`` on the serving loop."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        catalog: EnvironmentCatalog,
        store: SQLiteTaskStore,
        audit: AuditLog,
        dispatcher: Dispatcher,
    ):
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.audit = audit
        self.dispatcher = dispatcher
        self.dispatcher.audit = audit
        self.hub = LogHub(settings.log_lines_per_task, settings.log_tasks_kept)
        self.lanes = AgentLanes(self._width_of, settings.queue_per_agent)
        self._active: dict[str, _Active] = {}
        self._started = False

    @classmethod
    def from_settings(cls, settings: GatewaySettings, *, dispatcher: Dispatcher | None = None) -> TaskService:
        catalog = EnvironmentCatalog.load(settings.resolved_config_dir(), settings.default_agent)
        return cls(
            settings,
            catalog=catalog,
            store=open_task_store(settings.resolved_task_store_url()),
            audit=open_audit_log(settings.resolved_audit_url()),
            dispatcher=dispatcher
            or make_dispatcher(
                settings.dispatch,
                settings.gateway_run_as or "engine",
                threads=settings.gateway_threads,
                poll_seconds=settings.gateway_poll_seconds,
                pickup_grace_seconds=settings.pickup_grace_seconds,
                remote_as=settings.gateway_remote_as,
            ),
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running loop, open the dispatcher, settle the tasks a previous run left."""
        if self._started:
            return
        self._started = True
        self.hub.bind(asyncio.get_running_loop())
        await self.dispatcher.start()
        for record in self.store.active(self.settings.gateway_name):
            if record.dispatch in REMOTE_DISPATCHES and record.flow_run_id and self.dispatcher.remote:
                try:
                    self._resume(record)
                    continue
                except CloudAgentError as exc:  # its environment is gone from the configuration
                    log.warning("cannot_resume", task_id=record.id, error=str(exc))
            self._settle_orphan(record)

    async def stop(self) -> None:
        """Refuse queued tasks, give running ones a grace period, then close everything."""
        queued = [active for active in self._active.values() if not active.started and active.runner]
        for active in queued:
            assert active.runner is not None
            active.runner.cancel()
        running = [active.runner for active in self._active.values() if active.runner is not None]
        if running:
            _, still = await asyncio.wait(running, timeout=self.settings.shutdown_grace_seconds)
            for runner in still:
                runner.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        await self.dispatcher.close()
        self.store.close()
        self.audit.close()

    # -- submitting ----------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, principal: Principal) -> TaskView:
        """Accept a task; with ``sync`` wait for its result (up to its timeout), else return at once."""
        spec, environment = self._resolve(request, principal)
        await self.dispatcher.prepare(environment.name)
        assert spec.agent_id is not None
        ticket = self.lanes.admit(spec.agent_id)
        now = datetime.now(UTC)
        record = TaskRecord(
            id=new_task_id(),
            created_at=now,
            agent_id=spec.agent_id,
            environment=environment.name,
            type=spec.type,
            status=TaskStatus.PENDING,
            submitted_by=principal.name,
            approved_by=spec.approval.approved_by if spec.approval else None,
            dispatch=self.dispatcher.name,
            gateway=self.settings.gateway_name,
            invocation=redact_text(f"{spec.describe()} @{environment.name}"),
            spec=masked(spec),
        )
        try:
            self.store.put(record)
        except BaseException:
            ticket.release()
            raise
        return await self._launch(record, spec, environment, ticket, actor=principal.name, wait=spec.sync)

    def _resolve(self, request: TaskRequest, principal: Principal) -> tuple[TaskSpec, Environment]:
        if request.approval is not None and not principal.role.allows(Role.APPROVER):
            raise Forbidden(f"{principal.name!r} has the role {principal.role.value}; only an approver may approve")
        agent_id = request.agent_id or self.catalog.default_agent
        try:
            environment = self.catalog.environment_of(agent_id)
        except UnknownAgent as exc:
            raise AgentNotFound(str(exc)) from None
        if request.type not in executor_types():
            message = f"unknown task type {request.type!r}; known types: {', '.join(executor_types())}"
            raise InvalidRequest(message, fields=[{"field": "type", "message": message}])
        approval = None
        if principal.role.allows(Role.APPROVER):
            reason = request.approval.reason if request.approval else ""
            approval = Approval(approved_by=principal.name, reason=reason or "run by an approver")
        data = request.model_dump(exclude={"approval"})
        spec = TaskSpec.model_validate({**data, "agent_id": agent_id, "approval": approval})
        return spec, environment

    def _width_of(self, agent_id: str) -> int:
        return self.catalog.environment_of(agent_id).limits.max_concurrent_tasks_per_agent

    async def _launch(
        self, record: TaskRecord, spec: TaskSpec, environment: Environment, ticket: Ticket, *, actor: str, wait: bool
    ) -> TaskView:
        item = DispatchItem(
            task_id=record.id,
            spec=spec,
            environment=environment.name,
            actor=actor,
            max_timeout=environment.limits.max_timeout_seconds,
        )
        self.hub.open(record.id)
        active = self._active[record.id] = _Active(record)
        active.runner = asyncio.create_task(self._execute(active, item, ticket), name=f"task {record.id}")
        if not wait:
            return record.view()
        with contextlib.suppress(TimeoutError):
            # Shielded: a caller that stops waiting does not stop the task.
            await asyncio.wait_for(asyncio.shield(active.runner), item.timeout + self.settings.sync_grace_seconds)
        return active.record.view()

    async def _execute(self, active: _Active, item: DispatchItem, ticket: Ticket) -> TaskRecord:
        result: TaskResult
        try:
            async with ticket:
                active.started = True
                active.record = active.record.model_copy(
                    update={"status": TaskStatus.RUNNING, "started_at": datetime.now(UTC)}
                )
                self.store.put(active.record)

                def note_flow_run(flow_run_id: str) -> None:
                    active.record = active.record.model_copy(update={"flow_run_id": flow_run_id})
                    self.store.put(active.record)

                result = await self.dispatcher.run(item, self.hub.sink(item.task_id), note_flow_run)
        except asyncio.CancelledError:
            ticket.release()
            if active.started and active.record.flow_run_id and self.dispatcher.remote:
                # The run goes on on its worker; the next start of the gateway follows it to its end.
                self._active.pop(item.task_id, None)
                raise
            if active.started:
                message = "the gateway shut down while the task was running; it may have run partly"
            else:
                message = "the gateway shut down before the task started; it did not run"
            self._finish(active, lost_result(item, "gateway_stopped", message, ran=active.started))
            raise
        except Exception as exc:  # a bug of ours: the task still gets a result, never stays running
            log.exception("task_execution_bug", task_id=item.task_id)
            ran = self.dispatcher.started(item.task_id)
            result = lost_result(item, "internal_error", f"{type(exc).__name__}: {exc}", ran=ran)
        self._finish(active, result, pending=item.spec if result.status is TaskStatus.APPROVAL_REQUIRED else None)
        return active.record

    def _finish(self, active: _Active, result: TaskResult, *, pending: TaskSpec | None = None) -> None:
        record = active.record.with_result(result)
        if pending is not None:
            record = record.model_copy(update={"pending_spec": pending.model_dump(mode="json", exclude={"approval"})})
        active.record = record
        try:
            self.store.put(record)
        finally:
            self._active.pop(record.id, None)
            self.hub.finish(status_of(record))

    # -- approvals -----------------------------------------------------------------------------

    async def approve(self, task_id: str, principal: Principal, body: ApproveRequest) -> TaskView:
        """Run a task that waits for an approval, carrying ``principal``'s approval."""
        record = self._waiting(task_id)
        assert record.pending_spec is not None
        approval = Approval(approved_by=principal.name, reason=body.reason or "approved through the task API")
        spec = TaskSpec.model_validate({**record.pending_spec, "approval": approval.model_dump()})
        try:
            environment = self.catalog.environment_of(spec.agent_id)
        except UnknownAgent as exc:
            raise AgentNotFound(str(exc)) from None
        await self.dispatcher.prepare(environment.name)
        ticket = self.lanes.admit(record.agent_id)
        updated = record.model_copy(
            update={
                "status": TaskStatus.PENDING,
                "approved_by": principal.name,
                "pending_spec": None,
                "result": None,
                "error": None,
                "exit_code": None,
                "started_at": None,
                "finished_at": None,
                "spec": masked(spec),
                "dispatch": self.dispatcher.name,
                "gateway": self.settings.gateway_name,
            }
        )
        if not self.store.claim(task_id, TaskStatus.APPROVAL_REQUIRED, updated):
            ticket.release()
            raise NotAwaitingApproval(f"task {task_id} is no longer waiting for an approval")
        return await self._launch(updated, spec, environment, ticket, actor=record.submitted_by, wait=body.sync)

    def reject(self, task_id: str, principal: Principal, body: RejectRequest) -> TaskView:
        """Refuse a task that waits for an approval: it ends ``denied`` and will not run."""
        record = self._waiting(task_id)
        reason = f": {body.reason}" if body.reason else ""
        now = datetime.now(UTC)
        result = TaskResult(
            id=task_id,
            agent_id=record.agent_id,
            environment=record.environment,
            type=record.type,
            status=TaskStatus.DENIED,
            risk=record.result.risk if record.result else None,
            error=ErrorInfo(code="rejected", message=f"rejected by {principal.name}{reason}"),
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
            invocation=record.invocation,
        )
        updated = record.with_result(result)
        if not self.store.claim(task_id, TaskStatus.APPROVAL_REQUIRED, updated):
            raise NotAwaitingApproval(f"task {task_id} is no longer waiting for an approval")
        return updated.view()

    def _waiting(self, task_id: str) -> TaskRecord:
        record = self.record(task_id)
        if record.status is not TaskStatus.APPROVAL_REQUIRED or record.pending_spec is None:
            raise NotAwaitingApproval(f"task {task_id} is {record.status.value}, not waiting for an approval")
        return record

    # -- reading -------------------------------------------------------------------------------

    def record(self, task_id: str) -> TaskRecord:
        active = self._active.get(task_id)
        if active is not None:
            return active.record
        record = self.store.get(task_id)
        if record is None:
            raise TaskNotFound(f"no task {task_id!r}")
        return record

    def get(self, task_id: str) -> TaskView:
        return self.record(task_id).view()

    def history(self, query: TaskQuery) -> TaskPage:
        records, total = self.store.query(query)
        return TaskPage(items=[r.summary() for r in records], total=total, limit=query.limit, offset=query.offset)

    def subscribe(self, task_id: str) -> Subscription:
        """The task's lines so far, then live ones, then its final status."""
        record = self.record(task_id)
        subscription = self.hub.subscribe(task_id, current=status_of(record))
        if subscription is not None:
            return subscription
        # Not in memory (finished long ago, or before a restart): replay the stored output.
        subscription = Subscription(task_id, limit=self.settings.log_lines_per_task + 16)
        result = record.result
        seq = 0
        at = (result.finished_at if result else None) or record.created_at
        outputs: tuple[tuple[Literal["stdout", "stderr"], str | None], ...] = (
            (("stdout", result.output), ("stderr", result.stderr)) if result else ()
        )
        for stream, text in outputs:
            for line in output_lines(text)[: self.settings.log_lines_per_task]:
                seq += 1
                subscription.push(
                    log_message(LogLine(task_id=task_id, seq=seq, stream=stream, line=line, at=at, replayed=True))
                )
        subscription.push(status_message(status_of(record)), last=True)
        return subscription

    # -- restarts ------------------------------------------------------------------------------

    def _settle_orphan(self, record: TaskRecord) -> None:
        if record.dispatch in REMOTE_DISPATCHES:
            # It ran on a worker, whose audit log may be another one than this gateway's.
            ran = record.status is TaskStatus.RUNNING or self.dispatcher.started(record.id)
        else:
            # The engine records "started" before it runs anything, in this gateway's audit log; a
            # record left "running" by a killed gateway may be one whose engine never got that far.
            ran = self.dispatcher.started(record.id)
        if ran:
            message = "the gateway stopped while this task was running; it may have run partly (see the audit log)"
        else:
            message = "the gateway stopped before this task started; it did not run"
        now = datetime.now(UTC)
        result = TaskResult(
            id=record.id,
            agent_id=record.agent_id,
            environment=record.environment,
            type=record.type,
            status=TaskStatus.CRASHED if ran else TaskStatus.FAILED,
            error=ErrorInfo(code="gateway_restarted", message=message),
            finished_at=now,
            invocation=record.invocation,
            approved_by=record.approved_by,
        )
        self.store.put(record.with_result(result))

    def _resume(self, record: TaskRecord) -> None:
        """Follow a work-pool run dispatched before a restart to its end."""
        assert record.flow_run_id is not None
        spec = TaskSpec.model_validate(record.spec)
        environment = self.catalog.environment(record.environment)
        item = DispatchItem(
            task_id=record.id,
            spec=spec,
            environment=record.environment,
            actor=record.submitted_by,
            max_timeout=environment.limits.max_timeout_seconds,
        )
        self.hub.open(record.id)
        active = self._active[record.id] = _Active(record, started=True)
        flow_run_id = record.flow_run_id

        async def follow() -> TaskRecord:
            result = await self.dispatcher.follow(flow_run_id, item, self.hub.sink(record.id))
            self._finish(active, result or lost_result(item, "gateway_restarted", "lost across a restart", ran=True))
            return active.record

        active.runner = asyncio.create_task(follow(), name=f"resume {record.id}")
