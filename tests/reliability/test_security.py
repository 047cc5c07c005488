"""Security: policy bypass attempts through the API, planted secrets, tokens and roles on every
route, and an audit log nothing in the API can alter."""

from __future__ import annotations

import copy
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websocket
import yaml
from fastapi.routing import APIRoute
from starlette.routing import Route

from executors import AuditLog, Policy, PolicyConfig, TaskSpec, Verdict
from gateway.demo.scenario import DemoIncident
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.gateway.conftest import APPROVER, OPERATOR, TOKENS, VIEWER, Gateway, GatewayFactory
from tests.reliability import corpus, scenarios
from tests.reliability.servers import PrivateRedis, ServedGateway

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

ROLE_TOKENS = {"viewer": VIEWER, "operator": OPERATOR, "approver": APPROVER}


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "event")  # a resolved alert starts nothing anyway
    return gateway_factory(gateway_run_as="engine")


def _served_routes(gateway: Gateway) -> list[tuple[str, str]]:
    routes = []
    for route in gateway.app.routes:
        if isinstance(route, APIRoute | Route):
            routes += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return routes


# -- the policy, through the API ------------------------------------------------------------------


def test_no_bypass_attempt_runs_and_each_is_audited(
    gateway: Gateway, state_dir: Path, tmp_path: Path, audit_of: Callable[[Path], AuditLog]
) -> None:
    attempts = corpus.bypass_attempts()
    assert len(attempts) >= 100

    outcome = scenarios.bypass_corpus(gateway.url, ROLE_TOKENS, attempts, audit_of(state_dir), tmp_path / "ran")

    assert outcome.passed, outcome.explain()


def test_metadata_endpoints_are_reachable_only_where_allowed() -> None:
    # Decided, not sent: this machine must not talk to a metadata service.
    task = TaskSpec(type="api", params={"url": "http://169.254.169.254/latest/meta-data/"})
    shell = TaskSpec(type="shell", command="curl -s http://169.254.169.254/latest/meta-data/")

    assert Policy(PolicyConfig(), "default").decide(task).verdict is Verdict.DENY
    allowing = Policy(PolicyConfig(http_allow_hosts=["169.254.169.254"]), "cloud")
    assert allowing.decide(task).verdict is Verdict.ALLOW
    assert allowing.decide(shell).verdict is Verdict.ALLOW


# -- secrets --------------------------------------------------------------------------------------


class _Reflector(http.server.BaseHTTPRequestHandler):
    """Answers every request with its own headers, as a misbehaving service would."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def reflector() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Reflector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def secrets() -> dict[str, str]:
    return {
        "RCA_PG_PASSWORD": f"pg-secret-{uuid.uuid4().hex}",
        "RCA_REDIS_ACCESS": f"redis-secret-{uuid.uuid4().hex}",  # an innocent name: found by its value
        "RCA_API_TOKEN": f"api-token-{uuid.uuid4().hex}",
    }


def _secret_connections(redis_url: str | None) -> dict[str, Any]:
    connections = copy.deepcopy(LOCAL_CONNECTIONS)
    connections["postgres"]["default"]["password"] = "${RCA_PG_PASSWORD}"
    connections["api"]["default"] = {"headers": {"Authorization": "Bearer ${RCA_API_TOKEN}"}}
    if redis_url:
        connections["redis"]["private"] = {"url": redis_url}
    return connections


def test_planted_secrets_appear_in_no_result_store_or_log(
    config_dir: Path, state_dir: Path, tmp_path: Path, secrets: dict[str, str], reflector: str
) -> None:
    with PrivateRedis(password=secrets["RCA_REDIS_ACCESS"]) as redis:
        connections = _secret_connections(redis.url("${RCA_REDIS_ACCESS}"))
        write_environment(config_dir, "local", agents=["agent-local-001"], connections=connections)
        env = {"CLOUD_AGENT_TOKENS": TOKENS, "CLOUD_AGENT_GATEWAY_RUN_AS": "engine", **secrets,
               "CLOUD_AGENT_CONFIG_DIR": str(config_dir), "CLOUD_AGENT_STATE_DIR": str(state_dir)}  # fmt: skip
        log = tmp_path / "gateway.log"
        with ServedGateway(env, log) as served:
            outcome = scenarios.planted_secrets(
                served.url, OPERATOR, {**secrets, "viewer": VIEWER, "approver": APPROVER}, reflector,
                files=sorted(state_dir.glob("*.sqlite3*")), logs=[],
            )  # fmt: skip
        files = sorted(state_dir.glob("*.sqlite3*"))
        stored = scenarios.leaks_in(b"".join(p.read_bytes() for p in [*files, log]).decode("utf-8", "replace"),
                                    [*secrets.values(), OPERATOR, VIEWER, APPROVER])  # fmt: skip

    assert outcome.passed, outcome.explain()
    assert stored == [], f"the task store, audit log or gateway log holds {[s[:8] for s in stored]}"


@pytest.mark.slow
def test_a_cycles_report_artifacts_and_logs_hold_no_planted_secret(
    cycle_state: Path,
    incident_config: Path,
    demo_incident: DemoIncident,
    gateway_factory: GatewayFactory,
    secrets: dict[str, str],
    reflector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTimestamp
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, PREFECT_SERVER_DATABASE_CONNECTION_URL

    from flows.alerts import parse_alert_group

    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    # The health checks go through the api connection, whose bearer token a reflecting service
    # sends back; the telemetry's PostgreSQL connection carries a password.
    connections = yaml.safe_load((incident_config / "connections.yaml").read_text())
    connections["postgres"]["default"]["password"] = "${RCA_PG_PASSWORD}"
    connections["api"]["default"] = {"headers": {"Authorization": "Bearer ${RCA_API_TOKEN}"}}
    (incident_config / "connections.yaml").write_text(yaml.safe_dump(connections))
    topology = yaml.safe_load((incident_config / "topology.yaml").read_text())
    for service in topology["services"]:
        if service.get("health_url") and demo_incident.root_cause[0] != service["name"]:
            service["health_url"] = f"{reflector}/{service['name']}/health"
    (incident_config / "topology.yaml").write_text(yaml.safe_dump(topology))
    since = datetime.now(UTC) - timedelta(seconds=1)
    gateway = gateway_factory(gateway_run_as="engine")

    payload = scenarios.alert_variant(demo_incident.alert, f"secrets-{uuid.uuid4().hex[:8]}")
    with scenarios.api(gateway.url, OPERATOR) as http:
        assert http.post("/api/v1/alerts", json=payload).status_code == 202
    tag = parse_alert_group(payload).group_tag
    runs = scenarios.wait_for_cycles([tag], timeout=150)[tag]
    assert len(runs) == 1 and runs[0].state is not None and runs[0].state.is_completed(), runs
    report = scenarios.cycle_report(runs[0].id) or ""
    assert "Root cause" in report or "Outcome" in report
    logs: list[Any] = []
    with get_client(sync_client=True) as client:
        while True:  # pages of 200, the API's most
            page = client.read_logs(
                log_filter=LogFilter(timestamp=LogFilterTimestamp(after_=since)),  # type: ignore[arg-type]
                limit=200,
                offset=len(logs),
            )
            logs += page
            if len(page) < 200:
                break
    searched = [report, "\n".join(entry.message for entry in logs)]
    database = Path(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split("///", 1)[-1])
    stores = [*database.parent.glob(database.name + "*"), *cycle_state.glob("*.sqlite3*")]
    stores += [p for p in Path(str(PREFECT_LOCAL_STORAGE_PATH.value())).rglob("*") if p.is_file()]
    searched += [p.read_bytes().decode("utf-8", "replace") for p in stores if p.is_file()]

    leaked = scenarios.leaks_in("\n".join(searched), secrets.values())

    assert leaked == [], f"{[s[:8] for s in leaked]} found in the cycle's report, logs or stores"
    assert len(logs) > 10 and len(stores) > 2  # the search looked at something


# -- tokens and roles ------------------------------------------------------------------------------


def test_every_route_admits_exactly_the_roles_it_should(gateway: Gateway) -> None:
    alert = json.loads(corpus.SAMPLE_ALERT.read_text())

    outcome = scenarios.roles_and_routes(gateway.url, ROLE_TOKENS, _served_routes(gateway), alert)

    assert outcome.passed, outcome.explain()


def test_the_websocket_needs_a_token(gateway: Gateway) -> None:
    connection = websocket.create_connection(gateway.ws_url, timeout=10)
    try:
        connection.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": "task-0000000000000000"}}))
        answer = json.loads(connection.recv())
    finally:
        connection.close()
    assert answer["type"] == "error" and answer["data"]["code"] == "unauthenticated"


def test_no_route_or_method_alters_the_audit_log(
    gateway: Gateway, state_dir: Path, audit_of: Callable[[Path], AuditLog]
) -> None:
    with scenarios.api(gateway.url, OPERATOR) as http:
        for command in ("echo one", "echo two", "rm -rf /"):
            http.post("/api/v1/tasks", json={"type": "shell", "command": command})
    time.sleep(0.2)  # the request records are written after each answer

    outcome = scenarios.audit_unalterable(gateway.url, ROLE_TOKENS, _served_routes(gateway), audit_of(state_dir))

    assert outcome.passed, outcome.explain()
