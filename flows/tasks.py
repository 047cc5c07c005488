"""The Prefect task that runs one executor task. Its run is named after what it does."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from contract import Approval
from flows.output import OutputSink, sink_for
from flows.runtime import engine


@task(name="executor-task", retries=0, persist_result=False)
def run_executor_task(
    task_spec: dict[str, Any],
    actor: str,
    task_id: str | None = None,
    stream_output: bool = False,
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one task through the policy, the executor and the audit log; return its result as JSON.

    A failed, denied or timed-out task is a result, not an exception: the cycle records it and
    goes on. Transient unreachability of a read is retried inside the engine, not by Prefect,
    because only the engine knows whether the task was a read. ``approval`` is the planned task's
    (given by the component that checked who approved), never one inside ``task_spec``.
    """
    on_output = _output_sink(task_id) if stream_output else None
    given = Approval.model_validate(approval) if approval is not None else None
    with engine() as agent:
        result = agent.run(task_spec, actor=actor, task_id=task_id, on_output=on_output, approval=given)
    return result.model_dump(mode="json")


def _output_sink(task_id: str | None) -> OutputSink:
    local = sink_for(task_id)
    if local is not None:
        return local
    logger = get_run_logger()

    def to_run_log(stream: str, line: str) -> None:
        logger.info("%s %s", "|" if stream == "stdout" else "!", line)

    return to_run_log
