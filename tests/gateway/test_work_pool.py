"""``CLOUD_AGENT_DISPATCH=work-pool``: tasks run as ``execute-batch/<env>`` runs on the environment's
``CloudAgentWorker`` (a separate process here, as in production); lines come back through the
Prefect task-run log."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from gateway.dispatch import ensure_batch_deployment
from tests.environments import write_test_environments
from tests.gateway.conftest import OPERATOR, VIEWER, Gateway, GatewayFactory

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


async def _wait_for_worker(pool: str, timeout: float) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while not await client.read_workers_for_work_pool(pool):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no worker registered on {pool} within {timeout} s")
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def local_worker(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``CloudAgentWorker`` process on a fresh work pool serving ``execute-batch/local``."""
    pool = f"test-local-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_batch_deployment("local", pool))
    home = tmp_path_factory.mktemp("worker")
    environment = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": str(ROOT),
        # Lines reach the API (and the gateway) in 50 ms batches instead of 2 s ones.
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.05",
        "CLOUD_AGENT_CONFIG_DIR": str(write_test_environments(home / "deployments")),
        "CLOUD_AGENT_STATE_DIR": str(home / "state"),
    }
    code = f"import asyncio; from flows.worker import serve_pool; asyncio.run(serve_pool({pool!r}, poll_seconds=0.1))"
    worker = subprocess.Popen(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        asyncio.run(_wait_for_worker(pool, 60))
        yield pool
    finally:
        worker.terminate()
        worker.wait(20)


@pytest.fixture
def pool_gateway(local_worker: str, gateway_factory: GatewayFactory) -> Gateway:
    return gateway_factory(
        dispatch="work-pool", gateway_remote_as="flow-run", gateway_poll_seconds=0.05, pickup_grace_seconds=3
    )


def test_a_task_runs_on_the_environments_worker(pool_gateway: Gateway) -> None:
    with pool_gateway.client() as client:
        task = client.execute_shell("agent-local-001", "echo from-the-worker", timeout=20)
    assert task["status"] == "succeeded", task
    assert task["dispatch"] == "work-pool" and task["flow_run_id"]
    assert task["result"]["output"] == "from-the-worker\n"


def test_lines_from_the_worker_reach_websocket_subscribers(pool_gateway: Gateway) -> None:
    with pool_gateway.http(OPERATOR) as http:
        task_id = http.post(
            "/api/v1/tasks",
            json={
                "type": "shell",
                "sync": False,
                "timeout": 20,
                "command": "for i in 1 2 3; do sleep 0.4; date +%s.%N; done",
            },
        ).json()["id"]
    connection = websocket.create_connection(
        pool_gateway.ws_url, header=[f"Authorization: Bearer {VIEWER}"], timeout=30
    )
    received = []
    try:
        connection.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": task_id}}))
        while True:
            message = json.loads(connection.recv())
            if message["type"] == "task.log":
                received.append((time.time(), message["data"]))
            if message["type"] == "task.status" and message["data"]["final"]:
                break
    finally:
        connection.close()
    assert message["data"]["status"] == "succeeded"
    assert len(received) == 3
    delays = [arrived - float(data["line"]) for arrived, data in received]
    # Through the worker's log batches and the gateway's polling: well under a second.
    assert max(delays) < 1.0, delays


def test_an_environment_without_its_deployment_is_a_503(pool_gateway: Gateway) -> None:
    with pool_gateway.http(OPERATOR) as http:
        response = http.post(
            "/api/v1/tasks", json={"agent_id": "agent-staging-001", "type": "shell", "command": "echo nowhere"}
        )
    assert response.status_code == 503 and response.json()["error"]["code"] == "dispatch_unavailable"
    assert "execute-batch/staging" in response.json()["error"]["message"]


def test_a_task_no_worker_picks_up_fails_and_its_run_is_cancelled(
    prefect_api: str, gateway_factory: GatewayFactory
) -> None:
    asyncio.run(ensure_batch_deployment("prod", f"nobody-home-{uuid.uuid4().hex[:8]}"))
    gateway = gateway_factory(
        dispatch="work-pool", gateway_remote_as="flow-run", gateway_poll_seconds=0.05, pickup_grace_seconds=1
    )
    with gateway.client() as client:
        task = client.execute_shell("agent-prod-001", "echo never", timeout=5)
    assert task["status"] == "failed" and task["error"]["code"] == "not_picked_up"

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(task["flow_run_id"])
    assert run.state is not None and run.state.is_cancelled()


def test_a_restarted_gateway_follows_its_runs_on_workers_to_the_end(
    local_worker: str, gateway_factory: GatewayFactory
) -> None:
    settings = {
        "dispatch": "work-pool",
        "gateway_remote_as": "flow-run",
        "gateway_poll_seconds": 0.05,
        "shutdown_grace_seconds": 0,
    }
    first = gateway_factory(**settings)
    with first.http(OPERATOR) as http:
        task_id = http.post(
            "/api/v1/tasks", json={"type": "shell", "command": "sleep 1.5; echo survived", "sync": False, "timeout": 20}
        ).json()["id"]
        while not http.get(f"/api/v1/tasks/{task_id}").json()["flow_run_id"]:
            time.sleep(0.05)
    gateway_factory.stop(first)  # while its task runs on the worker
    second = gateway_factory(**settings)
    with second.client(VIEWER) as client:
        view = client.wait(task_id, timeout=30, poll_seconds=0.1)
    assert view["status"] == "succeeded" and view["result"]["output"] == "survived\n"
