"""``execute-batch``: one environment's tasks of one step, run concurrently next to its data.

Deployed once per environment (``execute-batch/<env>`` on the environment's work pool) and called
in-process when there is no server to dispatch to.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from contract import PlannedTask
from flows.runtime import catalog
from flows.tasks import run_executor_task

#: Tasks of one batch running at once; the environment's per-agent limit applies on top.
MAX_CONCURRENT_TASKS = 16


@flow(
    name="execute-batch",
    persist_result=True,
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENT_TASKS),  # type: ignore[arg-type]  # Prefect's own stubs
)
def execute_batch(environment: str, items: list[PlannedTask], actor: str = "flow") -> list[dict[str, Any]]:
    """Run ``items`` in ``environment``; results come back in the order of ``items``."""
    agent_id = default_agent_of(environment)
    futures = []
    for item in items:
        spec = {**item.task, "agent_id": item.task.get("agent_id") or agent_id}
        # Prefect formats a task run name with the task's parameters: braces of a command
        # (awk '{print $1}') must be doubled, or the run fails before the task starts.
        name = item.run_name(environment).replace("{", "{{").replace("}", "}}")
        named = run_executor_task.with_options(task_run_name=name)
        approval = item.approval.model_dump(mode="json") if item.approval is not None else None
        futures.append(
            named.submit(spec, actor, task_id=item.task_id, stream_output=item.stream_output, approval=approval)
        )
    return [future.result() for future in futures]


def default_agent_of(environment: str) -> str:
    """The agent that runs an environment's planned tasks: its first agent, or its own name."""
    env = catalog().environment(environment)
    return env.agents[0] if env.agents else env.name
