"""The project's httpx client (the spec's ``CloudAgentClient``) and ``cloud-agent task run --server``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from executors import TaskResult, TaskStatus
from gateway.cli import app as cli
from gateway.client import ApiRequestFailed, CloudAgentClient, run_through_server
from tests.gateway_fixtures import Gateway
from tests.identities import APPROVER, OPERATOR, VIEWER

pytestmark = pytest.mark.integration


def test_the_spec_client_methods_work_against_the_api(gateway: Gateway) -> None:
    with gateway.client() as client:
        shell = client.execute_shell("agent-local-001", "echo from-client")
        assert client.get_task_result(shell["id"])["result"]["output"] == "from-client\n"
        later = client.execute_shell("agent-local-001", "echo later", sync=False)
        assert later["status"] in ("pending", "running")
        assert client.wait(later["id"], timeout=10, poll_seconds=0.05)["status"] == "succeeded"

        postgres = client.query_postgres("agent-local-001", "SELECT 1 AS one")
        mysql = client.execute_mysql("agent-local-001", "SELECT 2 AS two")
        api = client.query_api("agent-local-001", f"{gateway.url}/healthz")
        search = client.query_elasticsearch("agent-local-001", "app-logs-*", {"match_all": {}}, timeout=5)
        k8s = client.query_k8s("agent-local-001", "kubectl get pods", namespace="default", timeout=5)
        history = client.list_tasks(agent_id="agent-local-001", limit=3)

    assert postgres["status"] == mysql["status"] == api["status"] == "succeeded"
    assert api["result"]["data"]["status_code"] == 200
    # Whether an OpenSearch or Kubernetes API answers depends on the fixtures that ran before (the
    # executor tests start one): either way a result comes back, never an exception.
    for answer in (search, k8s):
        assert answer["status"] in ("failed", "succeeded") and answer["result"] is not None
        assert answer["status"] == "succeeded" or answer["result"]["error"]["code"]
    assert history["total"] == 7 and len(history["items"]) == 3


def test_refusals_raise_with_the_api_error_code(gateway: Gateway) -> None:
    with CloudAgentClient(gateway.url, VIEWER) as viewer, pytest.raises(ApiRequestFailed) as refused:
        viewer.execute_shell(None, "echo no")
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    with gateway.client() as client, pytest.raises(ApiRequestFailed) as unknown:
        client.execute_shell("agent-nowhere", "echo no")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_agent")
    with CloudAgentClient("http://127.0.0.1:9") as nowhere, pytest.raises(ApiRequestFailed) as unreachable:
        nowhere.get_task_result("task-1")
    assert unreachable.value.code == "unreachable"


def test_approve_through_the_client(gateway: Gateway, tmp_path: Path) -> None:
    with gateway.client() as operator:
        waiting = operator.execute_shell(None, f"touch {tmp_path / 'approved'}")
    assert waiting["status"] == "approval_required"
    with CloudAgentClient(gateway.url, APPROVER) as approver:
        done = approver.approve(waiting["id"], reason="test")
    assert done["status"] == "succeeded" and done["approved_by"] == "boss" and (tmp_path / "approved").exists()


def test_run_through_server_returns_a_task_result(gateway: Gateway, tmp_path: Path) -> None:
    result = run_through_server(gateway.url, {"type": "shell", "command": "echo through"}, token=OPERATOR)
    assert isinstance(result, TaskResult) and result.status is TaskStatus.SUCCEEDED and result.output == "through\n"
    approved = run_through_server(
        gateway.url,
        {
            "type": "shell",
            "command": f"touch {tmp_path / 'cli'}",
            "approval": {"approved_by": "someone", "reason": "cli"},
        },
        token=APPROVER,
    )
    assert approved.status is TaskStatus.SUCCEEDED and approved.approved_by == "boss"  # the token's name


def test_the_cli_runs_a_task_through_the_server(gateway: Gateway, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "task",
            "run",
            "--type",
            "shell",
            "--command",
            "echo via-cli",
            "--server",
            gateway.url,
            "--token",
            OPERATOR,
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["output"] == "via-cli\n"
    waiting = runner.invoke(
        cli,
        [
            "task",
            "run",
            "-t",
            "shell",
            "-c",
            f"touch {tmp_path / 'x'}",
            "--server",
            gateway.url,
            "--token",
            OPERATOR,
            "--json",
        ],
    )
    assert waiting.exit_code == 3 and json.loads(waiting.output)["status"] == "approval_required"
    refused = runner.invoke(cli, ["task", "run", "-t", "shell", "-c", "id", "--server", gateway.url, "--token", VIEWER])
    assert refused.exit_code != 0
