"""Environments and their work pools: each environment's batch runs on its own worker, and
``prefect deploy --all`` declares the cycle (with its alert trigger), the per-environment batches
and the scheduled retraining."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled

from contract import PlannedTask
from flows.alerts import parse_alert_group
from flows.batch import execute_batch
from flows.dispatch import run_batches
from flows.intake import emit_alert
from flows.settings import FlowSettings
from flows.worker import CloudAgentWorker
from tests.environments import write_environment
from tests.spec_data import ALERTMANAGER_SAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
CLOUD_AGENT = Path(sys.executable).parent / "cloud-agent"
PREFECT = Path(sys.executable).parent / "prefect"


@pytest.fixture
def two_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> Iterator[dict[str, str]]:
    """Environments ``alpha`` and ``beta``, each with its worker process on its own pool."""
    root = tmp_path / "deployments"
    for name in ("alpha", "beta"):
        write_environment(root, name, agents=[f"agent-{name}-001"])
    state = tmp_path / "state"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "CLOUD_AGENT_CONFIG_DIR": str(root),
        "CLOUD_AGENT_STATE_DIR": str(state),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    logs = {name: (tmp_path / f"worker-{name}.log").open("wb") for name in ("alpha", "beta")}
    workers = {
        name: subprocess.Popen(
            [str(CLOUD_AGENT), "worker", "--env", name, "--poll-seconds", "0.2", "--name", f"worker-{name}"],
            env={**env, "RCA_TEST_WORKER": f"worker of {name}"},
            stdout=subprocess.DEVNULL,
            stderr=logs[name],
        )
        for name in ("alpha", "beta")
    }
    try:
        _wait_for_pools(["rca-alpha", "rca-beta"])
        for name in ("alpha", "beta"):
            execute_batch.to_deployment(name=name, work_pool_name=f"rca-{name}").apply()
        monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(root))
        monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(state))
        monkeypatch.setenv("CLOUD_AGENT_DISPATCH", "work-pool")
        yield {name: f"worker of {name}" for name in workers}
    finally:
        for process in workers.values():
            process.terminate()
        for process in workers.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()


def _wait_for_pools(names: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    missing = list(names)
    while missing and time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            for name in list(missing):
                try:
                    client.read_work_pool(name)
                    missing.remove(name)
                except Exception:
                    pass
        time.sleep(0.3)
    assert not missing, f"the workers did not create {missing}"


def test_each_environment_runs_its_tasks_on_its_own_worker(two_environments: dict[str, str]) -> None:
    # A shell task inherits the environment of the process that ran it: the worker that picked
    # its batch up (each worker was started with its own RCA_TEST_WORKER).
    items = [
        PlannedTask(
            label=f"who runs me {i}", purpose="host", task={"type": "shell", "command": "echo $RCA_TEST_WORKER"}
        )
        for i in range(3)
    ]

    results = run_batches({"alpha": items, "beta": items}, step="where", actor="test")

    for name, worker in two_environments.items():
        assert [r["status"] for r in results[name]] == ["succeeded"] * 3, results[name]
        assert {r["output"].strip() for r in results[name]} == {worker}
        assert {r["environment"] for r in results[name]} == {name}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(), limit=50)
    pools = {run.name: run.work_pool_name for run in runs if run.name in ("where@alpha", "where@beta")}
    assert pools == {"where@alpha": "rca-alpha", "where@beta": "rca-beta"}


@pytest.fixture
def deployed(prefect_api: str) -> Iterator[None]:
    """``prefect deploy --all`` on the session's server; what it declared is removed afterwards
    (other tests on the same server expect, e.g., no ``execute-batch/staging``)."""
    with get_client(sync_client=True) as client:
        for pool in ("rca-control", "rca-local", "rca-prod", "rca-staging", "rca-dev"):
            try:
                client.read_work_pool(pool)
            except Exception:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=pool,
                        type="cloud-agent",
                        base_job_template=CloudAgentWorker.get_default_base_job_template(),
                    )
                )
        before = {d.id for d in client.read_deployments(limit=200)}
        automations_before = {a.id for a in client.read_automations()}
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "CLOUD_AGENT_HOME": str(REPO)}
    deployed = subprocess.run(
        [str(PREFECT), "--no-prompt", "deploy", "--all"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    try:
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        yield
    finally:
        with get_client(sync_client=True) as client:
            for deployment in client.read_deployments(limit=200):
                if deployment.id not in before:
                    client.delete_deployment(deployment.id)
            for automation in client.read_automations():
                if automation.id not in automations_before:
                    client.delete_automation(automation.id)


def test_prefect_deploy_all_declares_trigger_batches_and_schedule(deployed: None) -> None:
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(limit=200)
        by_name = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in deployments}
        automations = client.read_automations()
    expected = {
        "rca-incident/alert",
        "retrain-model/nightly",
        "execute-batch/local",
        "execute-batch/prod",
        "execute-batch/staging",
        "execute-batch/dev",
    }
    assert expected <= set(by_name)
    assert by_name["execute-batch/prod"].work_pool_name == "rca-prod"
    assert by_name["rca-incident/alert"].work_pool_name == "rca-control"
    # An alert storm queues its cycles, as many at once as the gateway's in-process default.
    cycle = by_name["rca-incident/alert"]
    assert cycle.global_concurrency_limit is not None and cycle.concurrency_options is not None
    assert cycle.global_concurrency_limit.limit == FlowSettings().max_concurrent_cycles
    assert cycle.concurrency_options.collision_strategy == "ENQUEUE"
    schedules = by_name["retrain-model/nightly"].schedules
    assert schedules and getattr(schedules[0].schedule, "cron", None) == "0 3 * * *"
    trigger = next(a for a in automations if a.name.startswith("alert__automation"))
    assert "cloud-agent.alert.firing" in trigger.trigger.expect

    # The gateway's event starts a run of the cycle's deployment with the alert as its parameter.
    sample = json.loads(ALERTMANAGER_SAMPLE.read_text())
    group = parse_alert_group({**sample, "groupKey": f"{sample['groupKey']}-{time.time()}"})
    emit_alert(group)
    run = _wait_for_run_of(by_name["rca-incident/alert"].id, group.groupKey)
    assert run.parameters["alert"]["groupKey"] == group.groupKey
    with get_client(sync_client=True) as client:  # nobody serves rca-control here: cancel it
        client.set_flow_run_state(run.id, Cancelled(), force=True)


def _wait_for_run_of(deployment_id: object, group_key: str, timeout: float = 60.0) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])), limit=20
            )
        for run in runs:
            if (run.parameters.get("alert") or {}).get("groupKey") == group_key:
                return run
        time.sleep(0.5)
    raise AssertionError("the alert event did not start a run of rca-incident/alert")
