"""A small client of the task API, mirroring the spec's ``CloudAgentClient`` (httpx instead of requests).

    with CloudAgentClient("http://cloud-agent:8080", token=TOKEN) as client:
        task = client.execute_shell("agent-prod-001", "df -h")
        print(client.get_task_result(task["id"])["result"]["output"])

Methods return the API's JSON (``{id, status, ..., result}``) like the spec's client; an answer
that is not a task (401, 404, 422, 429, ...) raises ``ApiRequestFailed`` with its ``code``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from executors import CloudAgentError, TaskResult, TaskSpec, TaskStatus

#: Extra time an HTTP call waits beyond the task's own timeout (queueing, dispatch).
HTTP_SLACK_SECONDS = 30.0
_TERMINAL = {status.value for status in TaskStatus if status.is_terminal}


class ApiRequestFailed(CloudAgentError):
    """The API refused or failed a request; ``code`` is the API's error code, ``status`` the HTTP one."""

    code = "api_error"

    def __init__(self, message: str, *, status: int | None = None, code: str = "api_error"):
        super().__init__(message)
        self.status = status
        self.code = code


class CloudAgentClient:
    """The task API from Python.

    Args:
        base_url: e.g. ``http://cloud-agent:8080``.
        token: a bearer token (``None`` for a gateway that admits anonymous callers).
        transport: an httpx transport (tests).
    """

    def __init__(self, base_url: str, token: str | None = None, *, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport, timeout=httpx.Timeout(30.0, connect=10.0)
        )

    # -- the spec's methods ------------------------------------------------------------------

    def execute_shell(
        self, agent_id: str | None, command: str, sync: bool = True, timeout: float = 30
    ) -> dict[str, Any]:
        """Run a shell command on ``agent_id``."""
        return self.run_task(
            {"agent_id": agent_id, "type": "shell", "command": command, "sync": sync, "timeout": timeout}
        )

    def query_elasticsearch(
        self, agent_id: str | None, index: str, query: Mapping[str, Any], sync: bool = True, timeout: float = 60
    ) -> dict[str, Any]:
        """Search ``index`` with a query DSL ``query``."""
        params = {"connection": "default", "operation": "search", "index": index, "query": dict(query)}
        return self.run_task(
            {"agent_id": agent_id, "type": "elasticsearch", "params": params, "sync": sync, "timeout": timeout}
        )

    def query_k8s(
        self, agent_id: str | None, command: str, namespace: str | None = None, sync: bool = True, timeout: float = 60
    ) -> dict[str, Any]:
        """Run a (read-only) kubectl command."""
        params = {"namespace": namespace} if namespace else {}
        return self.run_task(
            {
                "agent_id": agent_id,
                "type": "k8s",
                "command": command,
                "params": params,
                "sync": sync,
                "timeout": timeout,
            }
        )

    def get_task_result(self, task_id: str) -> dict[str, Any]:
        """A task's status and, once it ended, its result."""
        return self._call("GET", f"/api/v1/tasks/{task_id}")

    # -- ours --------------------------------------------------------------------------------

    def run_task(self, task: Mapping[str, Any] | TaskSpec) -> dict[str, Any]:
        """Post any task JSON of the spec."""
        body = task.model_dump(mode="json", exclude_none=True) if isinstance(task, TaskSpec) else dict(task)
        body = {key: value for key, value in body.items() if not (key == "agent_id" and value is None)}
        wait = float(body.get("timeout", 30)) if body.get("sync", True) else 0.0
        return self._call("POST", "/api/v1/tasks", json=body, read_timeout=wait + HTTP_SLACK_SECONDS)

    def query_postgres(
        self, agent_id: str | None, sql: str, connection: str = "default", sync: bool = True, timeout: float = 60
    ) -> dict[str, Any]:
        """Run a read-only SQL query on a PostgreSQL connection."""
        return self.run_task(
            {
                "agent_id": agent_id,
                "type": "postgres",
                "command": sql,
                "params": {"connection": connection},
                "sync": sync,
                "timeout": timeout,
            }
        )

    def execute_mysql(
        self, agent_id: str | None, sql: str, connection: str = "default", sync: bool = True, timeout: float = 60
    ) -> dict[str, Any]:
        """Run SQL on a MySQL/MariaDB connection (writes stop at ``approval_required``)."""
        return self.run_task(
            {
                "agent_id": agent_id,
                "type": "mysql",
                "command": sql,
                "params": {"connection": connection},
                "sync": sync,
                "timeout": timeout,
            }
        )

    def query_api(
        self,
        agent_id: str | None,
        url: str,
        method: str = "GET",
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        sync: bool = True,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Call an HTTP endpoint from the agent."""
        params: dict[str, Any] = {"method": method, "url": url}
        if headers:
            params["headers"] = dict(headers)
        if body is not None:
            params["body"] = body
        return self.run_task({"agent_id": agent_id, "type": "api", "params": params, "sync": sync, "timeout": timeout})

    def approve(self, task_id: str, reason: str = "", sync: bool = True) -> dict[str, Any]:
        """Approve a task waiting in ``approval_required`` (needs an approver's token); it runs."""
        return self._call(
            "POST",
            f"/api/v1/tasks/{task_id}/approve",
            json={"reason": reason, "sync": sync},
            read_timeout=3600.0 if sync else 30.0,
        )

    def reject(self, task_id: str, reason: str = "") -> dict[str, Any]:
        """Refuse a task waiting in ``approval_required``."""
        return self._call("POST", f"/api/v1/tasks/{task_id}/reject", json={"reason": reason})

    def approve_incident(self, flow_run_id: str, reason: str = "") -> dict[str, Any]:
        """Approve the fix an incident (``rca-incident`` flow run) waits on; needs an approver's token."""
        return self._call("POST", f"/api/v1/incidents/{flow_run_id}/approve", json={"reason": reason})

    def reject_incident(self, flow_run_id: str, reason: str = "") -> dict[str, Any]:
        """Reject the fix an incident waits on; needs an approver's token."""
        return self._call("POST", f"/api/v1/incidents/{flow_run_id}/reject", json={"reason": reason})

    def list_tasks(self, **filters: Any) -> dict[str, Any]:
        """The history: ``agent_id``, ``type``, ``status``, ``since``, ``until``, ``limit``, ``offset``."""
        params = {key: value for key, value in filters.items() if value is not None}
        return self._call("GET", "/api/v1/tasks", params=params)

    def wait(self, task_id: str, timeout: float = 300.0, poll_seconds: float = 0.2) -> dict[str, Any]:
        """Poll a task until it ends (or ``timeout`` passes; then its current state)."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get_task_result(task_id)
            if task["status"] in _TERMINAL or time.monotonic() >= deadline:
                return task
            time.sleep(poll_seconds)

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, read_timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        timeout = httpx.Timeout(30.0, connect=10.0, read=read_timeout) if read_timeout else None
        try:
            response = self._http.request(method, path, timeout=timeout or httpx.USE_CLIENT_DEFAULT, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiRequestFailed(f"cannot reach the task API at {self.base_url}: {exc}", code="unreachable") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            found = body.get("error") if isinstance(body, dict) else None
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            message = error.get("message") or response.text[:200] or response.reason_phrase
            raise ApiRequestFailed(
                f"{response.status_code} {message}",
                status=response.status_code,
                code=error.get("code", f"http_{response.status_code}"),
            )
        return body

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudAgentClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def run_through_server(server: str, task: Mapping[str, Any], token: str | None = None) -> TaskResult:
    """Run ``task`` through the task API at ``server`` and wait for its result (``cloud-agent task run --server``).

    An ``approval`` in the task is sent as its reason only: the server records the token's name as
    the approver, and only an approver's token may send one.
    """
    body = dict(task)
    body["sync"] = True
    approval = body.pop("approval", None)
    if isinstance(approval, Mapping):
        body["approval"] = {"reason": str(approval.get("reason", ""))}
    with CloudAgentClient(server, token) as client:
        view = client.run_task(body)
        if view["status"] not in _TERMINAL:
            view = client.wait(view["id"], timeout=float(body.get("timeout", 30)) + HTTP_SLACK_SECONDS)
    if view.get("result") is None:
        raise ApiRequestFailed(f"task {view['id']} is still {view['status']} on {server}", code="not_finished")
    return TaskResult.model_validate(view["result"])
