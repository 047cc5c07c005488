"""The environment worker: polls one environment's work pool and runs its flow runs in-process.

Prefect's process worker starts a Python process per flow run, which costs seconds (importing
Prefect alone takes ~1.5 s) — too slow for a batch of 200 ms queries or a synchronous API task.
This worker is a regular Prefect worker (a ``BaseWorker``: it polls its work pool, heartbeats,
shows in the UI, honours the pool's concurrency) whose ``run`` executes the flow run in a thread
of its own process, where the executors' connection pools stay warm. It runs only this project's
flows, resolved by name, so no code is pulled or imported per run.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.abc
from prefect import Flow
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from flows.prefect_internals import run_flow_here, without_flow_heartbeats

WORKER_TYPE = "cloud-agent"


class CloudAgentWorkerResult(BaseWorkerResult):
    """The outcome of one flow run executed by a ``CloudAgentWorker``."""


def _known_flows() -> dict[str, Flow[Any, Any]]:
    # Imported here, not at the top: Prefect imports this module to learn the worker type (also in
    # its server), which should not pull in the models and their scientific stack.
    from flows.batch import execute_batch
    from flows.cycle import rca_incident
    from flows.retrain import retrain_model

    return {flow.name: flow for flow in (execute_batch, rca_incident, retrain_model)}


class CloudAgentWorker(BaseWorker[BaseJobConfiguration, BaseVariables, CloudAgentWorkerResult]):
    type = WORKER_TYPE
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables
    _description = "Runs Cloud Agent RCA flow runs in the worker's own process, next to an environment's data."

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> CloudAgentWorkerResult:
        api_flow = await self.client.read_flow(flow_run.flow_id)
        flow = _known_flows().get(api_flow.name)
        if flow is None:
            raise RuntimeError(f"this worker runs the flows {sorted(_known_flows())}, not {api_flow.name!r}")
        if task_status is not None:
            task_status.started(threading.get_native_id())

        from flows.result_storage import shared_result_storage  # here: the server imports this module

        def execute() -> Any:
            # Results go where the control side can read them (a shared store when configured):
            # here, so that `prefect worker start --type cloud-agent` gets it as well.
            with shared_result_storage():
                if flow.name == "execute-batch":
                    with without_flow_heartbeats():
                        return run_flow_here(flow, flow_run)
                return run_flow_here(flow, flow_run)

        state = await anyio.to_thread.run_sync(execute, abandon_on_cancel=True)
        return CloudAgentWorkerResult(identifier=str(flow_run.id), status_code=0 if state is not None else 1)


async def serve_pool(
    work_pool: str, *, name: str | None = None, limit: int | None = None, poll_seconds: float = 1.0
) -> None:
    """Run a ``CloudAgentWorker`` on ``work_pool`` until cancelled (creates the pool if missing)."""
    # The flows and their scientific stack take seconds to import (a minute on a loaded host):
    # at start, before the worker shows as ready, not in the first batch's time.
    await anyio.to_thread.run_sync(_known_flows)
    with temporary_settings({PREFECT_WORKER_QUERY_SECONDS: poll_seconds}):
        worker = CloudAgentWorker(work_pool_name=work_pool, name=name, limit=limit, prefetch_seconds=poll_seconds * 2)
        await worker.start()
