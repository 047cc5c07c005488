"""The mysql executor against the real MariaDB on 127.0.0.1:3306."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from executors import Approval, CloudAgent, EnvironmentCatalog, PolicyConfig, TaskSpec, TaskStatus, open_audit_log
from executors._policy import Assessment, Policy
from tests.environments import LOCAL_CONNECTIONS, write_environment

pytestmark = pytest.mark.integration

APPROVED = {"approved_by": "test-approver"}
LOCAL_MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}


@pytest.fixture
def admin() -> Iterator[pymysql.connections.Connection]:
    """A separate connection, to set things up and to look at the server from outside the agent."""
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True)
    try:
        yield connection
    finally:
        connection.close()


def _query(admin: pymysql.connections.Connection, sql: str, *args: object) -> tuple[tuple[object, ...], ...]:
    with admin.cursor() as cursor:
        cursor.execute(sql, args or None)
        return cursor.fetchall()


@pytest.fixture
def mysql_user(admin: pymysql.connections.Connection) -> Iterator[str]:
    """A user with a password, dropped afterwards."""
    user = f"ca_test_{uuid.uuid4().hex[:8]}"
    _query(admin, f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'right-password-123'")
    _query(admin, f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'right-password-123'")
    try:
        yield user
    finally:
        _query(admin, f"DROP USER IF EXISTS '{user}'@'127.0.0.1', '{user}'@'localhost'")


@pytest.fixture
def my_agent(config_dir: Path, state_dir: Path, mysql_user: str) -> Iterator[CloudAgent]:
    """Agent ``agent-my-001``: at most 5 rows per result set, and some broken connections."""
    connections = {
        **LOCAL_CONNECTIONS,
        "mysql": {
            "default": LOCAL_MYSQL,
            "unreachable": {**LOCAL_MYSQL, "port": 1, "connect_timeout": 2},
            "wrong-password": {**LOCAL_MYSQL, "user": mysql_user, "password": "wrong-password-456"},
            "right-password": {**LOCAL_MYSQL, "user": mysql_user, "password": "right-password-123", "database": ""},
        },
    }
    write_environment(config_dir, "my", agents=["agent-my-001"], limits={"max_rows": 5}, connections=connections)
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'my.sqlite3'}")) as running:
        yield running


def _my(command: str, **extra: object) -> dict[str, object]:
    return {"agent_id": "agent-my-001", "type": "mysql", "command": command, **extra}


def test_spec_multi_statement_task_returns_two_result_sets(agent: CloudAgent) -> None:
    result = agent.run(
        {
            "type": "mysql",
            "command": "SHOW PROCESSLIST; SHOW STATUS LIKE 'Threads_connected';",
            "params": {"connection": "default"},
        }
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    processlist, status = result.data["result_sets"]
    assert processlist["statement"] == "SHOW PROCESSLIST"
    assert processlist["columns"][:4] == ["Id", "User", "Host", "db"]
    assert any(row[7] == "SHOW PROCESSLIST" for row in processlist["rows"])  # itself
    assert status["statement"] == "SHOW STATUS LIKE 'Threads_connected'"
    assert status["columns"] == ["Variable_name", "Value"]
    ((name, value),) = status["rows"]
    assert name == "Threads_connected" and int(value) >= 1


def test_spec_processlist_query(agent: CloudAgent) -> None:
    result = agent.run(
        {"type": "mysql", "command": "SELECT * FROM information_schema.processlist WHERE time > 5 ORDER BY time DESC;"}
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert "COMMAND" in result.data["result_sets"][0]["columns"]


def test_select_sleep_30_with_timeout_1_is_timed_out_and_gone_from_the_processlist(
    agent: CloudAgent, admin: pymysql.connections.Connection
) -> None:
    tag = f"ca-sleep-{uuid.uuid4().hex}"
    started = time.monotonic()

    result = agent.run({"type": "mysql", "command": f"SELECT SLEEP(30), '{tag}'", "timeout": 1})

    assert result.status is TaskStatus.TIMED_OUT
    assert result.error is not None and result.error.code == "timed_out"
    assert time.monotonic() - started < 2.5

    def still_running() -> int:
        rows = _query(
            admin,
            "SELECT count(*) FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
            f"%{tag}%",
        )
        return int(rows[0][0])

    deadline = time.monotonic() + 2
    while still_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_running() == 0

    after = agent.run({"type": "mysql", "command": "SELECT 42 AS answer"})
    assert after.status is TaskStatus.SUCCEEDED and after.data["result_sets"][0]["rows"] == [[42]]


def test_wrong_password_is_an_authentication_failure(my_agent: CloudAgent) -> None:
    wrong = my_agent.run(_my("SELECT CURRENT_USER()", params={"connection": "wrong-password"}))
    right = my_agent.run(_my("SELECT 1 AS ok", params={"connection": "right-password"}))

    assert wrong.status is TaskStatus.FAILED
    assert wrong.error is not None and wrong.error.code == "auth_failed"
    assert "Access denied" in wrong.error.message
    assert "wrong-password-456" not in wrong.model_dump_json()
    assert right.status is TaskStatus.SUCCEEDED, right.error


def test_unreachable_server(my_agent: CloudAgent) -> None:
    result = my_agent.run(_my("SELECT 1", params={"connection": "unreachable"}, timeout=3))

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unreachable"
    assert "cannot reach MySQL at 127.0.0.1:1" in result.error.message


def test_bad_sql_is_a_bad_query(agent: CloudAgent) -> None:
    unknown_column = agent.run({"type": "mysql", "command": "SELECT nosuch_column FROM information_schema.tables"})
    syntax = agent.run({"type": "mysql", "command": "SELECT 1 +"})

    assert unknown_column.status is TaskStatus.FAILED
    assert unknown_column.error is not None and unknown_column.error.code == "bad_query"
    assert unknown_column.error.message.startswith("(1054) Unknown column 'nosuch_column'")
    assert syntax.error is not None and syntax.error.code == "bad_query"
    assert syntax.error.message.startswith("(1064)")


@pytest.fixture
def writer_function(admin: pymysql.connections.Connection) -> Iterator[tuple[str, str]]:
    """A table and a stored function that INSERTs into it: a write hidden behind a SELECT."""
    suffix = uuid.uuid4().hex[:10]
    table, function = f"ca_ro_{suffix}", f"ca_ro_insert_{suffix}"
    _query(admin, f"CREATE TABLE {table} (n INT)")
    _query(
        admin,
        f"CREATE FUNCTION {function}() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO {table} VALUES (1); "
        "RETURN 1; END",
    )
    try:
        yield table, function
    finally:
        _query(admin, f"DROP FUNCTION IF EXISTS {function}")
        _query(admin, f"DROP TABLE IF EXISTS {table}")


def test_read_tasks_run_read_only_on_the_server(
    agent: CloudAgent,
    admin: pymysql.connections.Connection,
    writer_function: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The classifier calls a user function a write (it is not on the read list); with it switched
    # off, the read-only transaction is the wall that stops the function's INSERT.
    table, function = writer_function
    judged = Policy(PolicyConfig(), "t").assess(TaskSpec(type="mysql", command=f"SELECT {function}()"))
    assert judged.risk.value == "write"
    monkeypatch.setattr(Policy, "assess", lambda self, spec: Assessment())

    result = agent.run({"type": "mysql", "command": f"SELECT {function}()"})

    assert result.risk is not None and result.risk.value == "read"
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "forbidden"
    assert "READ ONLY transaction" in result.error.message
    assert _query(admin, f"SELECT count(*) FROM {table}")[0][0] == 0


def test_an_approved_write_is_committed(
    agent: CloudAgent, admin: pymysql.connections.Connection, writer_function: tuple[str, str]
) -> None:
    table, _ = writer_function

    result = agent.run(
        {"type": "mysql", "command": f"INSERT INTO {table} VALUES (7), (8)"}, approval=_approval(APPROVED)
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.data["result_sets"][0]["row_count"] == 2
    assert _query(admin, f"SELECT n FROM {table} ORDER BY n") == ((7,), (8,))


def test_rows_beyond_the_limit_are_counted_not_returned(my_agent: CloudAgent) -> None:
    result = my_agent.run(
        _my("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT n FROM r")
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    (result_set,) = result.data["result_sets"]
    assert result_set["rows"] == [[1], [2], [3], [4], [5]]
    assert result_set["truncated"] is True and result_set["row_count"] == 1000
    assert result.truncated is True and result.original_rows == 1000


def test_values_come_back_as_json(agent: CloudAgent) -> None:
    result = agent.run(
        {
            "type": "mysql",
            "command": "SELECT CAST('2026-11-25 10:00:00' AS DATETIME) AS at, CAST(1.5 AS DECIMAL(4,2)) AS n, "
            "NULL AS nothing, X'00FF' AS raw, 'é' AS text",
        }
    )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.data["result_sets"][0]["rows"] == [["2026-11-25T10:00:00", 1.5, None, "base64:AP8=", "é"]]


def test_an_unknown_connection_lists_the_configured_ones(my_agent: CloudAgent) -> None:
    result = my_agent.run(_my("SELECT 1", params={"connection": "replica"}))

    assert result.error is not None and result.error.code == "unknown_connection"
    assert "(configured: default, right-password, unreachable, wrong-password)" in result.error.message


def _approval(given: dict | None) -> Approval | None:
    """An approval handed to the engine beside the task, as the CLI, the task API and the fix step do."""
    return Approval.model_validate(given) if given is not None else None
