"""Single tasks through an environment's worker, as Prefect background task runs.

The task API's one-off tasks (``POST /api/v1/tasks`` for an agent of a remote environment) do not
need a flow run each: a flow run on a work pool costs ~0.7-1 s of worker polling and bookkeeping.
A background task run costs ~0.3 s: the gateway schedules it (``apply_async``), the environment's
worker — the same ``cloud-agent worker --env ENV`` process that serves the environment's work pool —
receives it over Prefect's task-run subscription and runs it next to the data, and it shows in the
Prefect UI's task runs like any other.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from flows.prefect_internals import prompt_task_worker, renamed_function
from flows.result_storage import ensure_shared_storage, shared_result_storage
from flows.tasks import run_executor_task


@cache
def environment_task(environment: str) -> Task[Any, Any]:
    """The background task that runs one executor task in ``environment``."""
    return task(name=f"task@{environment}", persist_result=True, cache_policy=NO_CACHE)(_lane_function(environment))


def _lane_function(environment: str) -> Callable[..., dict[str, Any]]:
    """``run_executor_task``'s function under a name of the environment's own.

    Prefect keys a background task by its function's name and code, and a task worker serves the
    keys of the tasks it is given: a function per environment gives each environment its own key,
    so a prod task only ever reaches a prod worker.
    """
    name = "run_in_" + re.sub(r"\W", "_", environment)

    def run(
        task_spec: dict[str, Any],
        actor: str,
        task_id: str | None = None,
        stream_output: bool = False,
        approval: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return run_executor_task.fn(task_spec, actor, task_id=task_id, stream_output=stream_output, approval=approval)

    return renamed_function(run, name)


async def serve_environment_tasks(environment: str, *, limit: int | None = None) -> None:
    """Run the environment's background task runs in this process until cancelled."""
    # The store is set up (block, probe) off the event loop; the settings it yields are a context
    # variable, so the worker's reads of parameters and its task runs' results inherit them.
    await asyncio.to_thread(ensure_shared_storage)
    with shared_result_storage():
        await prompt_task_worker(environment_task(environment), limit=limit).start()  # type: ignore[misc]  # sync_compatible
