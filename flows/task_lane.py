"""Single tasks through an environment's worker, as Prefect background task runs.

The task API's one-off tasks (``POST /api/v1/tasks`` for an agent of a remote environment) do not
need a flow run each: a flow run on a work pool costs ~0.7-1 s of worker polling and bookkeeping.
A background task run costs ~0.3 s: the gateway schedules it (``apply_async``), the environment's
worker — the same ``cloud-agent worker --env ENV`` process that serves the environment's work pool —
receives it over Prefect's task-run subscription and runs it next to the data, and it shows in the
Prefect UI's task runs like any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

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
        task_spec: dict[str, Any], actor: str, task_id: str | None = None, stream_output: bool = False
    ) -> dict[str, Any]:
        return run_executor_task.fn(task_spec, actor, task_id=task_id, stream_output=stream_output)

    run.__name__ = run.__qualname__ = name
    run.__code__ = run.__code__.replace(co_name=name, co_qualname=name)
    return run


async def serve_environment_tasks(environment: str, *, limit: int | None = None) -> None:
    """Run the environment's background task runs in this process until cancelled."""
    from prefect.task_worker import TaskWorker

    await TaskWorker(environment_task(environment), limit=limit).start()  # type: ignore[misc]  # sync_compatible
