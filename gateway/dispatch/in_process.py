"""Tasks run in this process, on threads of their own: as Prefect task runs, one-item flow runs,
or on the bare engine."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from executors import TaskResult
from gateway.dispatch._common import Dispatcher, DispatchItem, FlowRunNotice, T, _local_result_storage, log, lost_result
from gateway.logstream import LineSink
from gateway.settings import RunAs

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
        from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

        from flows.prefect_internals import sync_client_context

        with contextlib.ExitStack() as stack:
            if self.run_as == "task-run":
                # A task run outside a flow run cannot send its log to the API, and Prefect warns
                # about it on every run; the UI shows the run and its state.
                stack.enter_context(temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}))
            try:
                stack.enter_context(sync_client_context())
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
            # The approval is the task API's (an approver's token, checked): handed on beside the task.
            # The process's engine, shared with the flows' task runs (one audit log, warm pools).
            from flows.runtime import engine

            with engine() as agent:
                return agent.run(
                    item.spec, actor=item.actor, task_id=item.task_id, on_output=on_line, approval=item.spec.approval
                )

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

        from flows.batch import execute_batch
        from flows.prefect_internals import without_flow_heartbeats

        # No persisted flow result: the task store keeps the result.
        batch = execute_batch.with_options(
            flow_run_name=item.task_id, persist_result=False, result_storage=_local_result_storage()
        )
        with without_flow_heartbeats(), tags(*item.tags):
            results = batch(item.environment, [item.planned()], item.actor)
        return results[0]

    async def close(self) -> None:
        await asyncio.to_thread(self._threads.shutdown)
