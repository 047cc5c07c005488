"""The ``clickhouse`` executor: embedded (chdb) and over HTTP (a ClickHouse HTTP interface over chdb).

Every test of the shared behaviour runs in both modes: ``default`` is the embedded connection,
``http`` goes through clickhouse-connect's HTTP client to ``ClickHouseOverChdb``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import chdb
import pytest

from contract import Approval
from executors import AuditQuery, CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.executor_servers import (
    CLICKHOUSE_PASSWORD_VARIABLE,
    CLICKHOUSE_PORT_VARIABLE,
    ClickHouseOverChdb,
    published,
)
from tests.spec_data import TASK_EXAMPLES

pytestmark = pytest.mark.integration

PASSWORD = "ch-test-password-7f3a"
SPEC_QUERY = (
    "SELECT service, count(*) as error_count, max(timestamp) as last_error FROM error_logs "
    "WHERE timestamp > now() - INTERVAL 1 HOUR GROUP BY service"
)
SPEC_EXAMPLES_FILE = TASK_EXAMPLES
MODES = ["default", "http"]


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[ClickHouseOverChdb]:
    server = ClickHouseOverChdb(password=PASSWORD)
    seed = chdb.connect(":memory:")
    seed.query("DROP TABLE IF EXISTS error_logs")
    seed.query(
        "CREATE TABLE error_logs (timestamp DateTime, service String, level String, message String) "
        "ENGINE = MergeTree ORDER BY timestamp"
    )
    # 90 errors in the last hour (60 payment, 30 order), and 30 older ones that the spec query skips.
    seed.query(
        "INSERT INTO error_logs SELECT now() - toIntervalSecond(number * 40), "
        "if(number % 3 = 2, 'order-service', 'payment-service'), 'ERROR', concat('error ', toString(number)) "
        "FROM numbers(120)"
    )
    seed.close()
    with published(CLICKHOUSE_PORT_VARIABLE, str(server.port)), published(CLICKHOUSE_PASSWORD_VARIABLE, PASSWORD):
        yield server
    server.close()


def run(agent: CloudAgent, command: str, connection: str, approval: dict | None = None, **task: object):
    params = {"connection": connection, **task.pop("params", {})}  # type: ignore[dict-item]
    given = Approval.model_validate(approval) if approval is not None else None
    return agent.run({"type": "clickhouse", "command": command, "params": params, **task}, actor="test", approval=given)


@pytest.mark.parametrize("connection", MODES)
def test_the_spec_query_counts_recent_errors_per_service(
    agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str
) -> None:
    result = run(agent, SPEC_QUERY, connection)
    assert result.status is TaskStatus.SUCCEEDED, result.error
    [result_set] = result.data["result_sets"]
    assert result_set["columns"] == ["service", "error_count", "last_error"]
    counts = {row[0]: row[1] for row in result_set["rows"]}
    assert counts == {"payment-service": 60, "order-service": 30}
    assert all(isinstance(row[2], str) and "T" in row[2] for row in result_set["rows"])  # ISO timestamps
    assert result.risk == "read"


def test_the_spec_example_runs_unchanged(agent: CloudAgent, clickhouse: ClickHouseOverChdb) -> None:
    examples = json.loads(SPEC_EXAMPLES_FILE.read_text()) if SPEC_EXAMPLES_FILE.exists() else []
    examples = [task for task in examples if task.get("type") == "clickhouse"]
    if not examples:
        pytest.skip("the spec's task examples are not on this machine")
    for task in examples:
        result = agent.run(task, actor="test")
        assert result.ok, (task, result.error)
        assert result.data["result_sets"][0]["rows"]


@pytest.mark.parametrize("connection", MODES)
def test_parameters_are_bound_by_the_server(agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str) -> None:
    result = run(
        agent,
        "SELECT count() AS n FROM error_logs WHERE service = {service:String} AND message != {quote:String}",
        connection,
        params={"parameters": {"service": "order-service", "quote": "x' OR '1'='1"}},
    )
    assert result.ok, result.error
    assert result.data["result_sets"][0]["rows"] == [[40]]


def test_read_tasks_are_read_only_on_the_server(agent: CloudAgent, clickhouse: ClickHouseOverChdb) -> None:
    clickhouse.requests.clear()
    result = run(agent, "SELECT 1", "http")
    assert result.ok, result.error
    assert clickhouse.requests[-1]["settings"]["readonly"] == "1"
    assert float(clickhouse.requests[-1]["settings"]["max_execution_time"]) <= 30


@pytest.mark.parametrize("connection", MODES)
def test_a_read_task_cannot_lift_read_only(agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str) -> None:
    # The policy sees a SELECT; the server still refuses to change settings in readonly mode.
    result = run(agent, "SELECT 1 SETTINGS readonly = 0", connection)
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "forbidden"
    assert "readonly" in result.error.message


@pytest.mark.parametrize("connection", MODES)
def test_writes_need_an_approval_and_then_run_without_read_only(
    agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str
) -> None:
    table = f"scratch_{connection}"
    create = f"CREATE TABLE IF NOT EXISTS {table} (id UInt32, note String) ENGINE = MergeTree ORDER BY id"
    unapproved = run(agent, create, connection)
    assert unapproved.status is TaskStatus.APPROVAL_REQUIRED
    approval = {"approved_by": "oncall", "reason": "test"}
    for statement in (create, f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')", f"OPTIMIZE TABLE {table} FINAL"):
        done = run(agent, statement, connection, approval=approval)
        assert done.ok, (statement, done.error)
    counted = run(agent, f"SELECT count() FROM {table}", connection)
    assert counted.data["result_sets"][0]["rows"] == [[2]]
    dropped = run(agent, f"DROP TABLE {table}", connection, approval=approval)
    assert dropped.ok and dropped.risk == "destructive"


@pytest.mark.parametrize("connection", MODES)
def test_several_statements_give_several_result_sets(
    agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str
) -> None:
    result = run(agent, "SELECT 1 AS a; SELECT 'x' AS b, 2 AS c;", connection)
    assert result.ok, result.error
    assert [rs["columns"] for rs in result.data["result_sets"]] == [["a"], ["b", "c"]]
    assert [rs["rows"] for rs in result.data["result_sets"]] == [[[1]], [["x", 2]]]


@pytest.fixture
def small_agent(config_dir: Path, state_dir: Path, clickhouse: ClickHouseOverChdb) -> Iterator[CloudAgent]:
    connections = {
        **LOCAL_CONNECTIONS,
        "clickhouse": {
            **LOCAL_CONNECTIONS["clickhouse"],
            "wrong-password": {"host": "127.0.0.1", "port": clickhouse.port, "password": "not-the-password"},
            "elsewhere": {"mode": "embedded", "path": str(state_dir / "other-chdb")},
        },
    }
    write_environment(
        config_dir, "small", agents=["agent-small-001"], limits={"max_rows": 1000}, connections=connections
    )
    catalog = EnvironmentCatalog.load(config_dir, default_agent="agent-small-001")
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'small.sqlite3'}")) as running:
        yield running


@pytest.mark.parametrize("connection", MODES)
def test_rows_beyond_max_rows_are_counted_not_kept(small_agent: CloudAgent, connection: str) -> None:
    result = run(small_agent, "SELECT number FROM numbers(250000)", connection)
    assert result.ok, result.error
    [result_set] = result.data["result_sets"]
    assert len(result_set["rows"]) == 1000
    assert result_set["row_count"] == 250000
    assert result.truncated is True
    assert result.original_rows == 250000


@pytest.mark.parametrize("connection", MODES)
def test_a_slow_query_is_stopped_at_the_timeout(
    agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str
) -> None:
    result = run(agent, "SELECT count() FROM numbers(1000000000000) WHERE sleepEachRow(0) = 0", connection, timeout=1)
    assert result.status is TaskStatus.TIMED_OUT, result.error
    assert result.error.code == "timed_out"
    assert result.duration_ms < 5000


# -- failure modes: each a specific error, never a traceback ------------------------------------


@pytest.mark.parametrize("connection", MODES)
def test_an_unknown_table_is_not_found(agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str) -> None:
    result = run(agent, "SELECT * FROM no_such_table", connection)
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "not_found"
    assert result.error.message.startswith("ClickHouse: Unknown table")


@pytest.mark.parametrize("connection", MODES)
def test_bad_sql_is_a_bad_query(agent: CloudAgent, clickhouse: ClickHouseOverChdb, connection: str) -> None:
    result = run(agent, "SELECT count( FROM error_logs", connection)
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "bad_query"
    assert "Syntax error" in result.error.message


def test_an_unreachable_server_is_unreachable(agent: CloudAgent) -> None:
    result = run(agent, "SELECT 1", "unreachable", timeout=5)
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "unreachable"
    assert "127.0.0.1:9" in result.error.message


def test_wrong_credentials_are_an_authentication_failure(small_agent: CloudAgent) -> None:
    result = run(small_agent, "SELECT 1", "wrong-password")
    assert result.error.code == "auth_failed"
    assert "not-the-password" not in result.model_dump_json()


def test_a_second_embedded_path_is_a_configuration_error(small_agent: CloudAgent) -> None:
    assert run(small_agent, "SELECT 1", "default").ok  # the in-memory engine is this process's
    result = run(small_agent, "SELECT 1", "elsewhere")
    assert result.error.code == "configuration_error"
    assert "one engine" in result.error.message or "already" in result.error.message


def test_the_password_never_reaches_results_or_the_audit_log(agent: CloudAgent, clickhouse: ClickHouseOverChdb) -> None:
    result = run(agent, f"SELECT '{PASSWORD}' AS echoed", "http")
    assert result.ok, result.error
    assert PASSWORD not in result.model_dump_json()
    records = agent.audit.query(AuditQuery(task_id=result.id))
    assert records and all(PASSWORD not in record.model_dump_json() for record in records)


def test_unknown_params_are_refused(agent: CloudAgent) -> None:
    result = agent.run({"type": "clickhouse", "command": "SELECT 1", "params": {"paramters": {}}}, actor="test")
    assert result.error.code == "invalid_task"
    assert "paramters" in result.error.message
