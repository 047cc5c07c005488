"""The api executor against a real HTTP server started on a free local port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from executors import Approval, AuditQuery, CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from tests.environments import LOCAL_CONNECTIONS, write_environment

pytestmark = pytest.mark.integration

APPROVED = {"approved_by": "test-approver"}
BIG_BODY_BYTES = 2 * 1024 * 1024


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    url: str
    received: list[Received] = field(default_factory=list)

    def last(self, path: str) -> Received:
        return [request for request in self.received if request.path.startswith(path)][-1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any, **headers: str) -> None:
        self._reply(status, json.dumps(value).encode(), **headers)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._json(200, {"status": "ok", "checks": {"db": "up"}})
        elif path == "/echo":
            self._json(200, {"headers": dict(self.headers.items()), "query": self.path.partition("?")[2]})
        elif path == "/error":
            self._json(500, {"error": "boom"})
        elif path.startswith("/status/"):
            self._json(int(path.rsplit("/", 1)[1]), {"status": path.rsplit("/", 1)[1]})
        elif path == "/text":
            self._reply(200, b"plain text\n", "text/plain; charset=utf-8")
        elif path == "/not-json":
            self._reply(200, b"{not json", "application/json")
        elif path == "/slow":
            self.server.release.wait(10)
            self._json(200, {"slow": True})
        elif path == "/redirect-metadata":
            self._reply(302, b"", "text/plain", Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/redirect-local":
            self._reply(302, b"", "text/plain", Location="/health")
        elif path == "/big":
            self._reply(200, b"x" * BIG_BODY_BYTES, "application/octet-stream")
        elif path == "/items" and self.command == "POST":
            self._json(201, {"created": json.loads(body or b"null")})
        else:
            self._json(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.record = LocalServer(url=f"http://127.0.0.1:{self.server_address[1]}")
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and went away is expected here


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.record
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def api_agent(
    config_dir: Path, state_dir: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CloudAgent]:
    """Agent ``agent-api-001``: a 1000-byte output limit and a named connection holding a token."""
    monkeypatch.setenv("CA_TEST_SERVICE_TOKEN", "svc-token-from-the-environment-42")
    connections = {
        **LOCAL_CONNECTIONS,
        "api": {
            "default": {},
            "service": {
                "base_url": server.url,
                "headers": {"Authorization": "Bearer ${CA_TEST_SERVICE_TOKEN}", "X-Team": "sre"},
            },
        },
    }
    limits = {"max_output_bytes": 1000}
    write_environment(config_dir, "web", agents=["agent-api-001"], limits=limits, connections=connections)
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'api.sqlite3'}")) as running:
        yield running


def _audit_text(agent: CloudAgent, task_id: str) -> str:
    return json.dumps([record.model_dump(mode="json") for record in agent.audit.query(AuditQuery(task_id=task_id))])


def test_spec_health_check_sends_the_header_and_never_shows_the_token(agent: CloudAgent, server: LocalServer) -> None:
    task = {
        "type": "api",
        "command": "",
        "params": {"method": "GET", "url": f"{server.url}/health", "headers": {"Authorization": "Bearer xxx"}},
    }

    result = agent.run(task, task_id="task-api-health")

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert server.last("/health").headers["Authorization"] == "Bearer xxx"
    assert result.data["status_code"] == 200
    assert result.data["body"] == {"status": "ok", "checks": {"db": "up"}}
    assert result.data["headers"]["content-type"] == "application/json"
    (record,) = [r for r in agent.audit.query(AuditQuery(task_id="task-api-health")) if r.event.value == "finished"]
    assert record.params["headers"] == {"Authorization": "***"}
    assert "Bearer xxx" not in _audit_text(agent, "task-api-health")
    assert "Bearer xxx" not in result.model_dump_json()


def test_a_token_the_server_echoes_back_is_masked(agent: CloudAgent, server: LocalServer) -> None:
    token = "Bearer s3cr3t-abcdef-0123456789"
    streamed: list[str] = []

    result = agent.run(
        {"type": "api", "params": {"url": f"{server.url}/echo", "headers": {"Authorization": token}}},
        task_id="task-api-echo",
        on_output=lambda stream, line: streamed.append(line),
    )

    assert result.status is TaskStatus.SUCCEEDED
    assert server.last("/echo").headers["Authorization"] == token
    assert result.data["body"]["headers"]["Authorization"] == "***"
    assert "s3cr3t-abcdef" not in result.model_dump_json()
    assert "s3cr3t-abcdef" not in _audit_text(agent, "task-api-echo")


def test_connection_headers_come_from_the_environment_and_stay_secret(
    api_agent: CloudAgent, server: LocalServer
) -> None:
    params = {"connection": "service", "url": "/echo", "query": {"q": 1}}
    result = api_agent.run({"agent_id": "agent-api-001", "type": "api", "params": params}, task_id="task-api-service")

    assert result.status is TaskStatus.SUCCEEDED, result.error
    received = server.last("/echo")
    assert received.headers["Authorization"] == "Bearer svc-token-from-the-environment-42"
    assert received.headers["X-Team"] == "sre"
    assert received.path == "/echo?q=1"
    assert result.data["body"]["headers"]["X-Team"] == "sre"
    assert "svc-token-from-the-environment-42" not in result.model_dump_json()
    assert "svc-token-from-the-environment-42" not in _audit_text(api_agent, "task-api-service")


def test_http_500_is_a_failure_with_the_response_kept(agent: CloudAgent, server: LocalServer) -> None:
    result = agent.run({"type": "api", "params": {"url": f"{server.url}/error"}})

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "http_error"
    assert "HTTP 500" in result.error.message
    assert result.data["status_code"] == 500
    assert result.data["body"] == {"error": "boom"}


def test_status_codes_map_to_error_codes(agent: CloudAgent, server: LocalServer) -> None:
    codes = {}
    for status in (401, 403, 404, 418):
        result = agent.run({"type": "api", "params": {"url": f"{server.url}/status/{status}"}})
        codes[status] = result.error.code if result.error else None

    assert codes == {401: "auth_failed", 403: "forbidden", 404: "not_found", 418: "http_error"}


def test_expect_status(agent: CloudAgent, server: LocalServer) -> None:
    expected_404 = agent.run({"type": "api", "params": {"url": f"{server.url}/status/404", "expect_status": [404]}})
    unexpected_200 = agent.run({"type": "api", "params": {"url": f"{server.url}/health", "expect_status": [204]}})

    assert expected_404.status is TaskStatus.SUCCEEDED
    assert unexpected_200.status is TaskStatus.FAILED
    assert unexpected_200.error is not None and unexpected_200.error.code == "http_error"


def test_bodies_that_are_not_json_come_back_as_text(agent: CloudAgent, server: LocalServer) -> None:
    text = agent.run({"type": "api", "command": f"{server.url}/text"})
    broken = agent.run({"type": "api", "params": {"url": f"{server.url}/not-json"}})

    assert text.status is TaskStatus.SUCCEEDED
    assert text.data["body"] == "plain text\n"
    assert broken.data["body"] == "{not json"


def test_a_slow_endpoint_is_timed_out(agent: CloudAgent, server: LocalServer) -> None:
    started = time.monotonic()

    result = agent.run({"type": "api", "params": {"url": f"{server.url}/slow"}, "timeout": 1})

    assert result.status is TaskStatus.TIMED_OUT
    assert result.error is not None and result.error.code == "timed_out"
    assert time.monotonic() - started < 2.0


def test_unreachable_endpoint(agent: CloudAgent) -> None:
    result = agent.run({"type": "api", "params": {"url": "http://127.0.0.1:1/health"}, "timeout": 3})

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unreachable"
    assert "cannot reach 127.0.0.1:1" in result.error.message


def test_a_redirect_to_the_metadata_endpoint_is_not_followed(agent: CloudAgent, server: LocalServer) -> None:
    followed = agent.run(
        {"type": "api", "params": {"url": f"{server.url}/redirect-metadata", "follow_redirects": True}}
    )
    not_followed = agent.run({"type": "api", "params": {"url": f"{server.url}/redirect-metadata"}})

    assert followed.status is TaskStatus.FAILED
    assert followed.error is not None and followed.error.code == "forbidden"
    assert "[rule http.metadata-endpoint]" in followed.error.message
    assert not_followed.status is TaskStatus.SUCCEEDED
    assert not_followed.data["status_code"] == 302
    assert not_followed.data["headers"]["location"] == "http://169.254.169.254/latest/meta-data/"


def test_a_local_redirect_is_followed_when_asked(agent: CloudAgent, server: LocalServer) -> None:
    result = agent.run({"type": "api", "params": {"url": f"{server.url}/redirect-local", "follow_redirects": True}})

    assert result.status is TaskStatus.SUCCEEDED
    assert result.data["url"] == f"{server.url}/health"
    assert result.data["body"]["status"] == "ok"


def test_post_needs_an_approval(agent: CloudAgent, server: LocalServer) -> None:
    before = len(server.received)
    task = {"type": "api", "params": {"method": "POST", "url": f"{server.url}/items", "body": {"name": "cache"}}}

    unapproved = agent.run(task)
    assert unapproved.status is TaskStatus.APPROVAL_REQUIRED
    assert unapproved.risk is not None and unapproved.risk.value == "write"
    assert len(server.received) == before  # nothing was sent

    approved = agent.run({**task}, approval=_approval(APPROVED))
    assert approved.status is TaskStatus.SUCCEEDED, approved.error
    assert approved.data["status_code"] == 201
    assert approved.data["body"] == {"created": {"name": "cache"}}
    assert json.loads(server.last("/items").body) == {"name": "cache"}


def test_a_body_larger_than_the_limit_is_truncated_with_its_size(agent: CloudAgent, server: LocalServer) -> None:
    result = agent.run({"type": "api", "params": {"url": f"{server.url}/big"}})

    assert result.status is TaskStatus.SUCCEEDED
    assert result.truncated is True
    assert result.original_bytes == BIG_BODY_BYTES
    body = result.data["body"]
    assert 0 < len(body) <= 1024 * 1024 and set(body) == {"x"}
    assert len(json.dumps(result.data)) <= 1024 * 1024


def test_the_environment_output_limit_applies_to_bodies(api_agent: CloudAgent, server: LocalServer) -> None:
    result = api_agent.run({"agent_id": "agent-api-001", "type": "api", "params": {"url": f"{server.url}/big"}})

    assert result.truncated is True
    assert result.original_bytes == BIG_BODY_BYTES
    assert len(json.dumps(result.data)) <= 1000


def test_invalid_params_are_rejected_with_one_line(agent: CloudAgent) -> None:
    missing_url = agent.run({"type": "api", "params": {"method": "GET"}})
    bad_method = agent.run({"type": "api", "params": {"url": "http://127.0.0.1:1/", "method": "GET /x"}})
    unknown = agent.run({"type": "api", "params": {"url": "http://127.0.0.1:1/", "verb": "GET"}})

    for result in (missing_url, bad_method, unknown):
        assert result.status is TaskStatus.FAILED
        assert result.error is not None and result.error.code == "invalid_task"
        assert "\n" not in result.error.message
    assert "url" in missing_url.error.message
    assert "verb" in unknown.error.message


def _approval(given: dict | None) -> Approval | None:
    """An approval handed to the engine beside the task, as the CLI, the task API and the fix step do."""
    return Approval.model_validate(given) if given is not None else None
