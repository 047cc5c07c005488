"""Settings of the flows (``CLOUD_AGENT_*``), beside the executors' own."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from executors import AgentSettings


class FlowSettings(AgentSettings):
    #: ``in-process``: every environment's batches run in this process (the embedded default).
    #: ``work-pool``: each environment's batches run as ``execute-batch/<env>`` deployments on the
    #: environment's work pool, picked up by ``cloud-agent worker --env <env>`` next to the data.
    dispatch: Literal["in-process", "work-pool"] = "in-process"
    #: How an alert starts its cycle. ``event``: the gateway emits ``cloud-agent.alert.firing`` and
    #: the ``rca-incident/alert`` deployment's trigger starts a run on the control pool (needs a
    #: Prefect server, ``prefect deploy --all`` and a worker). ``in-process``: the gateway runs the
    #: cycle itself (one machine, no deployment).
    cycle_start: Literal["event", "in-process"] = "in-process"
    #: A fix runs without a person only when its risk is low and its confidence above this.
    auto_fix_confidence: float = Field(default=0.9, ge=0, le=1)
    #: Hypotheses at or above this confidence get their verification tasks run (the spec's 0.7);
    #: the top hypothesis is always verified.
    verify_threshold: float = Field(default=0.7, ge=0, le=1)
    #: How long a fix waits for a person in the Prefect UI before the cycle gives up on it.
    approval_timeout_seconds: int = Field(default=900, gt=0)
    #: How often a paused run checks for the person's answer.
    approval_poll_seconds: int = Field(default=2, gt=0)
    #: Seconds between applying a fix and checking whether the fault is gone.
    fix_settle_seconds: float = Field(default=3.0, ge=0)
    #: How often ``run_deployment`` checks a dispatched batch.
    dispatch_poll_seconds: float = Field(default=0.25, gt=0)
    #: How often an environment's worker asks its work pool for new runs.
    worker_poll_seconds: float = Field(default=1.0, gt=0)

    @property
    def model_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def outcomes_path(self) -> Path:
        return self.state_dir / "outcomes.sqlite3"
