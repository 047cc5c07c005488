"""The REST side of the task API: sync and async tasks, history, errors, records across restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from executors import AuditEvent, AuditQuery, TaskStatus, open_audit_log
from gateway.app import create_app, serving
from gateway.schemas import ErrorBody, TaskPage, TaskView
from gateway.settings import GatewaySettings
from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import OPERATOR, TOKENS, VIEWER

pytestmark = pytest.mark.integration


def test_a_sync_task_answers_with_its_result(gateway: Gateway) -> None:
    with gateway.http(OPERATOR) as http:
        response = http.post("/api/v1/tasks", json={"type": "shell", "command": "echo hello", "timeout": 10})
    assert response.status_code == 200
    view = TaskView.model_validate(response.json())
    assert view.status is TaskStatus.SUCCEEDED
    assert view.result is not None and view.result.output == "hello\n"
    assert (view.agent_id, view.environment, view.submitted_by) == ("local", "local", "ops")
    assert view.result.id == view.id


def test_an_async_task_answers_at_once_and_is_read_later(gateway: Gateway) -> None:
    with gateway.http(OPERATOR) as http:
        started = time.monotonic()
        response = http.post("/api/v1/tasks", json={"type": "shell", "command": "sleep 0.5; echo done", "sync": False})
        assert time.monotonic() - started < 0.4
        assert response.status_code == 202
        body = response.json()
        assert body["status"] in ("pending", "running") and body["id"].startswith("task-")
    with gateway.client() as client:
        final = client.wait(body["id"], timeout=10, poll_seconds=0.05)
    assert final["status"] == "succeeded" and final["result"]["output"] == "done\n"


def test_history_filters_by_agent_type_status_and_time_and_pages(gateway: Gateway) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    with gateway.http(OPERATOR) as http:
        for command in ("echo 1", "echo 2", "exit 3"):
            assert http.post("/api/v1/tasks", json={"type": "shell", "command": command}).status_code == 200
        assert (
            http.post(
                "/api/v1/tasks", json={"agent_id": "agent-staging-001", "type": "redis", "command": "PING"}
            ).status_code
            == 200
        )
    with gateway.http(VIEWER) as http:

        def page(**params: object) -> TaskPage:
            response = http.get("/api/v1/tasks", params={k: str(v) for k, v in params.items()})
            assert response.status_code == 200, response.text
            return TaskPage.model_validate(response.json())

        everything = page()
        assert everything.total == 4
        assert [item.type for item in everything.items] == ["redis", "shell", "shell", "shell"]  # newest first
        assert page(agent_id="agent-staging-001").total == 1
        assert page(type="shell").total == 3
        assert page(status="failed").items[0].exit_code == 3
        assert page(type="shell", status="succeeded").total == 2
        assert page(since=before.isoformat()).total == 4
        assert page(until=before.isoformat()).total == 0
        first, second = page(limit=2, offset=0), page(limit=2, offset=2)
        assert first.total == second.total == 4
        assert {i.id for i in first.items}.isdisjoint({i.id for i in second.items})
        assert page(submitted_by="ops").total == 4


@pytest.mark.parametrize(
    ("token", "method", "path", "body", "status", "code"),
    [
        (None, "post", "/api/v1/tasks", {"type": "shell", "command": "id"}, 401, "unauthenticated"),
        ("not-a-token", "get", "/api/v1/tasks", None, 401, "unauthenticated"),
        (VIEWER, "post", "/api/v1/tasks", {"type": "shell", "command": "id"}, 403, "forbidden"),
        (OPERATOR, "post", "/api/v1/tasks", {"agent_id": "agent-nowhere", "type": "shell"}, 404, "unknown_agent"),
        (VIEWER, "get", "/api/v1/tasks/task-0000000000000000", None, 404, "task_not_found"),
        (OPERATOR, "post", "/api/v1/tasks", {"type": "shell", "command": "id", "timeout": -1}, 422, "invalid_task"),
        (OPERATOR, "post", "/api/v1/tasks", {"type": "telnet", "command": "x"}, 422, "invalid_task"),
        (OPERATOR, "post", "/api/v1/tasks", {"type": "shell", "colour": "red"}, 422, "invalid_task"),
        (OPERATOR, "post", "/api/v1/tasks", {"command": "id"}, 422, "invalid_task"),
        (OPERATOR, "post", "/api/v1/tasks", [1, 2], 422, "invalid_task"),
        (VIEWER, "get", "/api/v1/tasks?limit=0", None, 422, "invalid_request"),
        (VIEWER, "get", "/api/v1/tasks?status=great", None, 422, "invalid_request"),
        (VIEWER, "delete", "/api/v1/tasks", None, 405, "method_not_allowed"),
        (VIEWER, "get", "/api/v2/nothing", None, 404, "not_found"),
    ],
)
def test_bad_requests_get_specific_json_errors(
    gateway: Gateway, token: str | None, method: str, path: str, body: object, status: int, code: str
) -> None:
    with gateway.http(token) as http:
        response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    error = ErrorBody.model_validate(response.json()).error
    assert error.code == code and error.message
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_invalid_task_names_the_bad_field(gateway: Gateway) -> None:
    with gateway.http(OPERATOR) as http:
        error = http.post("/api/v1/tasks", json={"type": "shell", "timeout": "soon"}).json()["error"]
        unparsable = http.post("/api/v1/tasks", content=b"{not json", headers={"content-type": "application/json"})
    assert error["fields"][0]["field"] == "timeout" and "timeout" in error["message"]
    assert unparsable.status_code == 422


def test_a_body_over_the_limit_is_refused_with_413(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(max_body_bytes=2048)
    with gateway.http(OPERATOR) as http:
        declared = http.post("/api/v1/tasks", json={"type": "shell", "command": "x" * 4096})

        def chunks() -> object:
            yield b'{"type": "shell", "command": "'
            for _ in range(8):
                yield b"x" * 512
            yield b'"}'

        streamed = http.post("/api/v1/tasks", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"


def test_task_records_survive_a_restart(gateway_factory: GatewayFactory) -> None:
    first = gateway_factory()
    with first.client() as client:
        done = client.execute_shell(None, "echo kept")
    second = gateway_factory()  # a second app on the same state folder
    with second.client(VIEWER) as client:
        again = client.get_task_result(done["id"])
        history = client.list_tasks()
    assert again["status"] == "succeeded" and again["result"]["output"] == "kept\n"
    assert history["total"] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tasks_of_a_killed_gateway_are_crashed_or_not_run_at_the_next_start(config_dir: Path, state_dir: Path) -> None:
    """``cloud-agent serve`` killed with SIGKILL mid-task: the next start settles its records."""
    port = _free_port()
    environment = {
        **os.environ,
        "CLOUD_AGENT_TOKENS": TOKENS,
        "CLOUD_AGENT_GATEWAY_RUN_AS": "engine",
        "CLOUD_AGENT_CONFIG_DIR": str(config_dir),
        "CLOUD_AGENT_STATE_DIR": str(state_dir),
    }
    cli = Path(sys.executable).parent / "cloud-agent"
    server = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "cloud-agent serve did not start"
                time.sleep(0.1)
            # The local agent runs 4 at once: four run, the fifth waits.
            ids = [
                http.post("/api/v1/tasks", json={"type": "shell", "command": "sleep 3", "sync": False}).json()["id"]
                for _ in range(5)
            ]
            # "running" in the task store comes before the engine's policy check and its audited
            # "started": wait for the audit log, the record the restart trusts.
            audit = open_audit_log(f"sqlite:///{state_dir / 'audit.sqlite3'}")
            try:
                started = AuditEvent.STARTED.value
                while not all(audit.query(AuditQuery(task_id=task_id, event=started, limit=1)) for task_id in ids[:4]):
                    assert time.monotonic() < deadline + 30, "the first four tasks did not start"
                    time.sleep(0.05)
            finally:
                audit.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()

    restarted = create_app(GatewaySettings(gateway_run_as="engine", tokens=TOKENS))
    with serving(restarted) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {VIEWER}"}) as http:
        views = [TaskView.model_validate(http.get(f"/api/v1/tasks/{task_id}").json()) for task_id in ids]
    assert [view.status for view in views] == [TaskStatus.CRASHED] * 4 + [TaskStatus.FAILED]
    assert all(view.error and view.error["code"] == "gateway_restarted" for view in views)
    assert "did not run" in views[4].error["message"]  # type: ignore[index]


def test_a_graceful_stop_does_not_leave_tasks_running(config_dir: Path, state_dir: Path) -> None:
    settings = GatewaySettings(gateway_run_as="engine", tokens=TOKENS, shutdown_grace_seconds=0)
    operator, viewer = {"Authorization": f"Bearer {OPERATOR}"}, {"Authorization": f"Bearer {VIEWER}"}
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, headers=operator) as http:
        task_id = http.post("/api/v1/tasks", json={"type": "shell", "command": "sleep 2", "sync": False}).json()["id"]
        deadline = time.monotonic() + 10
        while http.get(f"/api/v1/tasks/{task_id}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.02)
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, headers=viewer) as http:
        view = http.get(f"/api/v1/tasks/{task_id}").json()
    assert view["status"] == "crashed" and view["error"]["code"] == "gateway_stopped"


def test_openapi_is_served(gateway: Gateway) -> None:
    with gateway.http() as http:
        docs = http.get("/docs")
        spec = http.get("/openapi.json").json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {"/api/v1/tasks", "/api/v1/tasks/{task_id}", "/api/v1/tasks/{task_id}/approve"} <= set(spec["paths"])
    task_type = spec["components"]["schemas"]["TaskRequest"]["properties"]["type"]
    assert {"shell", "postgres", "mysql", "redis", "api"} <= set(task_type["enum"])


def test_history_filters_are_iso_times_and_given_once(gateway: Gateway) -> None:
    with gateway.http(VIEWER) as http:
        numeric = http.get("/api/v1/tasks", params={"until": "7.237554272455119e-299"})
        twice = http.get("/api/v1/tasks", params=[("submitted_by", "a"), ("submitted_by", "b")])
        fine = http.get("/api/v1/tasks", params={"since": "2026-11-25T10:00:00Z", "submitted_by": "a"})
    assert numeric.status_code == 422 and "ISO 8601" in numeric.json()["error"]["message"]
    assert twice.status_code == 422 and "submitted_by" in twice.json()["error"]["message"]
    assert fine.status_code == 200
