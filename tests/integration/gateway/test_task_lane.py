"""A remote environment's single tasks as background task runs on that environment's worker
(``CLOUD_AGENT_GATEWAY_REMOTE_AS=task-run``, the default with ``CLOUD_AGENT_DISPATCH=work-pool``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.environments import write_test_environments
from tests.gateway_fixtures import Gateway, GatewayFactory, restarted_mid_task
from tests.identities import OPERATOR, VIEWER
from tests.servers import wait_until
from tests.ws_logs import stream_dated_lines

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


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
        wait_until(
            lambda: worker.poll() is None and _listeners(prefect_api, "local") > 0,
            what="the lane worker subscribing to local's task key",
            timeout=60,
            every=0.2,
        )
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
        again = [client.execute_shell("agent-local-001", "echo quick", timeout=20) for _ in range(3)]
    assert task["status"] == "succeeded", task
    assert task["dispatch"] == "task-worker" and task["flow_run_id"].startswith("task-run:")
    assert task["result"]["output"].strip() == lane_worker  # it ran in the worker's process
    # One after another on the same worker (their round trips are bench/task_api.py's to measure).
    assert [(t["status"], t["result"]["output"]) for t in again] == [("succeeded", "quick\n")] * 3


def test_lines_from_the_worker_reach_websocket_subscribers_as_printed(lane_gateway: Gateway) -> None:
    status, lines = stream_dated_lines(lane_gateway.url, lane_gateway.ws_url, OPERATOR, VIEWER)
    assert status == "succeeded" and len(lines) == 3, lines
    # Live, through the worker's log batches and the gateway's polling: the first line arrives
    # while the task still prints (the last line comes two seconds after it), not with the result.
    (first_printed, first_arrived), _, (last_printed, _) = lines
    assert first_printed < first_arrived < last_printed, lines


def _listeners(prefect_api: str, environment: str) -> int:
    """Task workers the Prefect server sees subscribed to ``environment``'s task key."""
    from flows.task_lane import environment_task

    key = environment_task(environment).task_key
    answer = httpx.post(
        f"{prefect_api}/task_workers/filter", json={"task_worker_filter": {"task_keys": [key]}}, timeout=10
    )
    return len(answer.json()) if answer.status_code == 200 else 0


def test_a_run_left_scheduled_beside_a_listening_worker_points_at_the_shared_store(lane_worker: str) -> None:
    """A worker that listens but never started the run most likely could not read its parameters
    (its delete of the run was lost): the reason names the shared store, not a missing worker."""
    import asyncio
    import uuid

    from executors import TaskSpec
    from gateway.dispatch import DispatchItem, TaskWorkerDispatcher

    item = DispatchItem(
        task_id="task-left-scheduled",
        spec=TaskSpec.model_validate({"agent_id": "agent-local-001", "type": "shell", "command": "true"}),
        environment="local",
        actor="test",
        max_timeout=60,
    )

    async def reason() -> str:
        dispatcher = TaskWorkerDispatcher(pickup_grace_seconds=7)
        await dispatcher.start()
        try:
            return await dispatcher._not_picked_up_reason(uuid.uuid4(), item)
        finally:
            await dispatcher.close()

    said = asyncio.run(reason())
    assert "was not started within 7 s, although 1 worker(s) of environment 'local' listen" in said, said
    assert "CLOUD_AGENT_RESULT_STORAGE" in said and "Failed to read parameters" in said, said


def test_a_task_nobody_serves_fails_as_not_picked_up(gateway_factory: GatewayFactory, prefect_api: str) -> None:
    gateway = gateway_factory(
        dispatch="work-pool", gateway_remote_as="task-run", gateway_poll_seconds=0.05, pickup_grace_seconds=1
    )
    with gateway.client() as client:
        task = client.execute_shell("agent-staging-001", "echo nobody", timeout=5)
    assert task["status"] == "failed" and task["result"]["error"]["code"] == "not_picked_up"
    # The server knows no worker listens on staging's task key, and the message says so.
    assert "no worker of environment 'staging' is listening" in task["result"]["error"]["message"], task


def test_a_restarted_gateway_follows_its_task_runs_to_the_end(
    lane_worker: str, gateway_factory: GatewayFactory
) -> None:
    view = restarted_mid_task(gateway_factory, dispatch="work-pool", gateway_remote_as="task-run")
    assert view["status"] == "succeeded" and view["result"]["output"] == "survived\n"
