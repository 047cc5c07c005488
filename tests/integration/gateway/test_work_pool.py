"""``CLOUD_AGENT_DISPATCH=work-pool``: tasks run as ``execute-batch/<env>`` runs on the environment's
``CloudAgentWorker`` (a separate process here, as in production); lines come back through the
Prefect task-run log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.dispatch import ensure_batch_deployment
from tests.environments import write_test_environments
from tests.gateway_fixtures import Gateway, GatewayFactory, restarted_mid_task
from tests.identities import OPERATOR, VIEWER
from tests.ws_logs import stream_dated_lines

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


async def _wait_for_worker(pool: str, timeout: float) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while not await client.read_workers_for_work_pool(pool):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no worker registered on {pool} within {timeout} s")
            await asyncio.sleep(0.2)


@dataclass(frozen=True)
class LocalWorker:
    pool: str
    #: The worker's stdout and stderr: what it was doing when a test failed.
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def local_worker(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorker]:
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
    log = home / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-c", code], env=environment, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        asyncio.run(_wait_for_worker(pool, 120))  # it registers once its flows are imported
        yield LocalWorker(pool, log)
    finally:
        worker.terminate()
        worker.wait(20)


@pytest.fixture
def pool_gateway(local_worker: LocalWorker, gateway_factory: GatewayFactory) -> Gateway:
    return gateway_factory(
        dispatch="work-pool", gateway_remote_as="flow-run", gateway_poll_seconds=0.05, pickup_grace_seconds=3
    )


def test_a_task_runs_on_the_environments_worker(pool_gateway: Gateway, local_worker: LocalWorker) -> None:
    with pool_gateway.client() as client:
        task = client.execute_shell("agent-local-001", "echo from-the-worker", timeout=20)
        if task["status"] in ("pending", "running"):
            # The worker's first run starts a process; on a loaded Prefect server that once took
            # past the sync wait (25 s, against 3 s alone). Where the task runs is what is tested.
            task = client.wait(task["id"], timeout=90, poll_seconds=0.2)
    assert task["status"] == "succeeded", f"{task}\nthe worker's last lines:\n{local_worker.tail()}"
    assert task["dispatch"] == "work-pool" and task["flow_run_id"]
    assert task["result"]["output"] == "from-the-worker\n"


def test_lines_from_the_worker_reach_websocket_subscribers(pool_gateway: Gateway) -> None:
    status, lines = stream_dated_lines(pool_gateway.url, pool_gateway.ws_url, OPERATOR, VIEWER)
    assert status == "succeeded" and len(lines) == 3, lines
    # Live, through the worker's log batches and the gateway's polling: the first line arrives
    # while the task still prints (the last line comes two seconds after it), not with the result.
    (first_printed, first_arrived), _, (last_printed, _) = lines
    assert first_printed < first_arrived < last_printed, lines


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
    view = restarted_mid_task(gateway_factory, dispatch="work-pool", gateway_remote_as="flow-run")
    assert view["status"] == "succeeded" and view["result"]["output"] == "survived\n"
