"""``POST /api/v1/alerts``: Alertmanager's webhook. One cycle per alert group while it runs.

The body is the webhook as Alertmanager sends it (version 4); configure the receiver with an
operator token (see ``deployments/examples/alertmanager.yml``). A group whose cycle is already
running is answered ``duplicate`` with that run's id; a resolved group is acknowledged and
ignored. Otherwise the cycle starts the way ``CLOUD_AGENT_CYCLE_START`` says: by the Prefect event
that the ``rca-incident/alert`` deployment's trigger matches, or in this process. In this process
without a Prefect API configured, the first alert starts the local Prefect server
(``gateway.local_prefect``) and its cycle waits for it; the webhook answers at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from flows.alerts import AlertGroup, InvalidAlert, parse_alert_group
from flows.prefect_internals import use_api
from flows.runtime import settings as flow_settings
from gateway.auth import Principal, Role, require
from gateway.errors import GatewayError, InvalidRequest
from gateway.local_prefect import LocalPrefectServer, LocalPrefectUnavailable
from gateway.schemas import ErrorBody

router = APIRouter(tags=["alerts"])


class AlertAccepted(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
    group: str
    #: How the cycle starts: ``event`` (Prefect event, deployment trigger) or ``in-process``.
    started_by: str | None = None
    event_id: str | None = None
    flow_run_id: str | None = None
    reason: str = ""


class CycleUnavailable(GatewayError):
    status = 503
    code = "cycle_unavailable"


def _webhook_schema() -> dict[str, Any]:
    """The body the webhook takes, for the OpenAPI document (the handler parses it itself, to answer
    "not an Alertmanager v4 webhook" with the reasons). Self-contained: ``Alert`` is inlined, and
    strings say they hold no NUL byte, which the model refuses in a validator pydantic cannot describe.
    """
    schema = AlertGroup.model_json_schema()
    definitions = schema.pop("$defs", {})

    def document(node: Any) -> Any:
        if isinstance(node, list):
            return [document(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return document(definitions[node["$ref"].rsplit("/", 1)[-1]])
        node = {key: document(value) for key, value in node.items()}
        if node.get("type") == "string" and "format" not in node and "enum" not in node and "const" not in node:
            node["pattern"] = "^[^\\x00]*$"
        if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
            node["propertyNames"] = {"pattern": "^[^\\x00]*$"}
        return node

    documented: dict[str, Any] = document(schema)
    return documented


@router.post(
    "/api/v1/alerts",
    status_code=202,
    response_model=AlertAccepted,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _webhook_schema()}}}},
    responses={
        400: {"model": ErrorBody, "description": "The body cannot be read as JSON."},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        413: {"model": ErrorBody, "description": "The body is too large."},
        422: {"model": ErrorBody, "description": "Not an Alertmanager v4 webhook."},
        503: {"model": ErrorBody, "description": "Prefect cannot be reached to start the cycle."},
    },
    summary="Receive an Alertmanager webhook and start one diagnosis cycle per alert group",
)
async def receive_alerts(
    request: Request,
    payload: Annotated[dict[str, Any], Body(description="Alertmanager webhook, version 4")],
    principal: Annotated[Principal, Depends(require(Role.OPERATOR))],
) -> AlertAccepted:
    try:
        group = parse_alert_group(payload)
    except InvalidAlert as exc:
        raise InvalidRequest(str(exc)) from exc
    if group.status == "resolved" or not group.firing:
        return AlertAccepted(status="ignored", group=group.group_id, reason="the group is resolved")
    local: LocalPrefectServer | None = request.app.state.local_prefect
    if local is not None:
        if flow_settings().cycle_start == "event":
            raise CycleUnavailable(
                "CLOUD_AGENT_CYCLE_START=event needs a Prefect server with the rca-incident/alert deployment: "
                "set PREFECT_API_URL (or CLOUD_AGENT_CYCLE_START=in-process to run the cycle here)"
            )
        if not local.started:
            try:
                # On the event loop's thread, which lives as long as the server should (the
                # server gets the parent-death signal when that thread ends); returns at once.
                use_api(local.start())
            except (OSError, LocalPrefectUnavailable) as exc:
                raise CycleUnavailable(f"cannot start the local Prefect server: {exc}") from exc
        if local.failure is not None:
            raise CycleUnavailable(f"cannot start the cycle: {local.failure}")
    try:
        return await run_in_threadpool(_start, group, local)
    except GatewayError:
        raise
    except Exception as exc:  # Prefect unreachable, events disabled: say so, do not 500
        raise CycleUnavailable(f"cannot start the cycle: {type(exc).__name__}: {exc}") from exc


def _start(group: Any, local: LocalPrefectServer | None) -> AlertAccepted:
    from flows import intake, runs

    mode = flow_settings().cycle_start
    if intake.starting_here(group):
        return AlertAccepted(status="duplicate", group=group.group_id, reason="a cycle for this group is starting")
    if local is not None and not local.ready:
        # The server is still starting: the cycle waits for it in its own thread. A twin from
        # another process is caught by the run itself (flows.cycle checks its group when it starts).
        intake.start_in_process(group, before=lambda: local.wait_ready(local.startup_seconds))
        return AlertAccepted(
            status="accepted",
            group=group.group_id,
            started_by="in-process",
            reason=f"the cycle starts once the local Prefect server answers ({local.ui_url})",
        )
    active = runs.active_runs(group.group_tag)
    if active:
        return AlertAccepted(
            status="duplicate",
            group=group.group_id,
            flow_run_id=str(active[0].id),
            reason="a cycle for this group is already in progress",
        )
    if mode == "event":
        return AlertAccepted(
            status="accepted", group=group.group_id, started_by="event", event_id=intake.emit_alert(group)
        )
    intake.start_in_process(group)
    return AlertAccepted(status="accepted", group=group.group_id, started_by="in-process")
