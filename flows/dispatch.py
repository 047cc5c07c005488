"""Sending a step's tasks to the environments they belong to, and waiting for the results.

In-process (the embedded default) a batch is a subflow of the calling flow. With
``CLOUD_AGENT_DISPATCH=work-pool`` it is a run of the ``execute-batch/<env>`` deployment, which the
environment's worker picks up from the environment's work pool; environments run in parallel.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from contract import PlannedTask
from flows.batch import execute_batch
from flows.prefect_internals import without_flow_heartbeats
from flows.result_storage import ensure_shared_storage, read_result
from flows.runtime import settings

BATCH_DEPLOYMENT = "execute-batch/{environment}"
#: Extra time a dispatched batch may take beyond its slowest task (queueing, worker pick-up).
DISPATCH_SLACK_SECONDS = 60.0
#: What a batch that completed on its worker but whose results cannot be read here most likely means.
SHARED_STORAGE_HINT = (
    "the control side and the workers need a shared result storage: the same CLOUD_AGENT_RESULT_STORAGE on every "
    "host (see README, Running it for real)"
)


def run_batches(batches: Mapping[str, list[PlannedTask]], *, step: str, actor: str) -> dict[str, list[dict[str, Any]]]:
    """Run each environment's batch where it belongs; ``{environment: results in item order}``."""
    batches = {env: items for env, items in batches.items() if items}
    if not batches:
        return {}
    if len(batches) == 1:
        ((environment, items),) = batches.items()
        return {environment: _run_one(environment, items, step, actor)}
    # Each thread runs in a copy of this context: its batch attaches to this flow run as a subflow
    # and talks to the same Prefect API (settings may live only in the context).
    with ThreadPoolExecutor(max_workers=len(batches), thread_name_prefix="dispatch") as pool:
        futures = {
            env: pool.submit(contextvars.copy_context().run, _run_one, env, items, step, actor)
            for env, items in batches.items()
        }
        return {env: future.result() for env, future in futures.items()}


def _run_one(environment: str, items: list[PlannedTask], step: str, actor: str) -> list[dict[str, Any]]:
    current = settings()
    run_name = f"{step}@{environment}"
    if current.dispatch == "in-process":
        with without_flow_heartbeats():
            return execute_batch.with_options(flow_run_name=run_name)(environment, items, actor)
    # The worker's results come back through the shared store, if one is configured: set up once
    # per process (and the store's serializer known here) before anything is read from it.
    ensure_shared_storage()
    slowest = max(float(item.task.get("timeout", 30)) for item in items)
    flow_run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync here: a coroutine only in async callers
        BATCH_DEPLOYMENT.format(environment=environment),
        parameters={"environment": environment, "items": [item.model_dump() for item in items], "actor": actor},
        flow_run_name=run_name,
        timeout=slowest + DISPATCH_SLACK_SECONDS,
        poll_interval=current.dispatch_poll_seconds,
        tags=[f"environment:{environment}", f"step:{step}"],
    )
    state = flow_run.state
    if state is not None and state.is_completed():
        try:
            results: list[dict[str, Any]] = read_result(state)
        except Exception as exc:  # written where this host cannot read it: no shared store
            reason = (
                f"the {step} batch for {environment} completed on its worker (flow run {flow_run.id}) but its "
                f"results cannot be read here ({type(exc).__name__}: {exc}); {SHARED_STORAGE_HINT}"
            )
            return [_undelivered(item, environment, reason, code="result_unavailable") for item in items]
        return results
    name = state.name if state else "unknown"
    reason = f"the {step} batch for {environment} ended {name} (flow run {flow_run.id})"
    if state is not None and not state.is_final():
        reason += "; is a worker running for this environment? (cloud-agent worker --env " + environment + ")"
    return [_undelivered(item, environment, reason) for item in items]


def _undelivered(item: PlannedTask, environment: str, reason: str, code: str = "dispatch_failed") -> dict[str, Any]:
    """A task that never got a result because its batch did not complete: recorded, not raised."""
    return {
        "id": None,
        "type": item.task.get("type", "unknown"),
        "environment": environment,
        "status": "crashed",
        "error": {"code": code, "message": reason},
        "invocation": item.run_name(environment),
        "notes": [],
        "truncated": False,
    }
