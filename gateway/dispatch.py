"""Getting a task run where its agent's environment runs tasks, and its result back.

Two dispatchers, chosen by ``CLOUD_AGENT_DISPATCH`` (``flows`` settings):

- ``InProcessDispatcher`` runs the task in this process, on a thread of its own, as (by
  ``CLOUD_AGENT_GATEWAY_RUN_AS``) a Prefect task run (the default: it shows in the Prefect UI as a
  task run, for ~30 ms), a one-item ``execute-batch`` flow run without heartbeats (shows as a flow
  run; ~5x the overhead and a few tasks/s on a SQLite Prefect server), or the bare engine (nothing
  in Prefect). Output lines reach the WebSocket through a sink registered under the task id
  (``flows.output``).
- ``WorkPoolDispatcher`` creates a run of the ``execute-batch/<env>`` deployment, which that
  environment's ``CloudAgentWorker`` picks up from its work pool next to the data. One poller reads
  the state and the new task-run log lines of every run in flight, one request each per tick; the
  lines are the worker's ``| line`` / ``! line`` log records (``flows.tasks``).

A dispatcher returns a ``TaskResult`` for every task, never raises for a task that went wrong:
a run that was lost says so (``crashed``), and one that never started says that (``failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import structlog

from executors import AuditEvent, AuditLog, AuditQuery, ErrorInfo, TaskResult, TaskSpec, TaskStatus
from gateway.errors import DispatchUnavailable
from gateway.logstream import LineSink
from gateway.settings import RunAs
from models.planning import PlannedTask

log = structlog.get_logger("cloud_agent.gateway")

BATCH_DEPLOYMENT = "execute-batch/{environment}"
#: ``TaskRecord.dispatch`` of tasks that ran on a worker (their run can be followed after a restart).
REMOTE_DISPATCHES = frozenset({"work-pool", "task-worker"})
BATCH_ENTRYPOINT = "flows/batch.py:execute_batch"
WORKER_TYPE = "cloud-agent"
#: A work-pool task still running this long after its own timeout is considered lost.
RUN_SLACK_SECONDS = 30.0
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
            task=self.spec.model_dump(mode="json", exclude_none=True),
            task_id=self.task_id,
            stream_output=True,
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
    )


def _cloud_agent() -> Any:
    # The process's engine, shared with the flows' task runs (one audit log, warm connection pools).
    from flows._runtime import cloud_agent

    return cloud_agent()


# -- in-process ---------------------------------------------------------------------------------


class _Threads:
    """Worker threads that each hold one Prefect client (and settings) for their whole life.

    A Prefect run started without a client in context creates one and checks the server version
    (~30-40 ms per run); holding one per thread pays that once. Threads start on demand up to
    ``limit`` and leave their context (closing the client) when ``shutdown`` is called.
    """

    def __init__(self, limit: int, context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None):
        self._limit = limit
        self._context = context
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._outstanding = 0

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            self._outstanding += 1
            if self._outstanding > len(self._threads) and len(self._threads) < self._limit:
                thread = threading.Thread(target=self._work, name=f"task-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put((job, future))
        return future

    def _work(self) -> None:
        with self._context() if self._context else contextlib.nullcontext():
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                job, future = item
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job())
                    except BaseException as exc:
                        future.set_exception(exc)
                with self._lock:
                    self._outstanding -= 1

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class InProcessDispatcher(Dispatcher):
    """Runs each task in this process, as a flow run, a task run or on the bare engine."""

    name = "in-process"

    def __init__(self, run_as: RunAs = "task-run", threads: int = 32):
        self.run_as = run_as
        self._threads = _Threads(threads, None if run_as == "engine" else self._prefect_thread)

    @contextlib.contextmanager
    def _prefect_thread(self) -> Iterator[None]:
        from prefect.context import SyncClientContext
        from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

        with contextlib.ExitStack() as stack:
            if self.run_as == "task-run":
                # A task run outside a flow run cannot send its log to the API, and Prefect warns
                # about it on every run; the UI shows the run and its state.
                stack.enter_context(temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}))
            try:
                stack.enter_context(SyncClientContext())
            except Exception as exc:  # the server may be down now and up later: runs make their own
                log.warning("prefect_client_unavailable", error=str(exc))
            yield

    async def start(self) -> None:
        if self.run_as != "engine":
            # Importing Prefect's engine takes ~1.5 s: at start, not in the first caller's request.
            await asyncio.to_thread(importlib.import_module, "flows.batch")

    async def run(self, item: DispatchItem, on_line: LineSink, on_flow_run: FlowRunNotice) -> TaskResult:
        future = self._threads.submit(lambda: self._run(item, on_line))
        try:
            return await asyncio.wrap_future(future)
        except Exception as exc:  # Prefect could not record or start the run
            log.warning("in_process_dispatch_failed", task_id=item.task_id, error=f"{type(exc).__name__}: {exc}")
            ran = self.started(item.task_id)
            message = f"the {self.run_as} of this task failed: {type(exc).__name__}: {exc}"
            if ran:
                message += "; the task started (see the audit log), its result is lost"
            return lost_result(item, "dispatch_failed", message, ran=ran)

    def _run(self, item: DispatchItem, on_line: LineSink) -> TaskResult:
        if self.run_as == "engine":
            return _cloud_agent().run(item.spec, actor=item.actor, task_id=item.task_id, on_output=on_line)

        from flows.output import register_sink, unregister_sink

        register_sink(item.task_id, on_line)
        try:
            data = self._task_run(item) if self.run_as == "task-run" else self._flow_run(item)
        finally:
            unregister_sink(item.task_id)
        return TaskResult.model_validate(data)

    @staticmethod
    def _task_run(item: DispatchItem) -> dict[str, Any]:
        from prefect import tags

        from flows.tasks import run_executor_task

        planned = item.planned()
        with tags(*item.tags):
            # A run name is a format template to Prefect: a command's braces must be doubled.
            named = run_executor_task.with_options(
                task_run_name=item.run_name.replace("{", "{{").replace("}", "}}"),
                result_storage=_local_result_storage(),
            )
            return named(planned.task, item.actor, task_id=item.task_id, stream_output=True)

    @staticmethod
    def _flow_run(item: DispatchItem) -> dict[str, Any]:
        from prefect import tags

        from flows._prefect import without_flow_heartbeats
        from flows.batch import execute_batch

        # No persisted flow result: the task store keeps the result.
        batch = execute_batch.with_options(
            flow_run_name=item.task_id, persist_result=False, result_storage=_local_result_storage()
        )
        with without_flow_heartbeats(), tags(*item.tags):
            results = batch(item.environment, [item.planned()], item.actor)
        return results[0]

    async def close(self) -> None:
        await asyncio.to_thread(self._threads.shutdown)


def _local_result_storage() -> Path:
    """Prefect's local result folder, named explicitly.

    Without it every run asks the server for its default result storage (``GET /admin/storage``):
    one blocking request per task run, 10-70 ms on a busy server, for runs that persist nothing.
    """
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path)


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

    async def _check(self, flow_run_id: UUID, state: Any, watch: _Watch, now: float) -> None:
        if state.is_final():
            await self._read_lines([flow_run_id])  # the worker flushes its last lines as the run ends
            watch.future.set_result(await self._result_of(state, watch.item, str(flow_run_id)))
        elif state.is_running():
            if watch.run_deadline is None:
                watch.run_deadline = now + watch.item.timeout + RUN_SLACK_SECONDS
            elif now > watch.run_deadline:
                await self._cancel(flow_run_id, "the task ran past its timeout; the gateway stopped waiting")
                watch.future.set_result(
                    lost_result(
                        watch.item,
                        "worker_unresponsive",
                        f"flow run {flow_run_id} ran {RUN_SLACK_SECONDS:g} s past the task's timeout",
                        ran=True,
                    )
                )
        elif state.is_scheduled() and now > watch.pickup_deadline:
            await self._cancel(flow_run_id, "no worker picked the task up in time")
            watch.future.set_result(
                lost_result(
                    watch.item,
                    "not_picked_up",
                    f"no worker of environment {watch.item.environment!r} picked flow run {flow_run_id} up within "
                    f"{self.pickup_grace_seconds:g} s; is `cloud-agent worker --env {watch.item.environment}` running?",
                    ran=False,
                )
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
            watch.on_line("stdout" if marker == "|" else "stderr", line)

    async def _result_of(self, state: Any, item: DispatchItem, flow_run_id: str) -> TaskResult:
        if not state.is_completed():
            ran = self.started(item.task_id)
            return lost_result(
                item,
                "run_" + state.type.value.lower(),
                f"flow run {flow_run_id} ended {state.name}: {state.message or 'no message'}",
                ran=ran,
            )
        try:
            results = await state.aresult(raise_on_failure=True)
            return TaskResult.model_validate(results[0])
        except Exception as exc:
            return lost_result(
                item,
                "result_unavailable",
                f"flow run {flow_run_id} completed but its result cannot be read here ({type(exc).__name__}: {exc}); "
                "the gateway and the workers need a shared result storage",
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

    async def prepare(self, environment: str) -> None:
        return None  # no deployment to find: a task run waits for its environment's worker

    async def run(self, item: DispatchItem, on_line: LineSink, on_flow_run: FlowRunNotice) -> TaskResult:
        from flows.task_lane import environment_task

        planned = item.planned()
        try:
            future = await asyncio.to_thread(
                environment_task(item.environment).apply_async,
                args=(planned.task, item.actor),
                kwargs={"task_id": item.task_id, "stream_output": True},
            )
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
        try:
            return TaskResult.model_validate(await state.aresult(raise_on_failure=True))
        except Exception as exc:
            return lost_result(
                item,
                "result_unavailable",
                f"task run {flow_run_id} completed but its result cannot be read here ({type(exc).__name__}: {exc}); "
                "the gateway and the workers need a shared result storage",
                ran=True,
            )

    async def _cancel(self, flow_run_id: UUID, message: str) -> None:
        from prefect.states import Cancelled

        try:
            await self._client.set_task_run_state(flow_run_id, Cancelled(message=message), force=True)
        except Exception as exc:
            log.warning("cancel_failed", task_run_id=str(flow_run_id), error=str(exc))


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


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def make_dispatcher(
    mode: str,
    run_as: RunAs,
    *,
    threads: int,
    poll_seconds: float,
    pickup_grace_seconds: float,
    remote_as: str = "task-run",
) -> Dispatcher:
    """The dispatcher for ``CLOUD_AGENT_DISPATCH`` (``in-process`` or ``work-pool``); a remote
    environment's tasks go to its worker as task runs or as flow runs (``remote_as``)."""
    if mode == "work-pool" and remote_as == "task-run":
        return TaskWorkerDispatcher(poll_seconds=poll_seconds, pickup_grace_seconds=pickup_grace_seconds)
    if mode == "work-pool":
        return WorkPoolDispatcher(poll_seconds=poll_seconds, pickup_grace_seconds=pickup_grace_seconds)
    return InProcessDispatcher(run_as, threads)
