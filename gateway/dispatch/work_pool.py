"""Tasks as runs of an environment's ``execute-batch/<env>`` deployment, picked up by its worker
next to the data; one poller follows every run in flight."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from contract import output_lines
from executors import TaskResult
from gateway.dispatch._common import (
    _MAX_LOG_PAGES,
    _PAGE,
    BATCH_DEPLOYMENT,
    BATCH_ENTRYPOINT,
    SHARED_STORAGE_HINT,
    WORKER_TYPE,
    Dispatcher,
    DispatchItem,
    FlowRunNotice,
    _chunks,
    log,
    lost_result,
)
from gateway.errors import DispatchUnavailable
from gateway.logstream import LineSink

#: A work-pool task still running this long after its own timeout is considered lost.
RUN_SLACK_SECONDS = 30.0


# -- work pools ---------------------------------------------------------------------------------


@dataclass
class _Watch:
    """A flow run in flight: whom to tell about its lines, and when to give up on it."""

    item: DispatchItem
    on_line: LineSink
    future: asyncio.Future[Any]
    pickup_deadline: float
    run_deadline: float | None = None
    seen_logs: set[UUID] = field(default_factory=set)
    #: Lines are read from here on: a minute back at first, as a worker's clock may be off.
    log_cursor: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(seconds=60))
    #: The lines passed on so far, per stream.
    delivered: dict[str, list[str]] = field(default_factory=lambda: {"stdout": [], "stderr": []})

    def deliver(self, stream: str, line: str) -> None:
        self.delivered[stream].append(line)
        self.on_line(stream, line)

    def deliver_rest_of(self, result: TaskResult) -> None:
        """Pass on the lines of ``result`` its log had not brought yet.

        The worker sends its log in batches, so the run can be seen ended before its last batch
        reaches the server; the result holds the whole output. Only a result that continues what
        was delivered, line for line, fills the gap: anything else (cut, masked, long lines split)
        is left as the log gave it.
        """
        if result.truncated:
            return
        for stream, text in (("stdout", result.output), ("stderr", result.stderr)):
            lines = output_lines(text)
            sent = self.delivered[stream]
            if len(lines) > len(sent) and lines[: len(sent)] == sent:
                for line in lines[len(sent) :]:
                    self.deliver(stream, line)


class WorkPoolDispatcher(Dispatcher):
    """Runs each task as a run of ``execute-batch/<env>`` on the environment's work pool.

    Args:
        poll_seconds: how often the state and the logs of the runs in flight are read.
        pickup_grace_seconds: a run no worker has picked up by then is cancelled (``failed``).
    """

    name = "work-pool"
    remote = True

    def __init__(self, *, poll_seconds: float = 0.1, pickup_grace_seconds: float = 60.0):
        self.poll_seconds = poll_seconds
        self.pickup_grace_seconds = pickup_grace_seconds
        self._client: Any = None
        self._deployments: dict[str, UUID] = {}
        self._watches: dict[UUID, _Watch] = {}
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from prefect.client.orchestration import get_client

        from flows.result_storage import ensure_shared_storage

        # Workers on other hosts hand results back through the shared store: a gateway that
        # cannot reach it should say so at start, not at its first remote task.
        await asyncio.to_thread(ensure_shared_storage)
        self._client = get_client()
        await self._client.__aenter__()
        self._poller = asyncio.create_task(self._poll_forever(), name="work-pool-poller")

    async def prepare(self, environment: str) -> None:
        await self._deployment_id(environment)

    async def _deployment_id(self, environment: str) -> UUID:
        from prefect.exceptions import ObjectNotFound

        found = self._deployments.get(environment)
        if found is not None:
            return found
        name = BATCH_DEPLOYMENT.format(environment=environment)
        try:
            deployment = await self._client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise DispatchUnavailable(
                f"there is no deployment {name}: deploy it on the environment's work pool and start "
                f"its worker (cloud-agent worker --env {environment})"
            ) from None
        except Exception as exc:
            raise DispatchUnavailable(f"the Prefect API cannot be reached: {type(exc).__name__}: {exc}") from exc
        self._deployments[environment] = deployment.id
        return deployment.id

    async def run(self, item: DispatchItem, on_line: LineSink, on_flow_run: FlowRunNotice) -> TaskResult:
        try:
            deployment_id = await self._deployment_id(item.environment)
            flow_run = await self._client.create_flow_run_from_deployment(
                deployment_id,
                parameters={
                    "environment": item.environment,
                    "items": [item.planned().model_dump()],
                    "actor": item.actor,
                },
                name=item.task_id,
                tags=item.tags,
            )
        except DispatchUnavailable as exc:
            return lost_result(item, exc.code, exc.message, ran=False)
        except Exception as exc:
            return lost_result(
                item, "dispatch_failed", f"cannot create the flow run: {type(exc).__name__}: {exc}", ran=False
            )
        on_flow_run(str(flow_run.id))
        return await self._await(flow_run.id, item, on_line)

    async def follow(self, flow_run_id: str, item: DispatchItem, on_line: LineSink) -> TaskResult | None:
        return await self._await(UUID(flow_run_id), item, on_line)

    async def _await(self, flow_run_id: UUID, item: DispatchItem, on_line: LineSink) -> TaskResult:
        loop = asyncio.get_running_loop()
        watch = _Watch(item, on_line, loop.create_future(), time.monotonic() + self.pickup_grace_seconds)
        self._watches[flow_run_id] = watch
        self._wake.set()
        try:
            result: TaskResult = await watch.future
            return result
        finally:
            self._watches.pop(flow_run_id, None)

    async def _poll_forever(self) -> None:
        while True:
            if not self._watches:
                self._wake.clear()
                await self._wake.wait()
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server hiccups; the next tick tries again
                log.warning("work_pool_poll_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.poll_seconds)

    async def _poll_once(self) -> None:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        ids = list(self._watches)
        now = time.monotonic()
        for chunk in _chunks(ids, _PAGE):
            await self._read_lines(chunk)
            runs = await self._client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=_PAGE
            )
            for run in runs:
                watch = self._watches.get(run.id)
                if watch is not None and not watch.future.done() and run.state is not None:
                    await self._check(run.id, run.state, watch, now)
            self._settle_vanished(chunk, {run.id for run in runs})

    #: Why a watched run can vanish from the API (it was created before it was watched).
    vanished_reason: ClassVar[str] = "flow run {run_id} was deleted before it ended"

    def _settle_vanished(self, asked: list[UUID], found: set[UUID]) -> None:
        """A watched run the API no longer has will never end: its task gets a result now."""
        for run_id in asked:
            watch = self._watches.get(run_id)
            if run_id in found or watch is None or watch.future.done():
                continue
            ran = self.started(watch.item.task_id)
            message = self.vanished_reason.format(run_id=run_id, environment=watch.item.environment)
            watch.future.set_result(lost_result(watch.item, "run_deleted", message, ran=ran))

    async def _check(self, flow_run_id: UUID, state: Any, watch: _Watch, now: float) -> None:
        if state.is_final():
            await self._read_lines([flow_run_id])  # the worker flushes its last lines as the run ends
            result = await self._result_of(state, watch.item, str(flow_run_id))
            watch.deliver_rest_of(result)
            watch.future.set_result(result)
        elif state.is_running() or state.is_pending():
            # Pending: a worker took the run up. One that cannot report its start (it lost the API)
            # leaves it Pending for good: it gets the same time as a running one, not for ever.
            if watch.run_deadline is None:
                watch.run_deadline = now + watch.item.timeout + RUN_SLACK_SECONDS
            elif now > watch.run_deadline and state.is_running():
                await self._cancel(flow_run_id, "the task ran past its timeout; the gateway stopped waiting")
                watch.future.set_result(
                    lost_result(
                        watch.item,
                        "worker_unresponsive",
                        f"flow run {flow_run_id} ran {RUN_SLACK_SECONDS:g} s past the task's timeout",
                        ran=True,
                    )
                )
            elif now > watch.run_deadline:
                await self._cancel(flow_run_id, "the worker that took the task up never started it")
                watch.future.set_result(
                    lost_result(
                        watch.item,
                        "not_started",
                        f"a worker of environment {watch.item.environment!r} took run {flow_run_id} up but did not "
                        f"start it within the task's timeout and {RUN_SLACK_SECONDS:g} s; see that worker's log",
                        ran=self.started(watch.item.task_id),
                    )
                )
        elif state.is_scheduled() and now > watch.pickup_deadline:
            await self._cancel(flow_run_id, "no worker picked the task up in time")
            reason = await self._not_picked_up_reason(flow_run_id, watch.item)
            watch.future.set_result(lost_result(watch.item, "not_picked_up", reason, ran=False))

    async def _not_picked_up_reason(self, run_id: UUID, item: DispatchItem) -> str:
        return (
            f"no worker of environment {item.environment!r} picked flow run {run_id} up within "
            f"{self.pickup_grace_seconds:g} s; is `cloud-agent worker --env {item.environment}` running?"
        )

    async def _read_lines(self, ids: list[UUID]) -> None:
        from prefect.client.schemas.sorting import LogSort

        watches = [self._watches[i] for i in ids if i in self._watches]
        if not watches:
            return
        # Batches from different runs arrive out of order: read from the oldest cursor, drop repeats.
        since = min(watch.log_cursor for watch in watches)
        log_filter = self._log_filter(ids, since)
        for page in range(_MAX_LOG_PAGES):
            logs = await self._client.read_logs(
                log_filter=log_filter, sort=LogSort.TIMESTAMP_ASC, limit=_PAGE, offset=page * _PAGE
            )
            for entry in logs:
                self._deliver(entry)
            if len(logs) < _PAGE:
                break

    def _log_filter(self, ids: list[UUID], since: datetime) -> Any:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp

        return LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids), timestamp=LogFilterTimestamp(after_=since))  # type: ignore[arg-type]

    def _watch_of(self, entry: Any) -> _Watch | None:
        return self._watches.get(entry.flow_run_id) if entry.flow_run_id else None

    def _deliver(self, entry: Any) -> None:
        watch = self._watch_of(entry)
        if watch is None or entry.id in watch.seen_logs or entry.task_run_id is None:
            return
        watch.seen_logs.add(entry.id)
        watch.log_cursor = max(watch.log_cursor, entry.timestamp - timedelta(seconds=5))
        marker, _, line = entry.message.partition(" ")
        if marker in ("|", "!"):
            watch.deliver("stdout" if marker == "|" else "stderr", line)

    async def _result_of(self, state: Any, item: DispatchItem, flow_run_id: str) -> TaskResult:
        if not state.is_completed():
            ran = self.started(item.task_id)
            return lost_result(
                item,
                "run_" + state.type.value.lower(),
                f"flow run {flow_run_id} ended {state.name}: {state.message or 'no message'}",
                ran=ran,
            )
        from flows.result_storage import aread_result

        try:
            results = await aread_result(state)
            return TaskResult.model_validate(results[0])
        except Exception as exc:
            return lost_result(
                item,
                "result_unavailable",
                f"flow run {flow_run_id} completed but its result cannot be read here ({type(exc).__name__}: {exc}); "
                + SHARED_STORAGE_HINT,
                ran=True,
            )

    async def _cancel(self, flow_run_id: UUID, message: str) -> None:
        from prefect.states import Cancelled

        try:
            await self._client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)
        except Exception as exc:
            log.warning("cancel_failed", flow_run_id=str(flow_run_id), error=str(exc))

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for watch in self._watches.values():
            if not watch.future.done():
                watch.future.cancel()
        if self._client is not None:
            await self._client.__aexit__(None, None, None)


async def ensure_batch_deployment(environment: str, work_pool: str) -> UUID:
    """Create ``execute-batch/<environment>`` on ``work_pool`` (and the pool) if missing; its id.

    For a one-machine set-up, the tests and the benchmarks; production deploys from ``prefect.yaml``.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from flows.batch import execute_batch

    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=work_pool, type=WORKER_TYPE))
        flow_id = await client.create_flow(execute_batch)
        deployment_id: UUID = await client.create_deployment(
            flow_id,
            environment,
            work_pool_name=work_pool,
            entrypoint=BATCH_ENTRYPOINT,
        )
        return deployment_id
