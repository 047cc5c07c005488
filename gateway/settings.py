"""Settings of the task API (``CLOUD_AGENT_*``), beside the flows' and the executors' own."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field

from executors import ConfigurationError
from flows.settings import FlowSettings

#: How the gateway runs a task it dispatches in-process (``CLOUD_AGENT_DISPATCH=in-process``).
RunAs = Literal["flow-run", "task-run", "engine"]


class GatewaySettings(FlowSettings):
    """Everything ``cloud-agent serve`` reads from the environment.

    Tokens come from ``tokens_file`` (YAML of SHA-256 digests) and/or ``tokens``
    (``name:role:token,...``, for containers and tests). ``anonymous_role`` lets requests without a
    token in with that role: the spec's ``CloudAgentClient`` sends none. Off unless set, and only
    for trusted networks.
    """

    tokens_file: Path | None = None
    tokens: str | None = Field(default=None, repr=False)
    anonymous_role: Literal["viewer", "operator", "approver"] | None = None

    #: ``sqlite:///path`` for the task records (default ``<state_dir>/tasks.sqlite3``).
    task_store_url: str | None = None
    #: Names this gateway in its task records, so a restart marks only its own orphans crashed.
    gateway_name: str = Field(default_factory=socket.gethostname)

    #: How an in-process task runs. ``task-run``: a Prefect task run named after the task
    #: (``shell: df -h@local``, tagged ``task-api``, ``agent:<id>``), shown in the Prefect UI's task
    #: runs; ~30 ms of overhead and no API write in its path. ``flow-run``: a one-item
    #: ``execute-batch`` flow run, shown as a flow run like the cycle's batches; ~5 API writes per
    #: task, ~150 ms and a few tasks/s on a SQLite Prefect server (see bench/task_api.py).
    #: ``engine``: the bare engine, nothing in Prefect (no Prefect server needed). Unset:
    #: ``task-run`` when a Prefect API is configured (``PREFECT_API_URL``), else ``engine``.
    gateway_run_as: RunAs | None = None
    #: The port of the Prefect server the gateway starts for the cycles when no Prefect API is
    #: configured (``gateway.local_prefect``); unset, a free port (its UI URL is logged).
    local_prefect_port: int | None = Field(default=None, ge=1, le=65535)
    #: How a task of an environment dispatched to its worker (``CLOUD_AGENT_DISPATCH=work-pool``)
    #: gets there. ``task-run`` (default): a Prefect background task run on the environment's task
    #: key, which ``cloud-agent worker --env ENV`` serves (~0.3 s). ``flow-run``: a run of
    #: ``execute-batch/<env>`` on the environment's work pool (~0.7-1 s; see bench/task_api.py).
    gateway_remote_as: Literal["task-run", "flow-run"] = "task-run"
    #: Threads that run in-process tasks; per-agent limits apply before a task gets one.
    gateway_threads: int = Field(default=32, gt=0, le=512)

    #: Requests with a larger body are refused with 413.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Tasks an agent may have waiting beyond its running ones; more are refused with 429.
    queue_per_agent: int = Field(default=200, ge=0)
    #: A sync request waits this long beyond the task's (capped) timeout before answering 202.
    sync_grace_seconds: float = Field(default=5.0, ge=0)
    #: How often the work-pool dispatcher reads the state and logs of its flow runs.
    gateway_poll_seconds: float = Field(default=0.1, gt=0)
    #: A work-pool task not picked up by a worker within its timeout plus this is cancelled.
    pickup_grace_seconds: float = Field(default=60.0, gt=0)
    #: At shutdown, running tasks get this long to finish before the gateway stops waiting.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    #: Output lines kept per task for late WebSocket subscribers, and tasks whose lines are kept.
    log_lines_per_task: int = Field(default=10_000, gt=0)
    log_tasks_kept: int = Field(default=1_000, gt=0)

    def for_prefect_api(self, api_url: str | None) -> GatewaySettings:
        """These settings with the task run mode chosen for a Prefect API (``None``: there is none).

        Raises:
            ConfigurationError: a setting of how tasks run needs a Prefect server and none is
                configured. (``CLOUD_AGENT_CYCLE_START=event`` without one is answered at the
                webhook, which is where it matters.)
        """
        if api_url is None:
            needs = {
                "CLOUD_AGENT_DISPATCH=work-pool": self.dispatch == "work-pool",
                f"CLOUD_AGENT_GATEWAY_RUN_AS={self.gateway_run_as}": self.gateway_run_as in ("task-run", "flow-run"),
            }
            wanted = [name for name, needed in needs.items() if needed]
            if wanted:
                verb = "need" if len(wanted) > 1 else "needs"
                raise ConfigurationError(
                    f"{' and '.join(wanted)} {verb} a Prefect server: set PREFECT_API_URL "
                    "(without one, tasks run on the engine and alerts start a local Prefect server)"
                )
        run_as: RunAs = self.gateway_run_as or ("task-run" if api_url else "engine")
        return self.model_copy(update={"gateway_run_as": run_as})

    def resolved_task_store_url(self) -> str:
        return self.task_store_url or f"sqlite:///{self.state_dir / 'tasks.sqlite3'}"
