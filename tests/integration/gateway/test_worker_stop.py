"""``cloud-agent worker --env ENV`` stops on SIGTERM (systemd's stop) as a normal stop: promptly,
exit 0, no error line, no traceback. Prefect's task worker stops itself by raising
``StopTaskWorker`` from its signal handler, which the CLI once reported as an internal error; and
that handler waited on Prefect's loop thread, which under load held the worker over 30 s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gateway.dispatch import ensure_batch_deployment
from tests.environments import write_test_environments
from tests.servers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

CLI = Path(sys.executable).parent / "cloud-agent"


async def _registered(pool: str, timeout: float) -> bool:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            if await client.read_workers_for_work_pool(pool):
                return True
            await asyncio.sleep(0.2)
    return False


def test_sigterm_stops_the_worker_cleanly(prefect_api: str, tmp_path: Path) -> None:
    environment = f"stop{uuid.uuid4().hex[:6]}"
    pool = f"rca-{environment}"
    asyncio.run(ensure_batch_deployment(environment, pool))
    config = write_test_environments(tmp_path / "deployments")
    (config / environment).mkdir()
    (config / environment / "environment.yaml").write_text(
        f"name: {environment}\nwork_pool: {pool}\nagents: [agent-{environment}]\n"
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "CLOUD_AGENT_CONFIG_DIR": str(config),
        "CLOUD_AGENT_STATE_DIR": str(tmp_path / "state"),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [str(CLI), "worker", "--env", environment, "--poll-seconds", "0.2"], env=env, stdout=output, stderr=output
        )
    try:
        assert asyncio.run(_registered(pool, 120)), "the worker never registered on its pool"
        # Both halves serve: the pool's polling (registered) and the task-run subscription.
        wait_until(
            lambda: "Subscribing to runs" in log.read_text(errors="replace"),
            what="the worker subscribing to its task key",
            timeout=60,
            every=0.1,
        )
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        worker.wait(30)
        print(f"stopped {time.monotonic() - signalled:.1f} s after SIGTERM")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    text = log.read_text(errors="replace")
    assert worker.returncode == 0, text[-2000:]
    assert "internal error" not in text and "Traceback" not in text, text[-2000:]
