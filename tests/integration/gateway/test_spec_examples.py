"""Every task JSON of the spec, posted to the API: each gets a result or a specific error, never a 500."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from executors import TaskStatus
from gateway.schemas import ErrorBody, TaskView
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import APPROVER, OPERATOR
from tests.spec_data import TASK_EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

EXAMPLES = TASK_EXAMPLES
#: Errors a spec example may meet here: a backend not configured or not running on this machine.
EXPECTED_ERROR_CODES = {
    "unreachable",
    "unknown_connection",
    "configuration_error",
    "unknown_type",
    "exit_status",
    "bad_query",
    "approval_required",
    "policy_denied",
    "not_found",
    "forbidden",
    "auth_failed",
    "invalid_task",
    "timed_out",
    "backend_error",
}


def _examples() -> list[dict[str, Any]]:
    if not EXAMPLES.exists():
        pytest.skip(f"{EXAMPLES} is not on this machine")
    examples = json.loads(EXAMPLES.read_text())
    # Shorter timeouts keep the suite quick; the tasks are the spec's as written.
    return [{**example, "timeout": min(float(example.get("timeout", 30)), 10)} for example in examples]


def _post_all(gateway: Gateway, token: str, examples: list[dict[str, Any]]) -> list[httpx.Response]:
    """Post the examples from 8 clients at once; a task still running when its sync wait ends (202) is
    then read until it ends."""

    def post(http: httpx.Client, example: dict[str, Any]) -> httpx.Response:
        response = http.post("/api/v1/tasks", json=example)
        deadline = time.monotonic() + 60  # every example's timeout is 10 s at most
        while response.status_code == 202 or (
            response.status_code == 200 and response.json()["status"] in ("pending", "running")
        ):
            assert time.monotonic() < deadline, f"the task never ended: {response.text[:300]}"
            time.sleep(0.2)
            response = http.get(f"/api/v1/tasks/{response.json()['id']}")
        return response

    with gateway.http(token) as http, ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda example: post(http, example), examples))


def _check(example: dict[str, Any], response: httpx.Response) -> TaskView | None:
    where = f"{example['type']}: {example.get('command') or example.get('params')}"
    assert response.status_code != 500, f"{where} -> 500 {response.text}"
    if response.status_code >= 400:
        error = ErrorBody.model_validate(response.json()).error
        assert response.status_code in (404, 422, 503) and error.code, f"{where} -> {response.text}"
        return None
    assert response.status_code == 200, f"{where} -> {response.status_code} {response.text}"
    view = TaskView.model_validate(response.json())
    assert view.result is not None and view.status.is_terminal
    if view.status is not TaskStatus.SUCCEEDED:
        assert view.error and view.error["code"] in EXPECTED_ERROR_CODES, f"{where} -> {view.error}"
    return view


def test_every_spec_example_gets_a_result_or_a_specific_error(
    prefect_api: str, gateway_factory: GatewayFactory
) -> None:
    examples = _examples()
    assert len(examples) == 44 and {e["type"] for e in examples} >= {"shell", "k8s", "mysql", "postgres", "redis"}
    gateway = gateway_factory(gateway_run_as="task-run")  # the default dispatch
    views = [
        _check(example, response)
        for example, response in zip(examples, _post_all(gateway, OPERATOR, examples), strict=True)
    ]
    answered = [view for view in views if view is not None]
    assert len(answered) == 44  # every example names a known agent and type: all get a result
    statuses = {view.status for view in answered}
    assert TaskStatus.SUCCEEDED in statuses and TaskStatus.APPROVAL_REQUIRED in statuses
    by_type = {view.type for view in answered if view.status is TaskStatus.SUCCEEDED}
    assert {"shell", "mysql", "postgres", "redis"} <= by_type

    # Each ran as a Prefect task run tagged with its agent, so the Prefect UI shows it.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    name = answered[0].invocation.replace(" @", "@")
    deadline = time.monotonic() + 20
    with get_client(sync_client=True) as client:
        while True:  # the server takes task runs in from events, a moment after they ran
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[name])))
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert runs and {"task-api", f"agent:{answered[0].agent_id}"} <= set(runs[0].tags)


def test_an_approver_gets_the_write_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway_factory: GatewayFactory
) -> None:
    """FLUSHDB, OPTIMIZE TABLE and CREATE INDEX with an approver's token run (or fail on their backend),
    never 500. On the bare engine: the flow-run path is covered above."""
    # FLUSHDB on the shared local Redis would wipe other tests' data: a database of its own.
    connections = {**LOCAL_CONNECTIONS, "redis": {"default": {"url": "redis://127.0.0.1:6379/15"}}}
    monkeypatch.setenv(
        "CLOUD_AGENT_CONFIG_DIR", str(write_environment(tmp_path / "envs", "local", connections=connections).parent)
    )
    gateway = gateway_factory()
    examples = [
        e
        for e in _examples()
        if e["type"] in ("mysql", "redis")
        and any(word in (e.get("command") or "").upper() for word in ("FLUSHDB", "OPTIMIZE", "CREATE INDEX"))
    ]
    assert len(examples) == 3
    for example, response in zip(examples, _post_all(gateway, APPROVER, examples), strict=True):
        view = _check(example, response)
        assert view is None or view.status is not TaskStatus.APPROVAL_REQUIRED
