"""The embedded default serves every task type one machine can: the spec's ClickHouse and
Elasticsearch examples answer on ``deployments/local`` as it ships (embedded ClickHouse with its
sample view, the OpenSearch-compatible server that ``scripts/ensure-services.sh`` starts)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors import CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from gateway.demo.samples import seed_server
from tests.spec_data import TASK_EXAMPLES

pytestmark = pytest.mark.integration

DEPLOYMENTS = Path(__file__).resolve().parents[3] / "deployments"
LOCAL_OPENSEARCH = ("127.0.0.1", 9200)


def _examples(kind: str) -> list[dict[str, Any]]:
    examples = [e for e in json.loads(TASK_EXAMPLES.read_text()) if e["type"] == kind]
    # One example names agent-prod-001; here every example runs on the local agent.
    return [{key: value for key, value in example.items() if key != "agent_id"} for example in examples]


@pytest.fixture
def local_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudAgent]:
    for name in ("LOCAL_ES_URL", "LOCAL_ES_FLAVOR"):
        monkeypatch.delenv(name, raising=False)
    catalog = EnvironmentCatalog.load(DEPLOYMENTS)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{tmp_path / 'audit.sqlite3'}")) as agent:
        yield agent


def test_the_spec_clickhouse_examples_answer_on_the_local_environment(local_agent: CloudAgent) -> None:
    examples = _examples("clickhouse")
    assert examples
    for example in examples:
        result = local_agent.run(example, actor="test")
        assert result.status is TaskStatus.SUCCEEDED, (example["command"], result.error)
        [result_set] = result.data["result_sets"]
        counts = {row[0]: row[1] for row in result_set["rows"]}
        assert counts == {"payment-service": 60, "order-service": 30}  # the sample view's last hour


def test_the_spec_elasticsearch_examples_answer_on_the_local_environment(local_agent: CloudAgent) -> None:
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(LOCAL_OPENSEARCH) != 0:
            pytest.fail("nothing listens on 127.0.0.1:9200: `make services` starts the local OpenSearch API")
    seed_server("http://127.0.0.1:9200")  # dated relative to now, so "now-1h" finds them
    examples = _examples("elasticsearch")
    assert len(examples) == 4
    hits = []
    for example in examples:
        result = local_agent.run(example, actor="test")
        assert result.status is TaskStatus.SUCCEEDED, (example["params"], result.error)
        hits.append(result.data["hits"])
    recent_payment_errors, error_spans, errors, pool = hits
    assert {hit["_id"] for hit in recent_payment_errors} == {"log-1", "log-3"}
    assert {hit["_source"]["spanID"] for hit in error_spans} == {"s-1", "s-2"}
    assert errors and all(hit["_source"].get("level") == "ERROR" for hit in errors)
    assert pool and all("connection pool" in hit["_source"]["message"] for hit in pool)
