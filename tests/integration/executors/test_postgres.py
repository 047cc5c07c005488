"""The postgres executor against the real PostgreSQL on 127.0.0.1:5432."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from executors import Approval, CloudAgent, EnvironmentCatalog, PolicyConfig, TaskSpec, TaskStatus, open_audit_log
from executors._policy import Assessment, Policy
from tests.environments import LOCAL_CONNECTIONS, write_environment

pytestmark = pytest.mark.integration

ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
APPROVED = {"approved_by": "test-approver"}
LOCAL_PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}


@pytest.fixture
def admin() -> Iterator[psycopg.Connection]:
    """A separate connection, to set things up and to look at the server from outside the agent."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        yield connection


@pytest.fixture
def pg_agent(config_dir: Path, state_dir: Path) -> Iterator[CloudAgent]:
    """Agent ``agent-pg-001``: at most 5 rows per result set, and some broken connections."""
    connections = {
        **LOCAL_CONNECTIONS,
        "postgres": {
            "default": LOCAL_PG,
            "unreachable": {**LOCAL_PG, "port": 1, "connect_timeout": 2},
            "no-role": {**LOCAL_PG, "user": "ca_no_such_role"},
            "no-db": {**LOCAL_PG, "dbname": "ca_no_such_db"},
        },
    }
    write_environment(config_dir, "pg", agents=["agent-pg-001"], limits={"max_rows": 5}, connections=connections)
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'pg.sqlite3'}")) as running:
        yield running


def _pg(command: str, **extra: object) -> dict[str, object]:
    return {"agent_id": "agent-pg-001", "type": "postgres", "command": command, **extra}


def test_spec_pg_stat_activity_example(agent: CloudAgent) -> None:
    result = agent.run(
        {
            "type": "postgres",
            "command": "SELECT pid, usename, application_name, state, query FROM pg_stat_activity "
            "WHERE state = 'active';",
            "params": {"connection": "default"},
        }
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    (result_set,) = result.data["result_sets"]
    assert result_set["columns"] == ["pid", "usename", "application_name", "state", "query"]
    own = [row for row in result_set["rows"] if "FROM pg_stat_activity" in row[4]]
    assert own and own[0][1] == "postgres" and own[0][2] == "cloud-agent" and own[0][3] == "active"
    assert result_set["row_count"] == len(result_set["rows"])
    assert result.truncated is False


def test_several_statements_give_one_result_set_each(agent: CloudAgent) -> None:
    result = agent.run({"type": "postgres", "command": "SELECT 1 AS a; SELECT 2 AS b, 'x' AS c;\nSHOW server_version;"})

    assert result.status is TaskStatus.SUCCEEDED, result.error
    sets = result.data["result_sets"]
    assert [s["columns"] for s in sets] == [["a"], ["b", "c"], ["server_version"]]
    assert [s["rows"] for s in sets[:2]] == [[[1]], [[2, "x"]]]
    assert [s["statement"] for s in sets[:2]] == ["SELECT 1 AS a", "SELECT 2 AS b, 'x' AS c"]
    assert sets[2]["rows"][0][0][:2].isdigit()


def test_a_statement_with_no_row_still_names_its_columns(agent: CloudAgent) -> None:
    # A process list with no stuck session is evidence too: its columns must say what it is.
    result = agent.run(
        {"type": "postgres", "command": "SELECT pid, state, query FROM pg_stat_activity WHERE false; SELECT 1 AS one"}
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    empty, one = result.data["result_sets"]
    assert empty["columns"] == ["pid", "state", "query"] and empty["rows"] == [] and empty["row_count"] == 0
    assert one["columns"] == ["one"] and one["rows"] == [[1]]


def test_values_come_back_as_json(agent: CloudAgent) -> None:
    result = agent.run(
        {
            "type": "postgres",
            "command": "SELECT timestamptz '2026-11-25 10:00:00+00' AS at, 1.5::numeric AS n, "
            "'{\"a\": [1]}'::jsonb AS j, ARRAY[1, 2] AS arr, NULL AS nothing, true AS yes, "
            "'\\x00ff'::bytea AS raw, interval '1 day' AS span, "
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '10.0.0.1'::inet AS ip",
        }
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    row = result.data["result_sets"][0]["rows"][0]
    assert row[:6] == ["2026-11-25T10:00:00+00:00", 1.5, {"a": [1]}, [1, 2], None, True]
    assert row[6] == "base64:AP8="
    assert row[7] == 86400.0
    assert row[8:] == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "10.0.0.1"]


def test_pg_sleep_30_with_timeout_1_is_timed_out_and_gone_from_the_server(
    agent: CloudAgent, admin: psycopg.Connection
) -> None:
    tag = f"ca-sleep-{uuid.uuid4().hex}"
    started = time.monotonic()

    result = agent.run({"type": "postgres", "command": f"SELECT pg_sleep(30), '{tag}'", "timeout": 1})

    assert result.status is TaskStatus.TIMED_OUT
    assert result.error is not None and result.error.code == "timed_out"
    assert time.monotonic() - started < 2.5

    def still_running() -> int:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active' "
            "AND pid <> pg_backend_pid()",
            (f"%{tag}%",),
        ).fetchone()[0]

    deadline = time.monotonic() + 2
    while still_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_running() == 0

    # the pooled connection is usable again
    after = agent.run({"type": "postgres", "command": "SELECT 42 AS answer"})
    assert after.status is TaskStatus.SUCCEEDED and after.data["result_sets"][0]["rows"] == [[42]]


@pytest.fixture
def writer_function(admin: psycopg.Connection) -> Iterator[tuple[str, str]]:
    """A table and a function that INSERTs into it: a write hidden behind a SELECT."""
    suffix = uuid.uuid4().hex[:10]
    table, function = f"ca_ro_{suffix}", f"ca_ro_insert_{suffix}"
    admin.execute(f"CREATE TABLE {table} (n int)")
    admin.execute(
        f"CREATE FUNCTION {function}() RETURNS int LANGUAGE plpgsql AS "
        f"$$ BEGIN INSERT INTO {table} VALUES (1); RETURN 1; END $$"
    )
    try:
        yield table, function
    finally:
        admin.execute(f"DROP FUNCTION IF EXISTS {function}()")
        admin.execute(f"DROP TABLE IF EXISTS {table}")


def test_read_tasks_run_read_only_on_the_server(
    agent: CloudAgent,
    admin: psycopg.Connection,
    writer_function: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The classifier calls a user function a write (it is not on the read list); with it switched
    # off, the read-only transaction is the wall that stops the function's INSERT.
    table, function = writer_function
    judged = Policy(PolicyConfig(), "t").assess(TaskSpec(type="postgres", command=f"SELECT {function}()"))
    assert judged.risk.value == "write"
    monkeypatch.setattr(Policy, "assess", lambda self, spec: Assessment())

    result = agent.run({"type": "postgres", "command": f"SELECT {function}()"}, approval=_approval(APPROVED))

    assert result.risk is not None and result.risk.value == "read"
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "forbidden"
    assert "read-only transaction" in result.error.message
    assert admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_an_approved_write_is_committed(
    agent: CloudAgent, admin: psycopg.Connection, writer_function: tuple[str, str]
) -> None:
    table, _ = writer_function

    unapproved = agent.run({"type": "postgres", "command": f"INSERT INTO {table} VALUES (7)"})
    approved = agent.run(
        {"type": "postgres", "command": f"INSERT INTO {table} VALUES (7)"}, approval=_approval(APPROVED)
    )

    assert unapproved.status is TaskStatus.APPROVAL_REQUIRED
    assert approved.status is TaskStatus.SUCCEEDED, approved.error
    assert approved.data["result_sets"] == [
        {"statement": f"INSERT INTO {table} VALUES (7)", "columns": [], "rows": [], "row_count": 1, "truncated": False}
    ]
    assert admin.execute(f"SELECT n FROM {table}").fetchall() == [(7,)]


def test_rows_beyond_the_limit_are_counted_not_returned(pg_agent: CloudAgent) -> None:
    result = pg_agent.run(_pg("SELECT n FROM generate_series(1, 1000) AS n; SELECT 'small' AS s"))

    assert result.status is TaskStatus.SUCCEEDED, result.error
    big, small = result.data["result_sets"]
    assert big["rows"] == [[1], [2], [3], [4], [5]]
    assert big["truncated"] is True and big["row_count"] == 1000
    assert small["truncated"] is False and small["rows"] == [["small"]]
    assert result.truncated is True
    assert result.original_rows == 1000


def test_bad_sql_is_a_bad_query_with_its_position(agent: CloudAgent) -> None:
    result = agent.run({"type": "postgres", "command": "SELECT nosuch_column FROM pg_class"})

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "bad_query"
    assert 'column "nosuch_column" does not exist' in result.error.message
    assert "(at character 8)" in result.error.message


def test_a_failed_statement_leaves_the_connection_usable(agent: CloudAgent) -> None:
    failed = agent.run({"type": "postgres", "command": "SELECT 1/0"})
    after = agent.run({"type": "postgres", "command": "SELECT 'fine' AS ok"})

    assert failed.error is not None and failed.error.code == "bad_query" and "division by zero" in failed.error.message
    assert after.status is TaskStatus.SUCCEEDED and after.data["result_sets"][0]["rows"] == [["fine"]]


def test_the_same_statement_many_times_on_one_pooled_session(agent: CloudAgent) -> None:
    # psycopg prepares a statement on the server from its fifth run; the reset between tasks
    # (DISCARD ALL) drops it, and a session that still believed in it failed from then on.
    results = [agent.run({"type": "postgres", "command": "SELECT 1 AS one"}) for _ in range(12)]

    assert [r.status for r in results] == [TaskStatus.SUCCEEDED] * 12, [r.error for r in results]


def test_unreachable_server(pg_agent: CloudAgent) -> None:
    result = pg_agent.run(_pg("SELECT 1", params={"connection": "unreachable"}, timeout=3))

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unreachable"
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in result.error.message


def test_a_role_that_does_not_exist_is_an_authentication_failure(pg_agent: CloudAgent) -> None:
    result = pg_agent.run(_pg("SELECT 1", params={"connection": "no-role"}))

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "auth_failed"
    assert 'role "ca_no_such_role" does not exist' in result.error.message


def test_a_database_that_does_not_exist_is_not_found(pg_agent: CloudAgent) -> None:
    result = pg_agent.run(_pg("SELECT 1", params={"connection": "no-db"}))

    assert result.error is not None and result.error.code == "not_found"
    assert "ca_no_such_db" in result.error.message


def test_an_unknown_connection_lists_the_configured_ones(pg_agent: CloudAgent) -> None:
    result = pg_agent.run(_pg("SELECT 1", params={"connection": "reporting"}))

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unknown_connection"
    assert "no postgres connection named 'reporting'" in result.error.message
    assert "(configured: default, no-db, no-role, unreachable)" in result.error.message


def test_the_connection_name_must_be_a_string(agent: CloudAgent) -> None:
    result = agent.run({"type": "postgres", "command": "SELECT 1", "params": {"connection": ["default"]}})

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "invalid_task"


def _approval(given: dict | None) -> Approval | None:
    """An approval handed to the engine beside the task, as the CLI, the task API and the fix step do."""
    return Approval.model_validate(given) if given is not None else None
