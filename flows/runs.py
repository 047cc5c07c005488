"""The unfinished flow runs the Prefect API knows: of one alert group (one cycle per group at a
time), or all of them when the process that ran them is gone."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Crashed

log = logging.getLogger("cloud_agent.intake")

ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]


def active_runs(group_tag: str, *, exclude: Any = None) -> list[FlowRun]:
    """Flow runs of this alert group that are not finished, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[group_tag]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATES)),
            ),
            limit=20,
        )
    runs = [run for run in runs if run.id != exclude]
    return sorted(runs, key=lambda run: run.created or run.expected_start_time or 0)


def settle_orphaned_runs(api_url: str | None = None) -> list[str]:
    """Mark every unfinished flow run of the Prefect API at ``api_url`` (default: this process's)
    ``Crashed``; their ids.

    For a Prefect server whose runs all belonged to a process that is gone: the installation's own
    local server when it starts again (``gateway.local_prefect``). Its cycles ran in the process
    that stopped, and a run left ``Running`` or ``Paused`` would hold its alert group (later alerts
    answered ``duplicate``) and wait for an approval nobody can give any more.
    """
    api = temporary_settings({PREFECT_API_URL: api_url}) if api_url else contextlib.nullcontext()
    with api, get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATES))),
            limit=200,
        )
        for run in runs:
            message = "the process that ran this flow run in its own stopped before the run ended"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    if runs:
        log.warning("settled %d flow runs left unfinished by a stopped process", len(runs))
    return [str(run.id) for run in runs]
