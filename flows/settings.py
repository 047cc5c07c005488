"""Settings of the flows (``CLOUD_AGENT_*``), beside the executors' own."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

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
    #: Cycles started in this process that run at once; later alerts wait in line for a slot. A
    #: storm of alerts would otherwise start every cycle together and swamp the Prefect server
    #: (on SQLite it answers 503 until the clients give up) and the machine. With ``event``, the
    #: ``rca-incident/alert`` deployment's ``concurrency_limit`` in prefect.yaml does the same.
    max_concurrent_cycles: int = Field(default=4, ge=1)
    #: A fix runs without a person only when its risk is low and its confidence above this.
    auto_fix_confidence: float = Field(default=0.9, ge=0, le=1)
    #: Hypotheses at or above this confidence get their verification tasks run (the spec's 0.7);
    #: the top hypothesis is always verified.
    verify_threshold: float = Field(default=0.7, ge=0, le=1)
    #: How long a fix waits for a person in the Prefect UI before the cycle gives up on it.
    approval_timeout_seconds: int = Field(default=900, gt=0)
    #: How often a paused run checks for the person's answer.
    approval_poll_seconds: int = Field(default=2, gt=0)
    #: Signs approvals given through the task API, so the fix step knows the approver's name is
    #: the name of a token the gateway checked (``flows.approvals``). Unset: a random key kept in
    #: ``<state_dir>/approval.key``, which every process sharing the state folder reads; the
    #: gateway and a control-pool worker on another machine need the same value here.
    approval_key: SecretStr | None = Field(default=None, repr=False)
    #: ``true`` when the Prefect server (its UI) is reachable only after a login — Prefect's own
    #: ``PREFECT_SERVER_API_AUTH_STRING`` or a reverse proxy — so that a name typed in the
    #: approval form is taken as checked. Otherwise such a name is recorded as typed, unverified.
    prefect_ui_authenticated: bool = False
    #: Where people reach this installation's task API (``cloud-agent serve``): the approval
    #: instructions name it, and ``cloud-agent approve`` calls it.
    url: str = "http://127.0.0.1:8080"
    #: Seconds between applying a fix and checking whether the fault is gone.
    fix_settle_seconds: float = Field(default=3.0, ge=0)
    #: Seconds between the two looks of a verification task that reads counters (Redis INFO stats).
    verify_window_seconds: float = Field(default=5.0, ge=0)
    #: How often ``run_deployment`` checks a dispatched batch.
    dispatch_poll_seconds: float = Field(default=0.25, gt=0)
    #: How often an environment's worker asks its work pool for new runs.
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    #: Where results of runs and parameters of single dispatched tasks travel between hosts
    #: (``s3://bucket/prefix``; see ``flows.result_storage``). Unset: Prefect's local folder, which
    #: is enough on one machine only. Credentials and the endpoint come from each host's
    #: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_ENDPOINT_URL_S3``.
    result_storage: str | None = None

    # The optional LLM analyser (``flows.llm``): off unless a base URL and a model are set.
    #: An OpenAI-compatible API, up to and including its version (``https://api.openai.com/v1``,
    #: ``http://127.0.0.1:8000/v1`` for a local vLLM or llama.cpp server).
    llm_base_url: str | None = None
    llm_model: str | None = None
    #: Sent as ``Authorization: Bearer``; never logged or stored (local servers need none).
    llm_api_key: SecretStr | None = None
    #: One request to the server, at most.
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    #: The whole analyser (both rounds and its verification tasks), at most.
    llm_total_seconds: float = Field(default=180.0, gt=0)
    #: The evidence summary of the prompt, at most (estimated tokens).
    llm_prompt_tokens: int = Field(default=3000, ge=200)
    #: The reply, at most (``max_tokens``).
    llm_reply_tokens: int = Field(default=2000, ge=100)
    #: Verification tasks the model may have run (one round); 0 runs none and skips refinement.
    llm_max_tasks: int = Field(default=5, ge=0, le=20)
    #: How much the model's confidence counts when merged with the ranker's (see ``models.llm``).
    llm_weight: float = Field(default=0.5, ge=0, le=1)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def model_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def outcomes_path(self) -> Path:
        return self.state_dir / "outcomes.sqlite3"

    @property
    def local_prefect_home(self) -> Path:
        """The folder of the installation's own Prefect server (``gateway.local_prefect``)."""
        return self.state_dir / "prefect"

    @property
    def approval_key_path(self) -> Path:
        return self.state_dir / "approval.key"
