"""The third wall: read tasks connect with accounts that cannot write (deployments/accounts/).

Against the real local PostgreSQL, MariaDB and Redis, with the accounts the project ships
(``scripts/create-read-accounts.sh`` creates them, idempotently). The classifier is switched off
(``Policy.assess`` forced to ``read``): what the red team ran must be refused *by the server*.
Each attack runs twice: with the read-only transaction the executor opens (two walls left), and
with that switched off too, so the account alone stands.
"""

from __future__ import annotations

import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import redis
import structlog

from contract import Approval
from executors import CloudAgent, EnvironmentCatalog, RunContext, TaskResult, TaskStatus, open_audit_log
from executors._policy import Assessment, Policy
from executors.mysql import grants_beyond_read
from executors.postgres import read_settings as postgres_read_settings
from executors.postgres import rights_beyond_read
from executors.redis import read_username
from tests.environments import LOCAL_CONNECTIONS, write_environment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
LOCAL_PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}
LOCAL_MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
READ_PASSWORD = "cloud-agent-read-local"  # the local default of scripts/create-read-accounts.sh
READ_URL = f"redis://cloud-agent-read:{READ_PASSWORD}@127.0.0.1:6379/0"
APPROVED = {"approved_by": "test-approver"}

CONNECTIONS: dict[str, Any] = {
    **LOCAL_CONNECTIONS,
    "postgres": {
        "default": {**LOCAL_PG, "read_user": "cloud_agent_read"},
        "read-is-superuser": {**LOCAL_PG, "read_user": "postgres"},
        "no-read": LOCAL_PG,
    },
    "mysql": {
        "default": {**LOCAL_MYSQL, "read_user": "cloud_agent_read", "read_password": READ_PASSWORD},
        "read-is-root": {**LOCAL_MYSQL, "read_user": "root"},
        "no-read": LOCAL_MYSQL,
    },
    "redis": {
        "default": {"url": "redis://127.0.0.1:6379/0", "read_url": READ_URL},
        "read-is-default": {"url": "redis://127.0.0.1:6379/0", "read_url": "redis://127.0.0.1:6379/0"},
        "no-read": {"url": "redis://127.0.0.1:6379/0"},
        "wrong-read-password": {
            "url": "redis://127.0.0.1:6379/0",
            "read_url": "redis://cloud-agent-read:not-the-password@127.0.0.1:6379/0",
        },
    },
}


@pytest.fixture(scope="module", autouse=True)
def read_accounts() -> None:
    """The shipped accounts, as the demo and CI get them (re-running the script is harmless)."""
    subprocess.run([str(ROOT / "scripts" / "create-read-accounts.sh")], check=True, timeout=60)


@pytest.fixture
def ro_agent(config_dir: Path, state_dir: Path) -> Iterator[CloudAgent]:
    """Agent ``agent-ro-001`` (environment ``ro``) with read credentials; ``agent-strict-001`` insists on them."""
    write_environment(config_dir, "ro", agents=["agent-ro-001"], connections=CONNECTIONS)
    write_environment(
        config_dir,
        "strict",
        agents=["agent-strict-001"],
        connections=CONNECTIONS,
        policy={"require_read_credential": True},
    )
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'ro.sqlite3'}")) as running:
        yield running


@pytest.fixture
def classifier_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task is judged ``read``: only the server stands between it and the data."""
    monkeypatch.setattr(Policy, "assess", lambda self, spec: Assessment())


@pytest.fixture(params=["read-only transaction on", "account alone"])
def walls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, classifier_off: None) -> str:
    """With ``account alone``, the executor opens read-write transactions even for reads (the
    credential is still chosen from the risk class, which stays ``read``)."""
    if request.param == "account alone":
        monkeypatch.setattr(RunContext, "read_only", property(lambda self: False))
    return str(request.param)


def _run(agent: CloudAgent, task_type: str, command: str, connection: str = "default", **extra: Any) -> TaskResult:
    task = {"agent_id": "agent-ro-001", "type": task_type, "command": command, "params": {"connection": connection}}
    approval = extra.pop("approval", None)
    given = Approval.model_validate(approval) if approval is not None else None
    return agent.run({**task, **extra}, approval=given)


def _refused(result: TaskResult, *fragments: str) -> None:
    assert result.status is TaskStatus.FAILED, (result.status, result.data)
    assert result.error is not None and result.error.code == "forbidden", result.error
    assert any(fragment in result.error.message for fragment in fragments), result.error.message


# -- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture
def admin_pg() -> Iterator[psycopg.Connection]:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        yield connection


@pytest.fixture
def pg_table(admin_pg: psycopg.Connection) -> Iterator[str]:
    """A table in ``public`` made by the admin: the read account may SELECT it (default privileges)."""
    name = f"ca_ro_{uuid.uuid4().hex[:10]}"
    admin_pg.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    admin_pg.execute(f"INSERT INTO {name} VALUES (1, 'kept')")
    try:
        yield name
    finally:
        admin_pg.execute(f"DROP TABLE IF EXISTS {name}")


def test_postgres_reads_run_as_the_read_account(ro_agent: CloudAgent, pg_table: str) -> None:
    spec_example = "SELECT pid, usename, application_name, state, query FROM pg_stat_activity WHERE state = 'active';"

    who = _run(ro_agent, "postgres", f"SELECT current_user, (SELECT v FROM {pg_table})")
    activity = _run(ro_agent, "postgres", spec_example)

    assert who.status is TaskStatus.SUCCEEDED, who.error
    assert who.data["result_sets"][0]["rows"] == [["cloud_agent_read", "kept"]]
    assert who.notes == []  # the account's rights were checked and found read-only
    assert activity.status is TaskStatus.SUCCEEDED, activity.error
    assert activity.data["result_sets"][0]["rows"], "pg_monitor shows the active sessions"


def test_postgres_server_refuses_session_and_server_attacks(
    ro_agent: CloudAgent, walls: str, admin_pg: psycopg.Connection, tmp_path: Path
) -> None:
    victim = admin_pg.info.backend_pid
    marker = tmp_path / "copied"
    attacks = {
        f"SELECT pg_terminate_backend({victim})": "must be a superuser to terminate",
        f'SELECT "pg_terminate_backend"({victim})': "must be a superuser to terminate",
        f"SELECT pg_cancel_backend({victim})": "must be a superuser to cancel",
        "SELECT pg_read_file('/etc/passwd')": "permission denied for function pg_read_file",
        "SELECT pg_stat_reset()": "permission denied for function pg_stat_reset",
        f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'": "pg_execute_server_program",
        "SELECT set_config('log_statement', 'all', false)": 'permission denied to set parameter "log_statement"',
    }
    for sql, message in attacks.items():
        _refused(_run(ro_agent, "postgres", sql), message)

    assert admin_pg.execute("SELECT 1").fetchone() == (1,), "the superuser session survived"
    assert not marker.exists()


def test_postgres_server_refuses_writes(
    ro_agent: CloudAgent, walls: str, admin_pg: psycopg.Connection, pg_table: str
) -> None:
    table = f"ca_ro_new_{uuid.uuid4().hex[:8]}"
    read_only = "in a read-only transaction"
    create = _run(ro_agent, "postgres", f"CREATE TABLE {table} (a int)")
    update = _run(ro_agent, "postgres", f"UPDATE {pg_table} SET v = 'changed' WHERE id = 1")

    _refused(create, read_only if walls.startswith("read-only") else "permission denied for schema public")
    _refused(update, read_only if walls.startswith("read-only") else f"permission denied for table {pg_table}")
    assert admin_pg.execute(f"SELECT v FROM {pg_table}").fetchone() == ("kept",)
    assert admin_pg.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)


def test_postgres_writes_use_the_main_credential(ro_agent: CloudAgent, pg_table: str) -> None:
    result = _run(ro_agent, "postgres", f"UPDATE {pg_table} SET v = current_user WHERE id = 1", approval=APPROVED)
    read_back = _run(ro_agent, "postgres", f"SELECT v FROM {pg_table}")

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert read_back.data["result_sets"][0]["rows"] == [["postgres"]]


def test_postgres_rights_check_warns_about_a_superuser_read_credential(ro_agent: CloudAgent) -> None:
    with structlog.testing.capture_logs() as logs:
        first = _run(ro_agent, "postgres", "SELECT 1", "read-is-superuser")
        second = _run(ro_agent, "postgres", "SELECT 2", "read-is-superuser")

    for result in (first, second):
        assert result.status is TaskStatus.SUCCEEDED, result.error
        (note,) = result.notes
        assert "read credential of connection ro/postgres/read-is-superuser can do anything (SUPERUSER)" in note
        assert "default_transaction_read_only is off" in note
    warnings = [entry for entry in logs if entry["event"] == "read_credential_can_write"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning", "warned once, noted every time"


def test_postgres_rights_check_finds_table_rights_beyond_select(admin_pg: psycopg.Connection, pg_table: str) -> None:
    role = f"ca_ro_role_{uuid.uuid4().hex[:8]}"
    admin_pg.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_signal_backend")
    admin_pg.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    admin_pg.execute(f"GRANT SELECT, UPDATE ON {pg_table} TO {role}")
    try:
        with psycopg.connect(f"host=127.0.0.1 dbname=test user={role}", autocommit=True) as db:
            found = rights_beyond_read(db)
    finally:
        admin_pg.execute(f"REVOKE ALL ON {pg_table} FROM {role}")
        admin_pg.execute(f"DROP ROLE {role}")

    assert found == [
        "act as member of pg_signal_backend",
        f"change tables (public.{pg_table}: more than SELECT)",
    ]


# -- MariaDB --------------------------------------------------------------------------------------


@pytest.fixture
def admin_mysql() -> Iterator[pymysql.connections.Connection]:
    connection = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def mysql_table(admin_mysql: pymysql.connections.Connection) -> Iterator[str]:
    name = f"ca_ro_{uuid.uuid4().hex[:10]}"
    with admin_mysql.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v varchar(20))")
        cursor.execute(f"INSERT INTO {name} VALUES (1, 'kept')")
    try:
        yield name
    finally:
        with admin_mysql.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


def _mysql_value(admin: pymysql.connections.Connection, sql: str) -> Any:
    with admin.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return row[0] if row else None


def test_mysql_reads_run_as_the_read_account(ro_agent: CloudAgent, mysql_table: str) -> None:
    who = _run(ro_agent, "mysql", f"SELECT CURRENT_USER(), (SELECT v FROM {mysql_table})")
    processes = _run(ro_agent, "mysql", "SHOW PROCESSLIST; SHOW STATUS LIKE 'Threads_connected';")
    slow = _run(ro_agent, "mysql", "SELECT * FROM information_schema.processlist WHERE time > 5 ORDER BY time DESC;")

    assert who.status is TaskStatus.SUCCEEDED, who.error
    assert who.data["result_sets"][0]["rows"] == [["cloud_agent_read@%", "kept"]]
    assert who.notes == []
    for result in (processes, slow):
        assert result.status is TaskStatus.SUCCEEDED, result.error
    users = {row[1] for row in processes.data["result_sets"][0]["rows"]}
    assert "cloud_agent_read" in users and len(users) > 1, "PROCESS shows other accounts' sessions"


def test_mysql_server_refuses_what_a_misjudged_read_would_do(
    ro_agent: CloudAgent, walls: str, admin_mysql: pymysql.connections.Connection, mysql_table: str, tmp_path: Path
) -> None:
    victim = admin_mysql.thread_id()
    outfile = tmp_path / "out.txt"
    max_connections = _mysql_value(admin_mysql, "SELECT @@global.max_connections")

    _refused(_run(ro_agent, "mysql", f"KILL {victim}"), f"You are not owner of thread {victim}")
    _refused(_run(ro_agent, "mysql", f"SET GLOBAL max_connections = {max_connections}"), "SUPER")
    _refused(_run(ro_agent, "mysql", f"SELECT 1 INTO OUTFILE '{outfile}'"), "FILE privilege")
    # MariaDB checks the privilege before the transaction's READ ONLY: the account answers first.
    _refused(_run(ro_agent, "mysql", f"INSERT INTO {mysql_table} VALUES (2, 'added')"), "INSERT command denied")
    # Without FILE, LOAD_FILE is not an error: it reads nothing.
    load = _run(ro_agent, "mysql", "SELECT LOAD_FILE('/etc/passwd')")

    assert load.status is TaskStatus.SUCCEEDED and load.data["result_sets"][0]["rows"] == [[None]]
    assert _mysql_value(admin_mysql, "SELECT 1") == 1, "the root session survived"
    assert _mysql_value(admin_mysql, f"SELECT count(*) FROM {mysql_table}") == 1
    assert not outfile.exists()


def test_mysql_rights_check_warns_about_root_as_read_credential(ro_agent: CloudAgent) -> None:
    result = _run(ro_agent, "mysql", "SELECT 1", "read-is-root")

    (note,) = result.notes
    assert "read credential of connection ro/mysql/read-is-root can ALL PRIVILEGES on *.*" in note
    assert "WITH GRANT OPTION" in note


def test_mysql_grants_of_the_shipped_account_are_read_only() -> None:
    db = pymysql.connect(host="127.0.0.1", user="cloud_agent_read", password=READ_PASSWORD)
    try:
        assert grants_beyond_read(db) == []
    finally:
        db.close()


# -- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
def admin_redis() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    try:
        yield client
    finally:
        client.close()


def test_redis_reads_run_as_the_read_user(ro_agent: CloudAgent) -> None:
    stats = _run(ro_agent, "redis", "INFO stats")
    slowlog = _run(ro_agent, "redis", "SLOWLOG GET 10")
    memory = _run(ro_agent, "redis", "INFO memory")

    for result in (stats, slowlog, memory):
        assert result.status is TaskStatus.SUCCEEDED, result.error
        assert result.notes == []
    assert "total_commands_processed" in stats.data and "used_memory" in memory.data


def test_redis_server_refuses_writes_of_the_read_user(
    ro_agent: CloudAgent, classifier_off: None, admin_redis: redis.Redis
) -> None:
    key = f"ca-ro-{uuid.uuid4().hex[:12]}"
    victim = int(admin_redis.client_id())
    maxmemory = admin_redis.config_get("maxmemory")["maxmemory"]
    attacks = [
        f"SET {key} x",
        f"CONFIG SET maxmemory {maxmemory}",
        "FLUSHDB",
        f"EVAL \"return redis.call('SET', KEYS[1], 'x')\" 1 {key}",
        f"CLIENT KILL ID {victim}",
    ]
    for command in attacks:
        # The shared server's data must not depend on this test's outcome: ask first.
        dry = admin_redis.execute_command("ACL", "DRYRUN", "cloud-agent-read", *shlex.split(command))
        assert dry != b"OK", f"the read user could run {command}; not sent"
        _refused(_run(ro_agent, "redis", command), "no permissions to run")

    assert admin_redis.exists(key) == 0
    assert admin_redis.ping() and int(admin_redis.client_id()) == victim, "the admin client survived"


def test_redis_rights_check_warns_when_the_read_user_is_default(ro_agent: CloudAgent) -> None:
    result = _run(ro_agent, "redis", "PING", "read-is-default")

    assert result.status is TaskStatus.SUCCEEDED, result.error
    (note,) = result.notes
    assert "read credential of connection ro/redis/read-is-default can run SET, DEL, FLUSHDB" in note


def test_a_rejected_read_credential_is_named_as_such(ro_agent: CloudAgent) -> None:
    result = _run(ro_agent, "redis", "PING", "wrong-read-password")

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "auth_failed"
    assert "rejected the read credential (cloud-agent-read) of connection 'wrong-read-password'" in result.error.message


def test_redis_read_username_comes_from_the_url() -> None:
    assert read_username({"url": READ_URL}) == "cloud-agent-read"
    assert read_username({"url": "redis://:pw@h:6379/0"}) == "default"


def test_redis_writes_use_the_main_credential(ro_agent: CloudAgent, admin_redis: redis.Redis) -> None:
    key = f"ca-ro-{uuid.uuid4().hex[:12]}"
    try:
        result = _run(ro_agent, "redis", f"SET {key} v", approval=APPROVED)
        assert result.status is TaskStatus.SUCCEEDED, result.error
        assert admin_redis.get(key) == b"v"
    finally:
        admin_redis.delete(key)


# -- connections without a read credential ----------------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "command", "setting"),
    [("postgres", "SELECT 1", "read_user"), ("mysql", "SELECT 1", "read_user"), ("redis", "PING", "read_url")],
)
def test_reads_without_a_read_credential_are_noted_and_warned_once(
    ro_agent: CloudAgent, task_type: str, command: str, setting: str
) -> None:
    expected = f"connection ro/{task_type}/no-read has no {setting}: read tasks run with a credential that can write"
    with structlog.testing.capture_logs() as logs:
        results = [_run(ro_agent, task_type, command, "no-read") for _ in range(2)]

    for result in results:
        assert result.status is TaskStatus.SUCCEEDED, result.error
        assert result.notes == [expected]
    assert [entry["message"] for entry in logs if entry["event"] == "read_credential_missing"] == [expected]


@pytest.mark.parametrize("task_type", ["postgres", "mysql", "redis"])
def test_an_environment_can_insist_on_read_credentials(ro_agent: CloudAgent, task_type: str) -> None:
    command = "PING" if task_type == "redis" else "SELECT 1"
    task = {"agent_id": "agent-strict-001", "type": task_type, "command": command}

    refused = ro_agent.run({**task, "params": {"connection": "no-read"}})
    served = ro_agent.run({**task, "params": {"connection": "default"}})

    assert refused.status is TaskStatus.FAILED
    assert refused.error is not None and refused.error.code == "read_credential_missing"
    assert "policy.require_read_credential" in refused.error.message
    assert "deployments/strict/connections.yaml" in refused.error.message
    assert served.status is TaskStatus.SUCCEEDED, served.error


def test_read_passwords_are_masked(ro_agent: CloudAgent) -> None:
    echoed = _run(ro_agent, "mysql", f"SELECT '{READ_PASSWORD}' AS leaked")

    assert echoed.status is TaskStatus.SUCCEEDED, echoed.error
    assert echoed.data["result_sets"][0]["rows"] == [["***"]]


def test_postgres_read_settings_keep_the_main_password_out() -> None:
    settings = {"dsn": "postgresql://admin:s3cret@db:5432/app?sslmode=require", "read_user": "reader"}

    read = postgres_read_settings(settings)

    assert read is not None and "s3cret" not in str(read) and "admin" not in str(read)
    assert read["user"] == "reader" and "sslmode=require" in read["dsn"]
    assert postgres_read_settings({"host": "db", "user": "admin"}) is None


# -- the local deployment ---------------------------------------------------------------------------


def test_the_local_deployment_reads_with_the_shipped_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("PG_READ_USER", "MYSQL_READ_USER", "MYSQL_READ_PASSWORD", "REDIS_READ_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    catalog = EnvironmentCatalog.load(ROOT / "deployments")
    local = catalog.environment("local")
    checks: list[tuple[str, str | None, str, Callable[[TaskResult], Any]]] = [
        ("postgres", "default", "SELECT current_user", lambda r: r.data["result_sets"][0]["rows"]),
        ("postgres", "tracing-db", "SELECT current_user", lambda r: r.data["result_sets"][0]["rows"]),
        ("mysql", "default", "SELECT CURRENT_USER()", lambda r: r.data["result_sets"][0]["rows"]),
        ("redis", "default", "INFO server", lambda r: r.data["redis_version"]),
    ]
    with CloudAgent(catalog, open_audit_log("sqlite:///:memory:")) as agent:
        for task_type, connection, command, value in checks:
            task = {"agent_id": "local", "type": task_type, "command": command, "params": {"connection": connection}}
            result = agent.run(task)
            assert result.status is TaskStatus.SUCCEEDED, (task_type, connection, result.error)
            assert result.notes == [], (task_type, connection, result.notes)
            assert value(result)
            if task_type != "redis":
                assert str(value(result)[0][0]).startswith("cloud_agent_read"), (task_type, value(result))
    assert {name for name in local.connections["postgres"]} == {"default", "tracing-db"}
