"""A remote environment's single tasks as background task runs on that environment's worker
(``CLOUD_AGENT_GATEWAY_REMOTE_AS=task-run``, the default with ``CLOUD_AGENT_DISPATCH=work-pool``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from tests.environments import write_test_environments
from tests.gateway.conftest import OPERATOR, VIEWER, Gateway, GatewayFactory

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lane_worker(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A process serving environment ``local``'s task key, told apart by an environment variable."""
    home = tmp_path_factory.mktemp("lane")
    environment = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": str(ROOT),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.05",
        "CLOUD_AGENT_CONFIG_DIR": str(write_test_environments(home / "deployments")),
        "CLOUD_AGENT_STATE_DIR": str(home / "state"),
        "RCA_TEST_WORKER": "the local lane worker",
    }
    code = (
        "import asyncio; from flows.task_lane import serve_environment_tasks; "
        "asyncio.run(serve_environment_tasks('local'))"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(4)  # importing Prefect and subscribing: a task scheduled before is queued anyway
        yield "the local lane worker"
    finally:
        worker.terminate()
        worker.wait(20)


@pytest.fixture
def lane_gateway(lane_worker: str, gateway_factory: GatewayFactory) -> Gateway:
    return gateway_factory(
        dispatch="work-pool", gateway_remote_as="task-run", gateway_poll_seconds=0.05, pickup_grace_seconds=20
    )


def test_a_task_runs_on_its_environments_worker_as_a_task_run(lane_worker: str, lane_gateway: Gateway) -> None:
    with lane_gateway.client() as client:
        task = client.execute_shell("agent-local-001", "echo $RCA_TEST_WORKER", timeout=20)
        timed = []
        for _ in range(5):
            started = time.monotonic()
            again = client.execute_shell("agent-local-001", "echo quick", timeout=20)
            timed.append(time.monotonic() - started)
            assert again["status"] == "succeeded"
    assert task["status"] == "succeeded", task
    assert task["dispatch"] == "task-worker" and task["flow_run_id"].startswith("task-run:")
    assert task["result"]["output"].strip() == lane_worker  # it ran in the worker's process
    assert sorted(timed)[2] < 5.0  # round trips in seconds at most (the bench measures them)


def test_lines_from_the_worker_reach_websocket_subscribers_as_printed(lane_gateway: Gateway) -> None:
    with lane_gateway.http(OPERATOR) as http:
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
        lane_gateway.ws_url, header=[f"Authorization: Bearer {VIEWER}"], timeout=30
    )
    received = []
    try:
        connection.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": task_id}}))
        while True:
            message = json.loads(connection.recv())
            if message["type"] == "task.log":
                received.append((time.time(), message["data"]))
            elif message["type"] == "task.status" and message["data"]["status"] not in ("pending", "running"):
                break
    finally:
        connection.close()
    assert message["data"]["status"] == "succeeded"
    assert len(received) == 3
    delays = [arrived - float(data["line"]) for arrived, data in received]
    # Through the worker's log batches and the gateway's polling: well under a second.
    assert max(delays) < 1.0, delays


def test_a_task_nobody_serves_fails_as_not_picked_up(gateway_factory: GatewayFactory, prefect_api: str) -> None:
    gateway = gateway_factory(
        dispatch="work-pool", gateway_remote_as="task-run", gateway_poll_seconds=0.05, pickup_grace_seconds=1
    )
    with gateway.client() as client:
        task = client.execute_shell("agent-staging-001", "echo nobody", timeout=5)
    assert task["status"] == "failed" and task["result"]["error"]["code"] == "not_picked_up"


def test_a_restarted_gateway_follows_its_task_runs_to_the_end(
    lane_worker: str, gateway_factory: GatewayFactory
) -> None:
    settings = {
        "dispatch": "work-pool",
        "gateway_remote_as": "task-run",
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
