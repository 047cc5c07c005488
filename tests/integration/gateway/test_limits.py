"""Limits: tasks per agent at once and waiting, timeouts capped per environment, result size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.environments import write_environment
from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import OPERATOR

pytestmark = pytest.mark.integration


@pytest.fixture
def narrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway_factory: GatewayFactory) -> Gateway:
    """``local`` runs 2 tasks per agent at once, caps timeouts at 1 s and output at 1000 bytes."""
    folder = tmp_path / "narrow"
    write_environment(
        folder,
        "local",
        agents=["agent-local-001"],
        limits={"max_concurrent_tasks_per_agent": 2, "max_timeout_seconds": 1, "max_output_bytes": 1000},
    )
    write_environment(folder, "staging", agents=["agent-staging-001"])
    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(folder))
    return gateway_factory(queue_per_agent=2)


def test_an_agent_runs_its_limit_at_once_queues_some_and_refuses_more(narrow: Gateway) -> None:
    with narrow.http(OPERATOR) as http:
        accepted = [
            http.post(
                "/api/v1/tasks",
                json={"agent_id": "agent-local-001", "type": "shell", "command": "sleep 0.4", "sync": False},
            )
            for _ in range(4)
        ]
        refused = http.post(
            "/api/v1/tasks",
            json={"agent_id": "agent-local-001", "type": "shell", "command": "sleep 0.4", "sync": False},
        )
        elsewhere = http.post(
            "/api/v1/tasks",
            json={"agent_id": "agent-staging-001", "type": "shell", "command": "echo not blocked", "timeout": 5},
        )
        assert [response.status_code for response in accepted] == [202] * 4
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "queue_full" and refused.headers["retry-after"] == "1"
        assert elsewhere.status_code == 200 and elsewhere.json()["status"] == "succeeded"
        assert http.get("/api/v1/tasks", params={"agent_id": "agent-local-001"}).json()["total"] == 4  # 429: no record

    with narrow.client() as client:
        done = [client.wait(response.json()["id"], timeout=10, poll_seconds=0.05) for response in accepted]
    assert all(task["status"] == "succeeded" for task in done)
    spans = sorted((task["started_at"], task["finished_at"]) for task in done)
    for index, (start, _) in enumerate(spans):
        running = sum(1 for other_start, other_end in spans if other_start <= start < other_end)
        assert running <= 2, f"task {index} started while {running - 1} others ran"
    assert spans[2][0] >= min(end for _, end in spans[:2])  # the third waited for a slot


def test_timeouts_are_capped_by_the_environment(narrow: Gateway) -> None:
    with narrow.client() as client:
        task = client.execute_shell("agent-local-001", "sleep 5", timeout=60)
    assert task["status"] == "timed_out"
    assert any("capped from 60 s to 1 s" in note for note in task["result"]["notes"])


def test_results_are_cut_to_the_environments_size_limit(narrow: Gateway) -> None:
    with narrow.client() as client:
        task = client.execute_shell("agent-local-001", "seq 1 5000")
    result = task["result"]
    assert task["status"] == "succeeded" and result["truncated"]
    assert len(result["output"].encode()) <= 1000 and result["original_bytes"] > 20_000
