"""What to run next: collection and verification tasks as plans, before anything runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from contract._task import Approval

Purpose = Literal["metrics", "logs", "traces", "db", "cache", "health", "k8s", "host", "verification", "fix", "adhoc"]


class PlannedTask(BaseModel):
    """One executor task in a plan, with what it is for.

    ``task`` is the spec's task JSON (``{"type", "command", "params", "timeout"}``); the flow adds
    the ``agent_id`` of the environment it runs in. ``label`` names the run in the Prefect UI
    (``postgres: pg_stat_activity@prod``).
    """

    label: str = Field(min_length=1, max_length=80)
    purpose: Purpose = "adhoc"
    service: str | None = None
    #: For a metrics query that names one metric (PromQL): the ``<metric>`` of the
    #: ``<service>_<metric>`` column its rows become. Kept beside the task, not in its params:
    #: the executor refuses parameters it does not know.
    metric: str | None = None
    task: dict[str, Any]
    #: Set when the caller already named the task (the task API): results and audit use it.
    task_id: str | None = None
    #: Send each output line as it is produced to the task's log stream (the task API's
    #: WebSocket subscribers; Prefect task-run logs when the task runs on a remote worker).
    stream_output: bool = False
    #: Who allowed this task to change something, given by the component that checked them (the
    #: task API's token, the fix step's decision). Beside the task, never in it: an ``approval``
    #: inside task data is ignored by the engine, whoever wrote it.
    approval: Approval | None = None

    def run_name(self, environment: str) -> str:
        return f"{self.task.get('type', 'task')}: {self.label}@{environment}"
