"""The Prefect task that runs one executor task. Its run is named after what it does."""

from __future__ import annotations

from typing import Any

from prefect import task

from flows._runtime import cloud_agent


@task(name="executor-task", retries=0, persist_result=False)
def run_executor_task(task_spec: dict[str, Any], actor: str) -> dict[str, Any]:
    """Run one task through the policy, the executor and the audit log; return its result as JSON.

    A failed, denied or timed-out task is a result, not an exception: the cycle records it and
    goes on. Transient unreachability of a read is retried inside the engine, not by Prefect,
    because only the engine knows whether the task was a read.
    """
    result = cloud_agent().run(task_spec, actor=actor)
    return result.model_dump(mode="json")
