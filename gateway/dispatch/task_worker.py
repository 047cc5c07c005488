"""Tasks of a remote environment as Prefect task runs on its task key, served by the
environment's task worker."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from uuid import UUID

from executors import TaskResult
from gateway.dispatch._common import _PAGE, SHARED_STORAGE_HINT, DispatchItem, FlowRunNotice, _chunks, log, lost_result
from gateway.dispatch.work_pool import WorkPoolDispatcher, _Watch
from gateway.logstream import LineSink


class TaskWorkerDispatcher(WorkPoolDispatcher):
    """Runs each task as a Prefect background task run that the environment's worker picks up.

    ``cloud-agent worker --env ENV`` serves the environment's task key (``flows.task_lane``) beside
    its work pool; a task run costs ~0.3 s of dispatch where a flow run on the pool costs ~0.7-1 s
    (no deployment read, job configuration or flow run bookkeeping). Following states, lines and
    timeouts is the work-pool dispatcher's, on task runs instead of flow runs.
    """

    name = "task-worker"
    #: Marks a task run id in the task store's ``flow_run_id`` field (followed after a restart).
    PREFIX = "task-run:"
    # Prefect's task worker deletes a task run whose parameters it cannot read (its log says so).
    vanished_reason = (
        "task run {run_id} was deleted before it ended: a worker of environment {environment!r} deletes a task "
        "run whose parameters it cannot read; " + SHARED_STORAGE_HINT
    )

    async def prepare(self, environment: str) -> None:
        return None  # no deployment to find: a task run waits for its environment's worker

    async def run(self, item: DispatchItem, on_line: LineSink, on_flow_run: FlowRunNotice) -> TaskResult:
        from flows.result_storage import shared_result_storage
        from flows.task_lane import environment_task

        planned = item.planned()

        def schedule() -> Any:
            # The task's parameters go to the store the worker reads them from (the shared one).
            with shared_result_storage():
                approval = planned.approval.model_dump(mode="json") if planned.approval is not None else None
                return environment_task(item.environment).apply_async(
                    args=(planned.task, item.actor),
                    kwargs={"task_id": item.task_id, "stream_output": True, "approval": approval},
                )

        try:
            future = await asyncio.to_thread(schedule)
        except Exception as exc:
            return lost_result(
                item, "dispatch_failed", f"cannot create the task run: {type(exc).__name__}: {exc}", ran=False
            )
        on_flow_run(f"{self.PREFIX}{future.task_run_id}")
        return await self._await(future.task_run_id, item, on_line)

    async def follow(self, flow_run_id: str, item: DispatchItem, on_line: LineSink) -> TaskResult | None:
        if not flow_run_id.startswith(self.PREFIX):
            return None
        return await self._await(UUID(flow_run_id.removeprefix(self.PREFIX)), item, on_line)

    async def _poll_once(self) -> None:
        from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId

        ids = list(self._watches)
        now = time.monotonic()
        for chunk in _chunks(ids, _PAGE):
            await self._read_lines(chunk)
            runs = await self._client.read_task_runs(
                task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=chunk)), limit=_PAGE
            )
            for run in runs:
                watch = self._watches.get(run.id)
                if watch is not None and not watch.future.done() and run.state is not None:
                    await self._check(run.id, run.state, watch, now)
            self._settle_vanished(chunk, {run.id for run in runs})

    async def _not_picked_up_reason(self, run_id: UUID, item: DispatchItem) -> str:
        """Whether a worker of the environment is listening tells the two causes apart: none is
        running, or one is but gave the run up without the server hearing of it (its delete of a
        run whose parameters it cannot read was lost)."""
        from flows.task_lane import environment_task

        waited = f"task run {run_id} was not started within {self.pickup_grace_seconds:g} s"
        try:
            answer = await self._client.request(
                "POST",
                "/task_workers/filter",
                json={"task_worker_filter": {"task_keys": [environment_task(item.environment).task_key]}},
            )
            answer.raise_for_status()
            listening = len(answer.json())
        except Exception as exc:  # the reason is a courtesy: the task fails either way
            log.warning("task_workers_unreadable", error=f"{type(exc).__name__}: {exc}")
            return f"{waited}; is `cloud-agent worker --env {item.environment}` running?"
        if not listening:
            return (
                f"{waited}: no worker of environment {item.environment!r} is listening; "
                f"start `cloud-agent worker --env {item.environment}`"
            )
        return (
            f"{waited}, although {listening} worker(s) of environment {item.environment!r} listen: one most likely "
            f"could not read the task's parameters (its log says 'Failed to read parameters'); " + SHARED_STORAGE_HINT
        )

    def _log_filter(self, ids: list[UUID], since: datetime) -> Any:
        from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, LogFilterTimestamp

        return LogFilter(task_run_id=LogFilterTaskRunId(any_=ids), timestamp=LogFilterTimestamp(after_=since))  # type: ignore[arg-type]

    def _watch_of(self, entry: Any) -> _Watch | None:
        return self._watches.get(entry.task_run_id) if entry.task_run_id else None

    async def _result_of(self, state: Any, item: DispatchItem, flow_run_id: str) -> TaskResult:
        if not state.is_completed():
            return lost_result(
                item,
                "run_" + state.type.value.lower(),
                f"task run {flow_run_id} ended {state.name}: {state.message or 'no message'}",
                ran=self.started(item.task_id),
            )
        from flows.result_storage import aread_result

        try:
            return TaskResult.model_validate(await aread_result(state))
        except Exception as exc:
            return lost_result(
                item,
                "result_unavailable",
                f"task run {flow_run_id} completed but its result cannot be read here ({type(exc).__name__}: {exc}); "
                + SHARED_STORAGE_HINT,
                ran=True,
            )

    async def _cancel(self, flow_run_id: UUID, message: str) -> None:
        from prefect.states import Cancelled

        try:
            await self._client.set_task_run_state(flow_run_id, Cancelled(message=message), force=True)
        except Exception as exc:
            log.warning("cancel_failed", task_run_id=str(flow_run_id), error=str(exc))
