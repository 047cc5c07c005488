"""The ``elasticsearch`` executor against a real OpenSearch-compatible server (osmem-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from osmem_server import OsmemServer

from executors import AuditQuery, CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from tests.environments import write_environment
from tests.executor_servers import OPENSEARCH_URL_VARIABLE, published, start_opensearch, stop_opensearch
from tests.spec_data import TASK_EXAMPLES

SPEC_EXAMPLES_FILE = TASK_EXAMPLES
SPEC_EXAMPLES = json.loads(SPEC_EXAMPLES_FILE.read_text()) if SPEC_EXAMPLES_FILE.exists() else []


@pytest.fixture(scope="session")
def opensearch() -> Iterator[OsmemServer]:
    server = start_opensearch()
    with published(OPENSEARCH_URL_VARIABLE, server.url):
        yield server
    stop_opensearch(server)


pytestmark = pytest.mark.integration


def run(agent: CloudAgent, params: dict, **task: object):
    return agent.run({"type": "elasticsearch", "params": params, **task}, actor="test")


def test_the_spec_log_query_finds_the_recent_payment_errors(agent: CloudAgent, opensearch: OsmemServer) -> None:
    result = agent.run(
        {
            "agent_id": "agent-prod-001",
            "type": "elasticsearch",
            "command": "",
            "params": {
                "connection": "default",
                "operation": "search",
                "index": "app-logs-*",
                "query": {
                    "bool": {
                        "must": [
                            {"range": {"@timestamp": {"gte": "now-1h"}}},
                            {"match": {"level": "ERROR"}},
                            {"match": {"service": "payment-service"}},
                        ]
                    }
                },
            },
            "sync": True,
            "timeout": 60,
        },
        actor="test",
    )
    assert result.status is TaskStatus.SUCCEEDED, result.error
    hits = result.data["hits"]
    assert {hit["_id"] for hit in hits} == {"log-1", "log-3"}  # log-4 is 3 hours old
    assert all(hit["_source"]["service"] == "payment-service" for hit in hits)
    assert result.data["total"] == {"value": 2, "relation": "eq"}
    assert result.risk == "read"
    assert result.environment == "prod"


def test_the_spec_trace_query_finds_recent_error_spans(agent: CloudAgent, opensearch: OsmemServer) -> None:
    result = run(
        agent,
        {
            "operation": "search",
            "index": "jaeger-span-*",
            "query": {"bool": {"must": [{"range": {"startTime": {"gte": "now-1h"}}}, {"term": {"tags.error": True}}]}},
        },
    )
    assert result.ok, result.error
    assert sorted(hit["_source"]["spanID"] for hit in result.data["hits"]) == ["s-1", "s-2"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"match": {"level": "ERROR"}}, {"log-1", "log-2", "log-3", "log-4"}),
        ({"match": {"message": "connection pool"}}, {"log-1", "log-3", "log-4"}),
    ],
)
def test_the_spec_examples_without_an_index_search_every_index(
    agent: CloudAgent, opensearch: OsmemServer, query: dict, expected: set[str]
) -> None:
    result = run(agent, {"query": query, "size": 50})
    assert result.ok, result.error
    assert {hit["_id"] for hit in result.data["hits"]} == expected


def test_every_spec_example_of_this_type_runs_unchanged(agent: CloudAgent, opensearch: OsmemServer) -> None:
    examples = [task for task in SPEC_EXAMPLES if task.get("type") == "elasticsearch"]
    if not examples:
        pytest.skip("the spec's task examples are not on this machine")
    for task in examples:
        result = agent.run(task, actor="test")
        assert result.ok, (task, result.error)
        assert result.data["hits"], task


def test_aggregations_sort_size_and_source_filtering(agent: CloudAgent, opensearch: OsmemServer) -> None:
    result = run(
        agent,
        {
            "index": "app-logs-*",
            "query": {"range": {"@timestamp": {"gte": "now-1h"}}},
            "size": 2,
            "sort": [{"@timestamp": "desc"}],
            "_source": ["service", "level"],
            "aggs": {"by_service": {"terms": {"field": "service"}}},
        },
    )
    assert result.ok, result.error
    assert len(result.data["hits"]) == 2
    assert [hit["_id"] for hit in result.data["hits"]] == ["log-5", "log-1"]  # 5 and 10 minutes old
    assert set(result.data["hits"][0]["_source"]) == {"service", "level"}
    buckets = {b["key"]: b["doc_count"] for b in result.data["aggregations"]["by_service"]["buckets"]}
    assert buckets == {"payment-service": 3, "order-service": 1, "checkout-service": 1}


def test_count_and_get(agent: CloudAgent, opensearch: OsmemServer) -> None:
    count = run(agent, {"operation": "count", "index": "app-logs-*", "query": {"term": {"level": "ERROR"}}})
    assert count.ok, count.error
    assert count.data["count"] == 4

    hit = run(agent, {"operation": "search", "index": "app-logs-*", "query": {"term": {"trace_id": "t-2"}}})
    index = hit.data["hits"][0]["_index"]
    got = run(agent, {"operation": "get", "index": index, "id": "log-2"})
    assert got.ok, got.error
    assert got.data["_source"]["service"] == "order-service"
    assert got.data["found"] is True


def test_size_is_capped_at_the_environments_max_rows(
    opensearch: OsmemServer, config_dir: Path, state_dir: Path
) -> None:
    write_environment(config_dir, "tiny", agents=["agent-tiny-001"], limits={"max_rows": 2})
    with CloudAgent(EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir / 'a.db'}")) as agent:
        result = agent.run(
            {"agent_id": "agent-tiny-001", "type": "elasticsearch", "params": {"index": "app-logs-*", "size": 100}},
            actor="test",
        )
    assert result.ok, result.error
    assert len(result.data["hits"]) == 2
    assert result.truncated is True
    assert result.original_rows == 6
    assert any("max_rows" in note for note in result.notes)


# -- failure modes: each a specific error, never a traceback ------------------------------------


def test_a_missing_index_is_not_found(agent: CloudAgent, opensearch: OsmemServer) -> None:
    result = run(agent, {"index": "no-such-index", "query": {"match_all": {}}})
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "not_found"
    assert "no-such-index" in result.error.message


def test_a_missing_document_is_not_found(agent: CloudAgent, opensearch: OsmemServer) -> None:
    hit = run(agent, {"index": "app-logs-*", "size": 1})
    result = run(agent, {"operation": "get", "index": hit.data["hits"][0]["_index"], "id": "no-such-doc"})
    assert result.error.code == "not_found"
    assert "no-such-doc" in result.error.message


def test_a_bad_query_is_a_bad_query(agent: CloudAgent, opensearch: OsmemServer) -> None:
    result = run(agent, {"index": "app-logs-*", "query": {"no_such_query_type": {"field": "x"}}})
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "bad_query"
    assert "no_such_query_type" in result.error.message


def test_an_unreachable_server_is_unreachable(agent: CloudAgent) -> None:
    result = run(agent, {"connection": "unreachable", "index": "app-logs-*"}, timeout=5)
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "unreachable"
    assert "127.0.0.1:9" in result.error.message


def test_the_elasticsearch_flavour_against_opensearch_says_which_setting_to_change(
    agent: CloudAgent, opensearch: OsmemServer
) -> None:
    result = run(agent, {"connection": "as-elasticsearch", "index": "app-logs-*"})
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "configuration_error"
    assert "flavor: opensearch" in result.error.message


def test_unknown_operations_and_params_are_refused_before_anything_runs(agent: CloudAgent) -> None:
    unknown = run(agent, {"operation": "delete_by_query", "index": "app-logs-*"})
    assert unknown.error.code == "invalid_task"
    assert "'search', 'count' or 'get'" in unknown.error.message
    typo = run(agent, {"index": "app-logs-*", "querry": {}})
    assert typo.error.code == "invalid_task"
    assert "querry" in typo.error.message
    get_without_id = run(agent, {"operation": "get", "index": "app-logs-x"})
    assert get_without_id.error.code == "invalid_task"


def test_every_task_is_audited(agent: CloudAgent, opensearch: OsmemServer) -> None:
    result = run(agent, {"index": "app-logs-*", "query": {"match": {"level": "ERROR"}}})
    records = agent.audit.query(AuditQuery(task_id=result.id))  # newest first
    assert [record.event.value for record in records] == ["finished", "started"]
    assert records[0].status == "succeeded"
    assert records[0].risk == "read"
    assert records[0].output_digest == result.output_digest
