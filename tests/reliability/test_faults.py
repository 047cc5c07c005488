"""Faults: a worker killed mid-task, databases stopped mid-query and mid-collection, the gateway
restarted under load, the audit store gone. Every server stopped here is a private one."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from executors import AuditLog, open_audit_log
from gateway import dispatch
from gateway.demo.scenario import DemoIncident
from gateway.dispatch import ensure_batch_deployment
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.gateway_fixtures import GatewayFactory
from tests.identities import APPROVER, OPERATOR, TOKENS
from tests.reliability import scenarios
from tests.servers import (
    CloudAgentProcess,
    PrivateMariaDB,
    PrivatePostgres,
    PrivateRedis,
    ServedGateway,
    free_port,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]


def _with_private(servers: dict[str, Any]) -> dict[str, Any]:
    """The test connections plus a ``private`` connection per task type to the given servers."""
    connections = copy.deepcopy(LOCAL_CONNECTIONS)
    for kind, server in servers.items():
        entry = {"url": server.url()} if kind == "redis" else server.connection()
        connections[kind]["private"] = entry
    return connections


# -- a worker killed mid-task -------------------------------------------------------------------


async def _workers_on(pool: str) -> int:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return len(await client.read_workers_for_work_pool(pool))


@pytest.fixture
def pool_worker(prefect_api: str, config_dir: Path, tmp_path: Path) -> Iterator[CloudAgentProcess]:
    """``cloud-agent worker --env local`` (its own process) on a fresh work pool of ``local``."""
    pool = f"reliability-{uuid.uuid4().hex[:8]}"
    write_environment(config_dir, "local", agents=["agent-local-001"], work_pool=pool)
    asyncio.run(ensure_batch_deployment("local", pool))
    env = {
        "PREFECT_API_URL": prefect_api,
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.05",
        "CLOUD_AGENT_CONFIG_DIR": str(config_dir),
        "CLOUD_AGENT_STATE_DIR": str(tmp_path / "worker-state"),
    }
    argv = ["worker", "--env", "local", "--poll-seconds", "0.1"]
    with CloudAgentProcess(argv, env, tmp_path / "worker.log") as worker:
        wait_until(lambda: asyncio.run(_workers_on(pool)) > 0, what="no worker registered", timeout=120, every=0.3)
        yield worker


@pytest.mark.parametrize("remote_as", ["flow-run", "task-run"])
def test_a_worker_killed_mid_task_leaves_it_crashed_and_nothing_running(
    pool_worker: CloudAgentProcess, gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch, remote_as: str
) -> None:
    # The gateway gives up on a run this long after the task's timeout (30 s in production).
    monkeypatch.setattr(dispatch.work_pool, "RUN_SLACK_SECONDS", 2.0)
    gateway = gateway_factory(dispatch="work-pool", gateway_remote_as=remote_as, gateway_poll_seconds=0.05,
                              pickup_grace_seconds=20)  # fmt: skip

    outcome = scenarios.worker_killed(gateway.url, OPERATOR, "agent-local-001", pool_worker, remote_as=remote_as)

    scenarios.check(outcome)


# -- databases stopped ----------------------------------------------------------------------------


@pytest.fixture
def private_servers() -> Iterator[dict[str, Any]]:
    with PrivatePostgres() as postgres, PrivateMariaDB() as mariadb, PrivateRedis() as redis:
        yield {"postgres": postgres, "mysql": mariadb, "redis": redis}


def test_a_database_stopped_mid_query_fails_the_read_cleanly_and_comes_back(
    private_servers: dict[str, Any], config_dir: Path, gateway_factory: GatewayFactory
) -> None:
    write_environment(config_dir, "local", agents=["agent-local-001"], connections=_with_private(private_servers))
    gateway = gateway_factory(gateway_run_as="engine")

    outcome = scenarios.servers_stopped_mid_query(gateway.url, APPROVER, "agent-local-001", private_servers)

    scenarios.check(outcome)


def test_databases_stopped_mid_collection_are_recorded_and_the_cycle_reports(
    cycle_state: Path,
    incident_config: Path,
    demo_incident: DemoIncident,
    private_servers: dict[str, Any],
    gateway_factory: GatewayFactory,
) -> None:
    components = scenarios.bind_components_to(incident_config, private_servers)
    assert set(components) == {"postgres", "mysql", "redis"}, components
    gateway = gateway_factory(gateway_run_as="engine")

    outcome = scenarios.cycle_with_sources_stopped(
        gateway.url, OPERATOR, demo_incident.alert, private_servers, components
    )

    scenarios.check(outcome)


# -- the gateway restarted, the audit store gone --------------------------------------------------


def test_no_acknowledged_task_is_lost_when_the_gateway_restarts(
    config_dir: Path, state_dir: Path, tmp_path: Path, audit_of: Callable[[Path], AuditLog]
) -> None:
    port = free_port()
    env = {
        "CLOUD_AGENT_TOKENS": TOKENS,
        "CLOUD_AGENT_GATEWAY_RUN_AS": "engine",
        "CLOUD_AGENT_CONFIG_DIR": str(config_dir),
        "CLOUD_AGENT_STATE_DIR": str(state_dir),
        "CLOUD_AGENT_SHUTDOWN_GRACE_SECONDS": "0.5",
    }
    started: list[ServedGateway] = []

    def start() -> ServedGateway:
        served = ServedGateway(env, tmp_path / "gateway.log", port=port)
        started.append(served)
        return served.start()

    try:
        outcome = scenarios.gateway_restarted(start, OPERATOR, "agent-local-001", audit_of(state_dir))
    finally:
        for served in started:
            served.close()

    scenarios.check(outcome)


def test_tasks_are_refused_while_the_audit_store_is_down(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with PrivatePostgres() as store:
        url = f"postgresql://postgres@127.0.0.1:{store.port}/test"
        monkeypatch.setenv("CLOUD_AGENT_AUDIT_URL", url)
        gateway = gateway_factory(gateway_run_as="engine")
        tokens = {"operator": OPERATOR, "approver": APPROVER}

        outcome = scenarios.audit_unavailable(gateway.url, tokens, "agent-local-001", store, tmp_path / "written")

        audit = open_audit_log(url)
        try:
            chain = audit.verify()
        finally:
            audit.close()
        gateway_factory.stop(gateway)
    scenarios.check(outcome)
    assert chain.ok and chain.records > 0, chain
