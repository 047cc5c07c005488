"""``/api/v1/incidents/{flow_run_id}/approve`` and ``/reject``: answer a fix that waits for a person.

An incident is an ``rca-incident`` flow run; its fix step pauses for approval. Answering here
resumes the run with the pause's run input filled in by the gateway: the approver is the name of
the approver's token that sent the request, and the answer is signed (``flows.approvals``), so the
fix step records that name as checked — unlike a name typed in the Prefect UI's form. Only an
``approver`` may answer. Every request leaves its ``api_request`` audit record naming the token and
the run; an approved fix's tasks then carry the approval in their own records.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Principal, Role, require
from gateway.errors import IncidentNotFound, NotAwaitingApproval, PrefectUnavailable
from gateway.local_prefect import LocalPrefectServer, LocalPrefectUnavailable
from gateway.middleware import TASK_SCOPE_KEY
from gateway.schemas import ErrorBody

router = APIRouter(tags=["incidents"])

#: How long an answer waits for a local Prefect server that is still starting.
_LOCAL_SERVER_WAIT_SECONDS = 30.0

FlowRunId = Annotated[
    UUID, Path(description="The incident's flow run id (printed by the cycle, shown in the Prefect UI).")
]


class IncidentDecisionRequest(BaseModel):
    """Why the fix is approved or rejected (recorded with the decision)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class IncidentDecision(BaseModel):
    """The answer given: the run resumes and its fix step records it."""

    flow_run_id: str
    decision: Literal["approved", "rejected"]
    #: The approver's token name, recorded as the approver (verified).
    decided_by: str
    #: The pause that was answered (``fix-<action>``).
    pause: str
    flow_run_url: str | None = None


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request body cannot be read as JSON."},
    401: {"model": ErrorBody, "description": "No token, or an unknown one."},
    403: {"model": ErrorBody, "description": "Only an approver's token may answer."},
    404: {"model": ErrorBody, "description": "No incident flow run by that id."},
    409: {"model": ErrorBody, "description": "The incident is not waiting for an approval."},
    413: {"model": ErrorBody, "description": "The request body is too large."},
    422: {"model": ErrorBody, "description": "Invalid request; `fields` names the bad ones."},
    503: {"model": ErrorBody, "description": "The Prefect API that holds the incident cannot be reached."},
}


@router.post(
    "/api/v1/incidents/{flow_run_id}/approve",
    response_model=IncidentDecision,
    responses=_RESPONSES,
    summary="Approve the fix an incident waits on",
    operation_id="approve_incident",
)
async def approve_incident(
    request: Request,
    flow_run_id: FlowRunId,
    principal: Annotated[Principal, Depends(require(Role.APPROVER))],
    body: Annotated[IncidentDecisionRequest | None, Body()] = None,
) -> IncidentDecision:
    """Let the paused fix run, as approved by this token's name (verified in the report and audit)."""
    return await _answer(request, flow_run_id, principal, approve=True, body=body)


@router.post(
    "/api/v1/incidents/{flow_run_id}/reject",
    response_model=IncidentDecision,
    responses=_RESPONSES,
    summary="Reject the fix an incident waits on",
    operation_id="reject_incident",
)
async def reject_incident(
    request: Request,
    flow_run_id: FlowRunId,
    principal: Annotated[Principal, Depends(require(Role.APPROVER))],
    body: Annotated[IncidentDecisionRequest | None, Body()] = None,
) -> IncidentDecision:
    """Refuse the paused fix: the cycle goes on without it, rejected by this token's name."""
    return await _answer(request, flow_run_id, principal, approve=False, body=body)


async def _answer(
    request: Request, flow_run_id: UUID, principal: Principal, *, approve: bool, body: IncidentDecisionRequest | None
) -> IncidentDecision:
    request.scope[TASK_SCOPE_KEY] = str(flow_run_id)  # the audit record names the run
    local: LocalPrefectServer | None = request.app.state.local_prefect
    reason = (body or IncidentDecisionRequest()).reason
    return await run_in_threadpool(answer_fix, flow_run_id, principal, approve, reason, local)


def answer_fix(
    flow_run_id: UUID, principal: Principal, approve: bool, reason: str, local: LocalPrefectServer | None = None
) -> IncidentDecision:
    """Resume an incident's paused fix with ``principal``'s signed answer (the service function)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.alerts import INCIDENT_FLOW
    from flows.approvals import signed_decision

    api: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if local is not None:
        try:
            if local.started:
                local.wait_ready(_LOCAL_SERVER_WAIT_SECONDS)
            else:
                # `cloud-agent incident` may run the installation's local server while this
                # gateway has started none: answer on that one, for this request only.
                elsewhere = local.running_elsewhere()
                if elsewhere is None:
                    raise IncidentNotFound(
                        f"no incident {flow_run_id}: no Prefect server is configured (PREFECT_API_URL) and no "
                        "alert or cloud-agent incident has started the local one"
                    )
                api = temporary_settings({PREFECT_API_URL: elsewhere})
        except LocalPrefectUnavailable as exc:
            raise PrefectUnavailable(str(exc)) from exc
    comment = reason or ("approved through the task API" if approve else "rejected through the task API")
    try:
        with api, get_client(sync_client=True) as client:
            try:
                run = client.read_flow_run(flow_run_id)
            except ObjectNotFound:
                raise IncidentNotFound(f"no incident {flow_run_id}: Prefect has no flow run by that id") from None
            flow = client.read_flow(run.flow_id)
            if flow.name != INCIDENT_FLOW:
                raise IncidentNotFound(f"flow run {flow_run_id} is a {flow.name} run, not an incident")
            state = run.state
            keyset = state.state_details.run_input_keyset if state is not None else None
            if state is None or not state.is_paused() or not keyset:
                where = state.name if state is not None else "without a state"
                raise NotAwaitingApproval(f"incident {flow_run_id} is {where}, not waiting for an approval")
            pause = state.state_details.pause_key or ""
            run_input = signed_decision(
                str(flow_run_id), pause, approve=approve, approver=principal.name, comment=comment
            )
            answer = client.resume_flow_run(flow_run_id, run_input=run_input)
            ui_url = _ui_url(flow_run_id)
    except (IncidentNotFound, NotAwaitingApproval):
        raise
    except Exception as exc:
        raise PrefectUnavailable(f"the Prefect API cannot be reached: {type(exc).__name__}: {exc}") from exc
    if answer.status != SetStateStatus.ACCEPT:
        why = getattr(answer.details, "reason", None) or answer.status.value
        if answer.state is not None and answer.state.is_failed():
            why = "the approval's time ran out"
        raise NotAwaitingApproval(f"incident {flow_run_id} cannot take the answer: {why}")
    return IncidentDecision(
        flow_run_id=str(flow_run_id),
        decision="approved" if approve else "rejected",
        decided_by=principal.name,
        pause=pause,
        flow_run_url=ui_url,
    )


def _ui_url(flow_run_id: UUID) -> str | None:
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return f"{str(ui).rstrip('/')}/runs/flow-run/{flow_run_id}" if ui else None
