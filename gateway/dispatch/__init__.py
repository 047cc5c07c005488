"""Getting a task run where its agent's environment runs tasks, and its result back.

The dispatchers, chosen by ``CLOUD_AGENT_DISPATCH`` (``flows`` settings):

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

from gateway.dispatch._common import (
    BATCH_DEPLOYMENT,
    REMOTE_DISPATCHES,
    SHARED_STORAGE_HINT,
    Dispatcher,
    DispatchItem,
    lost_result,
)
from gateway.dispatch.in_process import InProcessDispatcher
from gateway.dispatch.task_worker import TaskWorkerDispatcher
from gateway.dispatch.work_pool import WorkPoolDispatcher, ensure_batch_deployment
from gateway.settings import RunAs

__all__ = [
    "BATCH_DEPLOYMENT",
    "REMOTE_DISPATCHES",
    "SHARED_STORAGE_HINT",
    "DispatchItem",
    "Dispatcher",
    "InProcessDispatcher",
    "TaskWorkerDispatcher",
    "WorkPoolDispatcher",
    "ensure_batch_deployment",
    "lost_result",
    "make_dispatcher",
]


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
