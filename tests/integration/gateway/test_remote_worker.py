"""A worker on another host hands its results back through the shared result storage.

The control side is this test process: the session's Prefect server on loopback, the flow
dispatcher (``flows.dispatch``) and a gateway (single tasks through the task lane). The workers
are ``cloud-agent worker --env ENV`` processes in a network namespace of their own, reaching the
Prefect server and an S3-compatible server (moto) over a veth pair, with ``/`` read-only and a
private ``/tmp`` (``tests.remote_host``): they share no filesystem with this process.

Two environments, one worker each: ``remote…`` with the shared store configured on both sides,
``nostore…`` with none (what users had): its results must fail clearly, and fast.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.dispatch import DispatchItem, TaskWorkerDispatcher, ensure_batch_deployment
from tests.environments import write_environment
from tests.gateway_fixtures import GatewayFactory
from tests.http_stubs import header_reflector
from tests.identities import OPERATOR, VIEWER
from tests.reliability.scenarios import leaks_in
from tests.remote_host import (
    IsolatedNetwork,
    IsolatedWorker,
    PortForward,
    isolated_network,
    missing_tools,
    s3_server,
)
from tests.servers import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.prefect,
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"an isolated host needs {', '.join(missing_tools())}"),
]

BUCKET = "rca-results"
#: What the worker marks its shell output with (handed into the sandbox by the test environments).
WORKER_MARK = "ran-on-the-isolated-worker"


@dataclass
class Far:
    """The isolated workers and what the control side needs to reach their results."""

    network: IsolatedNetwork
    shared_env: str
    nostore_env: str
    shared_worker: IsolatedWorker
    nostore_worker: IsolatedWorker
    config_dir: Path
    store_url: str
    #: The control side's view of the store: loopback (the worker's is the veth address).
    control_storage_env: dict[str, str]
    reflector: str
    secrets: dict[str, str]


def _environments(root: Path, names: list[str]) -> Path:
    # The connection's bearer token comes from the worker's environment: a secret only it knows,
    # which the reflector sends back in the result (where the engine must mask it).
    connections = {"api": {"default": {"headers": {"Authorization": "Bearer ${RCA_FAR_TOKEN}"}}}}
    for name in names:
        write_environment(root, name, agents=[f"agent-{name}"], connections=connections)
    return root


async def _wait_for_workers(pools: list[str], timeout: float) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        for pool in pools:
            while not await client.read_workers_for_work_pool(pool):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no worker registered on {pool} within {timeout} s")
                await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def far(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Far]:
    import s3fs

    home = tmp_path_factory.mktemp("far")
    tag = uuid.uuid4().hex[:6]
    shared_env, nostore_env = f"remote{tag}", f"nostore{tag}"
    config_dir = _environments(home / "deployments", [shared_env, nostore_env])
    secrets = {
        "AWS_SECRET_ACCESS_KEY": f"s3-secret-{uuid.uuid4().hex}",
        "RCA_FAR_TOKEN": f"far-token-{uuid.uuid4().hex}",
    }
    with (
        s3_server() as moto_port,
        isolated_network() as network,
        PortForward(network.host_address, int(prefect_api.split(":")[-1].split("/")[0])) as prefect_forward,
        PortForward(network.host_address, moto_port) as moto_forward,
        header_reflector(network.host_address) as reflector,
    ):
        credentials = {
            "AWS_ACCESS_KEY_ID": "cloud-agent-test",
            "AWS_SECRET_ACCESS_KEY": secrets["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        control_storage_env = {**credentials, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{moto_port}"}
        s3fs.S3FileSystem(
            key=credentials["AWS_ACCESS_KEY_ID"],
            secret=credentials["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=control_storage_env["AWS_ENDPOINT_URL_S3"],
        ).mkdir(BUCKET)
        for environment in (shared_env, nostore_env):
            asyncio.run(ensure_batch_deployment(environment, f"rca-{environment}"))
        worker_env = {
            "PREFECT_API_URL": f"http://{network.host_address}:{prefect_forward.port}/api",
            "RCA_FAR_TOKEN": secrets["RCA_FAR_TOKEN"],
            "CA_TEST_TASK_MARK": WORKER_MARK,
        }
        store_url = f"s3://{BUCKET}/shared"
        shared_worker = IsolatedWorker(
            network,
            shared_env,
            config_dir,
            {
                **worker_env,
                **credentials,
                "AWS_ENDPOINT_URL_S3": f"http://{network.host_address}:{moto_forward.port}",
                "CLOUD_AGENT_RESULT_STORAGE": store_url,
            },
            home / "shared-worker.log",
        )
        nostore_worker = IsolatedWorker(network, nostore_env, config_dir, worker_env, home / "nostore-worker.log")
        with shared_worker, nostore_worker:
            try:
                asyncio.run(_wait_for_workers([f"rca-{shared_env}", f"rca-{nostore_env}"], timeout=150))
            except TimeoutError:
                pytest.fail(f"{shared_worker.output()[-3000:]}\n{nostore_worker.output()[-3000:]}")
            yield Far(
                network, shared_env, nostore_env, shared_worker, nostore_worker, config_dir, store_url,
                control_storage_env, reflector, secrets,
            )  # fmt: skip


@pytest.fixture
def control(far: Far, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Far:
    """This process as the control side of ``far``: its environments, work-pool dispatch, the
    store's credentials (its endpoint on loopback), and no shared store unless a test sets one.
    (After ``config_dir``, which the gateway fixtures use, so that ``far``'s environments win.)"""

    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(far.config_dir))
    monkeypatch.setenv("CLOUD_AGENT_DISPATCH", "work-pool")
    monkeypatch.delenv("CLOUD_AGENT_RESULT_STORAGE", raising=False)
    for name, value in far.control_storage_env.items():
        monkeypatch.setenv(name, value)
    return far


def _use_shared_store(far: Far, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("CLOUD_AGENT_RESULT_STORAGE", far.store_url)


def _store_objects(far: Far) -> dict[str, str]:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=far.control_storage_env["AWS_ENDPOINT_URL_S3"], skip_instance_cache=True)
    return {path: fs.cat(path).decode("utf-8", "replace") for path in fs.find(BUCKET)}


def _planned(far: Far) -> list[Any]:
    from contract import PlannedTask

    return [
        PlannedTask(label="mark", task={"type": "shell", "command": "echo $CA_TEST_TASK_MARK", "timeout": 20}),
        PlannedTask(label="count", task={"type": "shell", "command": "seq 3", "timeout": 20}),
        PlannedTask(label="reflect", task={"type": "api", "params": {"url": f"{far.reflector}/health"}, "timeout": 20}),
    ]


def test_the_worker_shares_no_filesystem_with_the_control_side(control: Far) -> None:
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH

    control_home = Path(str(PREFECT_HOME.value()))
    assert control_home.is_dir()
    assert not control.shared_worker.sees(control_home)
    assert not control.shared_worker.sees(Path(str(PREFECT_LOCAL_STORAGE_PATH.value())))
    assert control.shared_worker.sees(Path("/tmp/prefect"))  # its own Prefect home: the check can say yes


def test_a_batch_comes_back_from_the_isolated_worker_through_the_shared_store(
    control: Far, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.dispatch import run_batches

    _use_shared_store(control, monkeypatch)
    started = time.monotonic()
    results = run_batches({control.shared_env: _planned(control)}, step="collect", actor="test")[control.shared_env]
    took = time.monotonic() - started

    assert [result["status"] for result in results] == ["succeeded"] * 3, [result["error"] for result in results]
    assert results[0]["output"] == f"{WORKER_MARK}\n"  # it ran in the isolated worker
    assert results[1]["output"] == "1\n2\n3\n"
    echoed = {name.lower(): value for name, value in results[2]["data"]["body"]["headers"].items()}
    assert echoed["authorization"] == "Bearer ***"  # the worker's token came back masked
    assert took < 30, took
    stored = _store_objects(control)
    assert any(WORKER_MARK in text for text in stored.values()), sorted(stored)  # the results went there
    assert not {where: leaks_in(text, control.secrets.values()) for where, text in stored.items() if
                leaks_in(text, control.secrets.values())}  # fmt: skip


def test_a_single_api_task_comes_back_through_the_task_lane(
    control: Far, monkeypatch: pytest.MonkeyPatch, gateway_factory: GatewayFactory
) -> None:
    _use_shared_store(control, monkeypatch)
    gateway = gateway_factory(
        dispatch="work-pool", gateway_remote_as="task-run", gateway_poll_seconds=0.05, pickup_grace_seconds=20
    )
    with gateway.client() as client:
        task = client.execute_shell(f"agent-{control.shared_env}", "echo $CA_TEST_TASK_MARK", timeout=20)
    assert task["status"] == "succeeded", task
    assert task["dispatch"] == "task-worker"
    assert task["result"]["output"] == f"{WORKER_MARK}\n"


def test_the_callers_prefect_settings_do_not_travel_to_the_store(control: Far, monkeypatch: pytest.MonkeyPatch) -> None:
    """A background task's parameters carry the caller's Prefect settings, secrets included; the
    shared store gets the task's parameters only, and the worker runs it under its own settings."""
    from prefect.settings import PREFECT_API_KEY, temporary_settings

    from executors import TaskSpec

    _use_shared_store(control, monkeypatch)
    planted = f"prefect-api-key-{uuid.uuid4().hex}"
    item = DispatchItem(
        task_id=f"task-{uuid.uuid4().hex[:16]}",
        spec=TaskSpec.model_validate(
            {"agent_id": f"agent-{control.shared_env}", "type": "shell", "command": "echo lane", "timeout": 20}
        ),
        environment=control.shared_env,
        actor="test",
        max_timeout=60,
    )

    async def dispatch() -> Any:
        dispatcher = TaskWorkerDispatcher(poll_seconds=0.05, pickup_grace_seconds=20)
        await dispatcher.start()
        try:
            return await dispatcher.run(item, lambda stream, line: None, lambda run_id: None)
        finally:
            await dispatcher.close()

    with temporary_settings({PREFECT_API_KEY: planted}):
        result = asyncio.run(dispatch())
    assert result.status == "succeeded" and result.output == "lane\n", result.error
    stored = _store_objects(control)
    parameters = [text for path, text in stored.items() if "/parameters/" in path and item.task_id in text]
    assert len(parameters) == 1, sorted(stored)
    everything = "\n".join(stored.values())
    assert not leaks_in(everything, [planted, *control.secrets.values()])
    assert base64.b64encode(planted.encode()).decode() not in everything


def test_without_a_shared_store_results_fail_clearly_and_fast(control: Far, gateway_factory: GatewayFactory) -> None:
    from flows.dispatch import run_batches

    started = time.monotonic()
    results = run_batches({control.nostore_env: _planned(control)[:1]}, step="collect", actor="test")
    took = time.monotonic() - started
    (result,) = results[control.nostore_env]
    assert result["status"] == "crashed" and result["error"]["code"] == "result_unavailable", result
    assert "CLOUD_AGENT_RESULT_STORAGE" in result["error"]["message"]
    assert "completed on its worker" in result["error"]["message"]
    assert took < 45, took  # a lost batch would wait for its dispatch timeout (80 s here)

    gateway = gateway_factory(
        dispatch="work-pool", gateway_remote_as="task-run", gateway_poll_seconds=0.05, pickup_grace_seconds=60
    )
    started = time.monotonic()
    with gateway.http(OPERATOR) as http:
        task_id = http.post(
            "/api/v1/tasks",
            json={"agent_id": f"agent-{control.nostore_env}", "type": "shell", "command": "echo never", "sync": False},
        ).json()["id"]
    with gateway.client(VIEWER) as client:
        task = client.wait(task_id, timeout=110, poll_seconds=0.1)
    took = time.monotonic() - started
    worker_said = control.nostore_worker.output()[-3000:]
    # Known as soon as the worker gives the run up and deletes it (seconds). When a busy server
    # loses that delete (SQLite "database is locked" past the client's retries), the run stays
    # scheduled until the pick-up grace: the gateway then sees a worker listening and says why.
    assert task["status"] == "failed", f"{task}\n{worker_said}"
    error = task["result"]["error"]
    assert error["code"] in ("run_deleted", "not_picked_up"), f"{error}\n{worker_said}"
    assert "CLOUD_AGENT_RESULT_STORAGE" in error["message"], error
    assert took < 110, took
    wait_until(
        lambda: "Failed to read parameters" in control.nostore_worker.output(),
        what="the worker logged why it gave the task up",
        timeout=10,
    )
