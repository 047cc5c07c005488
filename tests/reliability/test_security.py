"""Security: policy bypass attempts through the API, planted secrets, tokens and roles on every
route, and an audit log nothing in the API can alter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import websocket

from executors import AuditLog, AuditQuery, Policy, PolicyConfig, TaskSpec, Verdict
from gateway.demo.scenario import DemoIncident
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.http_stubs import header_reflector
from tests.identities import APPROVER, OPERATOR, TOKENS, VIEWER
from tests.reliability import corpus, scenarios
from tests.servers import PrivateRedis, ServedGateway, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

ROLE_TOKENS = {"viewer": VIEWER, "operator": OPERATOR, "approver": APPROVER}


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "event")  # a resolved alert starts nothing anyway
    return gateway_factory(gateway_run_as="engine")


# -- the policy, through the API ------------------------------------------------------------------


def test_no_bypass_attempt_runs_and_each_is_audited(
    gateway: Gateway, state_dir: Path, tmp_path: Path, audit_of: Callable[[Path], AuditLog]
) -> None:
    attempts = corpus.bypass_attempts()
    assert len(attempts) >= 100

    outcome = scenarios.bypass_corpus(gateway.url, ROLE_TOKENS, attempts, audit_of(state_dir), tmp_path / "ran")

    scenarios.check(outcome)


def test_metadata_endpoints_are_reachable_only_where_allowed() -> None:
    # Decided, not sent: this machine must not talk to a metadata service.
    task = TaskSpec(type="api", params={"url": "http://169.254.169.254/latest/meta-data/"})
    shell = TaskSpec(type="shell", command="curl -s http://169.254.169.254/latest/meta-data/")

    assert Policy(PolicyConfig(), "default").decide(task).verdict is Verdict.DENY
    allowing = Policy(PolicyConfig(http_allow_hosts=["169.254.169.254"]), "cloud")
    assert allowing.decide(task).verdict is Verdict.ALLOW
    assert allowing.decide(shell).verdict is Verdict.ALLOW


# -- secrets --------------------------------------------------------------------------------------


@pytest.fixture
def reflector() -> Iterator[str]:
    with header_reflector() as url:
        yield url


@pytest.fixture
def secrets() -> dict[str, str]:
    return scenarios.new_secrets()


def test_planted_secrets_appear_in_no_result_store_or_log(
    config_dir: Path, state_dir: Path, tmp_path: Path, secrets: dict[str, str], reflector: str
) -> None:
    with PrivateRedis(password=secrets["RCA_REDIS_ACCESS"]) as redis:
        connections = scenarios.secret_connections(LOCAL_CONNECTIONS, redis.url("${RCA_REDIS_ACCESS}"))
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

    scenarios.check(outcome)
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
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    gateway = gateway_factory(gateway_run_as="engine")

    outcome = scenarios.cycle_secrets(gateway.url, OPERATOR, demo_incident.alert, incident_config,
                                      demo_incident.root_cause[0], secrets, reflector, cycle_state)  # fmt: skip

    scenarios.check(outcome)


# -- tokens and roles ------------------------------------------------------------------------------


def test_every_route_admits_exactly_the_roles_it_should(gateway: Gateway) -> None:
    alert = json.loads(corpus.SAMPLE_ALERT.read_text())

    outcome = scenarios.roles_and_routes(gateway.url, ROLE_TOKENS, scenarios.served_routes(gateway.app), alert)

    scenarios.check(outcome)


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
    audit = audit_of(state_dir)
    # Each request's own record is written after its answer: all three, before "before" is read.
    wait_until(
        lambda: len(audit.query(AuditQuery(event="api_request", limit=100))) >= 3,
        what="the three requests' audit records",
        timeout=10,
    )

    outcome = scenarios.audit_unalterable(gateway.url, ROLE_TOKENS, scenarios.served_routes(gateway.app), audit)

    scenarios.check(outcome)
