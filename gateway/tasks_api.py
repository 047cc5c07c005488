"""``/api/v1/tasks``: run a task, read it, list the history, approve or reject a waiting one."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BeforeValidator

from executors import TaskStatus
from gateway.auth import Principal, Role, require
from gateway.errors import InvalidRequest
from gateway.middleware import TASK_SCOPE_KEY
from gateway.schemas import (
    ApproveRequest,
    ErrorBody,
    HealthView,
    RejectRequest,
    TaskPage,
    TaskRequest,
    TaskView,
)
from gateway.task_service import TaskService
from gateway.task_store import TaskQuery

router = APIRouter(tags=["tasks"])

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or an unknown one."},
    403: {"model": ErrorBody, "description": "The token's role may not do this."},
}
_TASK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request body cannot be parsed."},
    **_AUTH_ERRORS,
    404: {"model": ErrorBody, "description": "Unknown task."},
    413: {"model": ErrorBody, "description": "The request body is too large."},
    422: {"model": ErrorBody, "description": "Invalid request; `fields` names the bad ones."},
}
_RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_TASK_ERRORS,
    404: {"model": ErrorBody, "description": "Unknown agent (or task)."},
    409: {"model": ErrorBody, "description": "The task is not waiting for an approval."},
    429: {"model": ErrorBody, "description": "The agent's queue is full; retry after `Retry-After` seconds."},
    503: {"model": ErrorBody, "description": "Tasks of this environment cannot be dispatched now."},
}

TaskId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    # Pydantic reads a number (``7.2e-299`` too) as a Unix time; the API documents ISO 8601 only.
    if isinstance(value, str) and not _ISO_DATE.match(value.strip()):
        raise ValueError("an ISO 8601 date-time, e.g. 2026-11-25T10:00:00Z")
    return value


def _single_valued(request: Request) -> None:
    """A filter given twice is a mistake (FastAPI would silently keep the last): refuse it."""
    repeated = sorted({key for key in request.query_params if len(request.query_params.getlist(key)) > 1})
    if repeated:
        raise InvalidRequest(
            f"query parameter(s) {', '.join(repeated)} given more than once",
            fields=[{"field": key, "message": "given more than once"} for key in repeated],
        )


IsoTime = Annotated[datetime | None, BeforeValidator(_iso_only)]
#: Lets clients (and schemathesis) follow a created task to its record.
_TASK_LINKS = {
    name: {"operationId": operation, "parameters": {"task_id": "$response.body#/id"}}
    for name, operation in (("GetTask", "get_task"), ("ApproveTask", "approve_task"), ("RejectTask", "reject_task"))
}


async def service(request: Request) -> TaskService:
    """The app's task service, started on the serving loop."""
    task_service: TaskService = request.app.state.service
    await task_service.start()
    return task_service


Service = Annotated[TaskService, Depends(service)]


def _answer(response: Response, view: TaskView) -> TaskView:
    # 200 once the task has ended (however it ended); 202 while it is still pending or running.
    response.status_code = 200 if view.status.is_terminal else 202
    return view


@router.post(
    "/api/v1/tasks",
    response_model=TaskView,
    status_code=200,
    responses={
        **_RUN_ERRORS,
        200: {"description": "The task ended (however it ended).", "links": _TASK_LINKS},
        202: {"model": TaskView, "description": "Accepted; not finished yet.", "links": _TASK_LINKS},
    },
    summary="Run a task",
    operation_id="create_task",
)
async def create_task(
    request: Request,
    response: Response,
    task: Annotated[TaskRequest, Body()],
    principal: Annotated[Principal, Depends(require(Role.OPERATOR))],
    tasks: Service,
) -> TaskView:
    """Run a task: with ``sync: true`` (the default) the answer waits for its result, up to its
    timeout; with ``sync: false`` it returns ``{id, status}`` at once (202)."""
    view = await tasks.submit(task, principal)
    request.scope[TASK_SCOPE_KEY] = view.id
    return _answer(response, view)


@router.get(
    "/api/v1/tasks/{task_id}",
    response_model=TaskView,
    responses=_TASK_ERRORS,
    summary="A task and its result",
    operation_id="get_task",
)
async def get_task(
    task_id: TaskId, principal: Annotated[Principal, Depends(require(Role.VIEWER))], tasks: Service
) -> TaskView:
    """The task's status and, once it has ended, its result."""
    return tasks.get(task_id)


@router.get(
    "/api/v1/tasks",
    response_model=TaskPage,
    responses=_TASK_ERRORS,
    summary="Task history",
    operation_id="list_tasks",
    dependencies=[Depends(_single_valued)],
)
async def list_tasks(
    principal: Annotated[Principal, Depends(require(Role.VIEWER))],
    tasks: Service,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    status: TaskStatus | None = None,
    submitted_by: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[IsoTime, Query(description="Created at or after (ISO 8601).")] = None,
    until: Annotated[IsoTime, Query(description="Created before (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskPage:
    """Tasks newest first, filtered by agent, type, status, submitter and creation time."""
    query = TaskQuery(
        agent_id=agent_id,
        type=type,
        status=status,
        submitted_by=submitted_by,
        since=_aware(since),
        until=_aware(until),
        limit=limit,
        offset=offset,
    )
    return tasks.history(query)


@router.post(
    "/api/v1/tasks/{task_id}/approve",
    response_model=TaskView,
    responses={**_RUN_ERRORS, 202: {"model": TaskView, "description": "Approved; not finished yet."}},
    summary="Approve a waiting task and run it",
    operation_id="approve_task",
)
async def approve_task(
    task_id: TaskId,
    response: Response,
    principal: Annotated[Principal, Depends(require(Role.APPROVER))],
    tasks: Service,
    body: Annotated[ApproveRequest | None, Body()] = None,
) -> TaskView:
    """Run a task that ended ``approval_required``, carrying the approver's approval."""
    return _answer(response, await tasks.approve(task_id, principal, body or ApproveRequest()))


@router.post(
    "/api/v1/tasks/{task_id}/reject",
    response_model=TaskView,
    responses={**_RUN_ERRORS},
    summary="Reject a waiting task",
    operation_id="reject_task",
)
async def reject_task(
    task_id: TaskId,
    principal: Annotated[Principal, Depends(require(Role.APPROVER))],
    tasks: Service,
    body: Annotated[RejectRequest | None, Body()] = None,
) -> TaskView:
    """Refuse a task that ended ``approval_required``: it ends ``denied`` and never runs."""
    return tasks.reject(task_id, principal, body or RejectRequest())


@router.get(
    "/api/v1/agents",
    response_model=dict[str, str],
    responses=_AUTH_ERRORS,
    summary="Agents",
    operation_id="list_agents",
)
async def list_agents(principal: Annotated[Principal, Depends(require(Role.VIEWER))], tasks: Service) -> dict[str, str]:
    """``{agent id: environment}`` for every agent tasks may name."""
    return tasks.catalog.agents()


@router.get("/healthz", response_model=HealthView, tags=["health"], summary="Liveness", operation_id="health")
async def health(tasks: Service) -> HealthView:
    """The gateway is up, and how it dispatches tasks."""
    return HealthView(dispatch=tasks.dispatcher.name, run_as=tasks.settings.gateway_run_as or "engine")


def _aware(value: datetime | None) -> datetime | None:
    # A time without a zone is taken as UTC, like the stored times.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
