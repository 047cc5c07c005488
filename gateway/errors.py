"""The task API's errors, each with its HTTP status and a stable ``code``.

    GatewayError
    ├── Unauthenticated        401  no token, or a token we do not know
    ├── Forbidden              403  the token's role may not do this
    ├── TaskNotFound           404
    ├── AgentNotFound          404  an ``agent_id`` no environment declares
    ├── IncidentNotFound       404  no incident (``rca-incident`` flow run) by that id
    ├── NotAwaitingApproval    409  approve/reject of a task or an incident that is not waiting for it
    ├── PayloadTooLarge        413
    ├── InvalidRequest         422  names the field
    ├── QueueFull              429  the agent's queue is full; retry after a while
    ├── DispatchUnavailable    503  no way to run the task (Prefect unreachable, no deployment)
    └── PrefectUnavailable     503  the Prefect API that holds the incidents cannot be reached

Every error leaves the API as ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of the errors the API answers with on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, fields: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    @property
    def headers(self) -> dict[str, str]:
        return {}


class Unauthenticated(GatewayError):
    status = 401
    code = "unauthenticated"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="cloud-agent"'}


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class TaskNotFound(GatewayError):
    status = 404
    code = "task_not_found"


class AgentNotFound(GatewayError):
    status = 404
    code = "unknown_agent"


class IncidentNotFound(GatewayError):
    status = 404
    code = "incident_not_found"


class NotAwaitingApproval(GatewayError):
    status = 409
    code = "not_awaiting_approval"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"


class InvalidRequest(GatewayError):
    status = 422
    code = "invalid_task"


class QueueFull(GatewayError):
    status = 429
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DispatchUnavailable(GatewayError):
    status = 503
    code = "dispatch_unavailable"


class PrefectUnavailable(GatewayError):
    status = 503
    code = "prefect_unavailable"


def field_problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{"field": "params.index", "message": ...}]``, dropping the ``body`` prefix."""
    problems = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in ("body", "query", "path", "header"):
            location = location[1:]
        problems.append({"field": ".".join(location) or "body", "message": str(error.get("msg", "invalid"))})
    return problems


def describe_problems(problems: list[dict[str, str]]) -> str:
    """``field: message; field: message`` — one line naming every bad field."""
    return "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
