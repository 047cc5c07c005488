"""The audit log: every task recorded, hash-chained, append-only, secret-free; no audit, no task."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from executors import (
    Approval,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    CloudAgent,
    EnvironmentCatalog,
    TaskStatus,
    open_audit_log,
)
from executors._audit import _COLUMNS, PostgresAuditLog
from tests.environments import LOCAL_CONNECTIONS, write_environment

APPROVED = {"approved_by": "test-approver", "reason": "audit test"}


def _events(agent: CloudAgent, task_id: str) -> list[AuditRecord]:
    """The task's records, oldest first."""
    return sorted(agent.audit.query(AuditQuery(task_id=task_id)), key=lambda record: record.seq or 0)


def _raw_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()


def test_a_succeeded_task_is_recorded_before_and_after(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "echo audited"}, actor="alice", task_id="task-ok")

    started, finished = _events(agent, "task-ok")
    assert (started.event, finished.event) == (AuditEvent.STARTED, AuditEvent.FINISHED)
    assert started.status is None and started.risk == "read"
    assert finished.status == "succeeded"
    assert finished.actor == "alice"
    assert finished.agent_id == "local" and finished.environment == "local"
    assert finished.task_type == "shell" and finished.command == "echo audited"
    assert finished.host
    assert finished.output_digest == result.output_digest
    assert finished.output_bytes == len("audited\n")
    assert finished.duration_ms == result.duration_ms
    assert finished.recorded_at >= started.recorded_at


@pytest.mark.parametrize(
    ("task", "events", "status", "error_code"),
    [
        ({"type": "shell", "command": "false"}, ["started", "finished"], "failed", "exit_status"),
        ({"type": "shell", "command": "sleep 5", "timeout": 0.3}, ["started", "finished"], "timed_out", "timed_out"),
        ({"type": "shell", "command": "rm -rf /"}, ["denied"], "denied", "policy_denied"),
        (
            {"type": "shell", "command": "touch /tmp/ca-never"},
            ["approval_required"],
            "approval_required",
            "approval_required",
        ),
        ({"type": "no-such-type", "command": "x"}, ["rejected"], "failed", "unknown_type"),
        ({"agent_id": "agent-nowhere", "type": "shell", "command": "uptime"}, ["rejected"], "failed", "unknown_agent"),
        ({"type": "shell", "command": "uptime", "timeout": -1}, ["rejected"], "failed", "invalid_task"),
        ({"type": "shell", "command": "uptime", "colour": "red"}, ["rejected"], "failed", "invalid_task"),
        ({"type": "api", "params": {"method": "GET"}}, ["rejected"], "failed", "invalid_task"),
        ({"type": "shell", "command": "   "}, ["rejected"], "failed", "invalid_task"),
    ],
    ids=[
        "failed",
        "timed-out",
        "denied",
        "approval-required",
        "unknown-type",
        "unknown-agent",
        "bad-timeout",
        "unknown-field",
        "bad-params",
        "empty-command",
    ],
)
def test_every_outcome_is_recorded(
    agent: CloudAgent, task: dict[str, object], events: list[str], status: str, error_code: str
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:12]}"

    result = agent.run(task, actor="bob", task_id=task_id)

    assert result.status.value == status
    assert result.error is not None and result.error.code == error_code
    records = _events(agent, task_id)
    assert [record.event.value for record in records] == events
    last = records[-1]
    assert last.status == status and last.error_code == error_code and last.actor == "bob"
    assert last.message == result.error.message
    assert agent.audit.verify().ok


def test_the_approver_is_recorded(agent: CloudAgent, tmp_path: Path) -> None:
    agent.run(
        {"type": "shell", "command": f"touch {tmp_path / 'x'}"}, task_id="task-approved", approval=_approval(APPROVED)
    )

    assert {record.approved_by for record in _events(agent, "task-approved")} == {"test-approver"}


def test_an_approval_nobody_checked_runs_and_says_so_in_the_result_and_every_record(
    agent: CloudAgent, tmp_path: Path
) -> None:
    typed = {"approved_by": "someone typed this", "reason": "Prefect UI form", "verified": False}

    unchecked = agent.run(
        {"type": "shell", "command": f"touch {tmp_path / 'u'}"}, task_id="t-u", approval=_approval(typed)
    )
    checked = agent.run(
        {"type": "shell", "command": f"touch {tmp_path / 'c'}"}, task_id="t-c", approval=_approval(APPROVED)
    )
    plain = agent.run({"type": "shell", "command": "echo read"}, task_id="t-r")

    assert unchecked.ok and unchecked.approved_by == "someone typed this" and unchecked.approval_verified is False
    assert checked.ok and checked.approval_verified is True
    assert plain.approval_verified is None
    assert {(r.approved_by, r.approval_verified) for r in _events(agent, "t-u")} == {("someone typed this", False)}
    assert {r.approval_verified for r in _events(agent, "t-c")} == {True}
    assert {r.approval_verified for r in _events(agent, "t-r")} == {None}
    assert agent.audit.verify().ok


def test_a_log_written_before_the_approval_marker_opens_gains_the_column_and_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "old-audit.sqlite3"
    # The table and a record exactly as the release before the marker wrote them.
    old_columns = [c for c in _COLUMNS if c != "approval_verified"]
    old = AuditRecord(event=AuditEvent.FINISHED, task_id="task-old", actor="alice", approved_by="alice")
    body = old.model_dump(mode="json", exclude={"seq", "hash", "approval_verified"})
    old_hash = hashlib.sha256(
        json.dumps({**body, "prev_hash": ""}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    values = {**old.model_dump(mode="json"), "params": "{}", "truncated": 0, "prev_hash": "", "hash": old_hash}
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, {', '.join(old_columns)})")
        db.execute(
            f"INSERT INTO audit_log ({', '.join(old_columns)}) VALUES ({', '.join('?' for _ in old_columns)})",
            [values[c] for c in old_columns],
        )
    db.close()

    log = open_audit_log(f"sqlite:///{path}")
    try:
        log.append(
            AuditRecord(
                event=AuditEvent.STARTED, task_id="task-new", actor="bob", approved_by="typed", approval_verified=False
            )
        )
        records = sorted(log.query(), key=lambda record: record.seq or 0)
        report = log.verify()
    finally:
        log.close()
    assert [(r.task_id, r.approval_verified) for r in records] == [("task-old", None), ("task-new", False)]
    assert report.ok and report.records == 2


def test_the_hash_chain_verifies(agent: CloudAgent) -> None:
    for command in ("echo 1", "rm -rf /", "touch /tmp/ca-never", "false"):
        agent.run({"type": "shell", "command": command})
    agent.run({"type": "nope"})

    report = agent.audit.verify()

    assert report.ok, report
    assert report.records == 2 + 1 + 1 + 2 + 1  # echo and false: started + finished; the others one
    assert report.first_bad_seq is None


def test_appends_from_many_threads_keep_one_chain(agent: CloudAgent) -> None:
    def work(n: int) -> None:
        for i in range(5):
            agent.run({"type": "shell", "command": f"echo {n}-{i}"})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    report = agent.audit.verify()
    assert report.ok and report.records == 4 * 5 * 2


def test_query_filters(agent: CloudAgent) -> None:
    agent.run({"type": "shell", "command": "echo one"}, actor="carol")
    agent.run({"agent_id": "agent-prod-001", "type": "shell", "command": "rm -rf /"}, actor="dave")

    assert {r.actor for r in agent.audit.query(AuditQuery(event="denied"))} == {"dave"}
    assert {r.agent_id for r in agent.audit.query(AuditQuery(agent_id="agent-prod-001"))} == {"agent-prod-001"}
    assert len(agent.audit.query(AuditQuery(actor="carol"))) == 2
    assert len(agent.audit.query(AuditQuery(limit=1))) == 1
    newest, older = agent.audit.query(AuditQuery(limit=2))
    assert (newest.seq or 0) > (older.seq or 0)
    assert agent.audit.query(AuditQuery(since=datetime.now(UTC) + timedelta(minutes=1))) == []


def test_update_and_delete_through_sql_are_refused(agent: CloudAgent, state_dir: Path) -> None:
    agent.run({"type": "shell", "command": "echo x"})
    with sqlite3.connect(state_dir / "audit.sqlite3") as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_log SET command = 'echo nothing to see' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_log WHERE seq = 1")
    db.close()
    assert agent.audit.verify().ok


def _tamper(path: Path, *statements: str) -> None:
    """Change the log behind its back: drop the append-only triggers first, as an intruder would."""
    db = sqlite3.connect(path)
    try:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("DROP TRIGGER audit_log_no_delete")
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def test_an_edited_record_is_caught(agent: CloudAgent, state_dir: Path) -> None:
    for command in ("echo a", "echo b", "echo c"):
        agent.run({"type": "shell", "command": command})
    assert agent.audit.verify().ok

    _tamper(state_dir / "audit.sqlite3", "UPDATE audit_log SET command = 'echo innocent' WHERE seq = 3")

    report = agent.audit.verify()
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.problem == "the record was changed after it was written"


def test_a_deleted_record_is_caught(agent: CloudAgent, state_dir: Path) -> None:
    for command in ("echo a", "echo b", "echo c"):
        agent.run({"type": "shell", "command": command})

    _tamper(state_dir / "audit.sqlite3", "DELETE FROM audit_log WHERE seq = 2")

    report = agent.audit.verify()
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.problem == "the link to the previous record is broken"


def test_a_rehashed_forgery_is_caught_at_the_next_link(agent: CloudAgent, state_dir: Path) -> None:
    for command in ("echo a", "echo b"):
        agent.run({"type": "shell", "command": command})
    (victim,) = [r for r in agent.audit.query(AuditQuery(limit=10)) if r.seq == 2]
    forged = victim.model_copy(update={"command": "echo forged"})
    forged = forged.model_copy(update={"hash": forged.compute_hash()})

    _tamper(
        state_dir / "audit.sqlite3",
        f"UPDATE audit_log SET command = 'echo forged', hash = '{forged.hash}' WHERE seq = 2",
    )

    report = agent.audit.verify()
    assert not report.ok and report.first_bad_seq == 3


# -- secrets --------------------------------------------------------------------------------------

PG_PASSWORD = f"pg-pass-{uuid.uuid4().hex[:10]}"
SHELL_PASSWORD = f"hunter2-{uuid.uuid4().hex[:10]}"
BEARER = f"tok-{uuid.uuid4().hex}"


@pytest.fixture
def secret_agent(config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudAgent]:
    """Agent ``agent-vault-001`` whose postgres connection takes its password from ``${...}``."""
    monkeypatch.setenv("CA_TEST_PG_PASSWORD", PG_PASSWORD)
    connections = {
        **LOCAL_CONNECTIONS,
        "postgres": {
            "default": {
                "host": "127.0.0.1",
                "port": 5432,
                "dbname": "test",
                "user": "postgres",
                "password": "${CA_TEST_PG_PASSWORD}",
            },
        },
    }
    write_environment(config_dir, "vault", agents=["agent-vault-001"], connections=connections)
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'vault.sqlite3'}")) as running:
        yield running


def test_secrets_never_reach_results_or_audit_records(
    secret_agent: CloudAgent, state_dir: Path, shared_dir: Path
) -> None:
    config_file = shared_dir / "app.yml"
    config_file.write_text(f"database:\n  password: {PG_PASSWORD}\n")
    config_file.chmod(0o644)
    vault = {"agent_id": "agent-vault-001"}
    tasks = [
        # the connection's password, printed by a shell task before any postgres task ran
        {**vault, "type": "shell", "command": f"cat {config_file}"},
        # ... and selected by a postgres task
        {**vault, "type": "postgres", "command": f"SELECT '{PG_PASSWORD}' AS leaked"},
        # a password written in the command, which the command prints
        {**vault, "type": "shell", "command": f"PGPASSWORD={SHELL_PASSWORD} env | grep PGPASSWORD"},
        {
            **vault,
            "type": "shell",
            "command": f"PGPASSWORD='{SHELL_PASSWORD}' psql -h 127.0.0.1 -U postgres -d test -c 'SELECT 1 AS one'",
        },
        # an Authorization header (to a port where nothing listens)
        {
            **vault,
            "type": "api",
            "timeout": 1,
            "params": {"url": "http://127.0.0.1:1/", "headers": {"Authorization": f"Bearer {BEARER}"}},
        },
        # a denied task that carries one
        {**vault, "type": "shell", "command": f"PGPASSWORD={SHELL_PASSWORD} psql -c 'DROP DATABASE test'"},
    ]

    results = [secret_agent.run(task) for task in tasks]

    assert [result.status for result in results] == [
        TaskStatus.SUCCEEDED,
        TaskStatus.SUCCEEDED,
        TaskStatus.SUCCEEDED,
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.DENIED,
    ]
    assert "password: ***" in results[0].output
    assert results[1].data["result_sets"][0]["rows"] == [["***"]]
    assert results[2].output == "PGPASSWORD=***\n"
    assert " one " in results[3].output
    everything = json.dumps([result.model_dump(mode="json") for result in results])
    everything += json.dumps(_raw_rows(state_dir / "vault.sqlite3"), default=str)
    for secret in (PG_PASSWORD, SHELL_PASSWORD, BEARER):
        assert secret not in everything


# -- no audit, no task ----------------------------------------------------------------------------


def test_a_task_is_refused_and_not_run_when_the_audit_log_is_unavailable(
    config_dir: Path, state_dir: Path, tmp_path: Path
) -> None:
    audit = open_audit_log(f"sqlite:///{state_dir / 'closed.sqlite3'}")
    agent = CloudAgent(EnvironmentCatalog.load(config_dir), audit)
    marker = tmp_path / "ran"
    try:
        audit.close()  # the store goes away under a running agent

        write = agent.run({"type": "shell", "command": f"touch {marker}"}, approval=_approval(APPROVED))
        read = agent.run({"type": "shell", "command": f"echo hi > /dev/null; ls {tmp_path}"})
        denied = agent.run({"type": "shell", "command": "rm -rf /"})
        rejected = agent.run({"type": "no-such-type"})
    finally:
        agent.close()

    for result in (write, read):
        assert result.status is TaskStatus.FAILED
        assert result.error is not None and result.error.code == "audit_unavailable"
        assert "tasks do not run unaudited" in result.error.message
        assert result.output is None and result.exit_code is None
    assert not marker.exists()
    assert denied.status is TaskStatus.DENIED
    assert denied.error is not None and denied.error.code == "audit_unavailable"
    assert rejected.status is TaskStatus.FAILED and rejected.notes


# -- PostgreSQL audit log -------------------------------------------------------------------------


@pytest.fixture
def audit_database() -> Iterator[str]:
    """A database of its own for the audit table, dropped afterwards."""
    name = f"ca_audit_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.integration
def test_postgres_audit_log_appends_queries_verifies_and_refuses_changes(audit_database: str, config_dir: Path) -> None:
    log = open_audit_log(audit_database)
    assert isinstance(log, PostgresAuditLog)
    with CloudAgent(EnvironmentCatalog.load(config_dir), log) as agent:
        agent.run({"type": "shell", "command": "echo pg-audited"}, task_id="task-pg-1")
        agent.run({"type": "redis", "command": "FLUSHALL"}, task_id="task-pg-2")
        typed = {"approved_by": "typed in a form", "verified": False}
        agent.run({"type": "shell", "command": "echo pg-approved"}, task_id="task-pg-3", approval=_approval(typed))

        assert [r.event.value for r in _events(agent, "task-pg-1")] == ["started", "finished"]
        assert [r.event.value for r in _events(agent, "task-pg-2")] == ["denied"]
        assert {r.approval_verified for r in _events(agent, "task-pg-1")} == {None}
        assert {(r.approved_by, r.approval_verified) for r in _events(agent, "task-pg-3")} == {
            ("typed in a form", False)
        }
        assert log.verify().ok and log.verify().records == 5

        with psycopg.connect(audit_database, autocommit=True) as db:
            for statement in (
                "UPDATE cloud_agent_audit SET command = 'x'",
                "DELETE FROM cloud_agent_audit",
                "TRUNCATE cloud_agent_audit",
            ):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    db.execute(statement)
            db.execute("ALTER TABLE cloud_agent_audit DISABLE TRIGGER USER")
            db.execute("UPDATE cloud_agent_audit SET command = 'echo innocent' WHERE seq = 2")

        report = log.verify()
        assert not report.ok and report.first_bad_seq == 2


@pytest.mark.integration
def test_postgres_audit_log_unavailable_means_no_task(audit_database: str, config_dir: Path, tmp_path: Path) -> None:
    name = audit_database.rsplit("/", 1)[1]
    marker = tmp_path / "ran"
    with CloudAgent(EnvironmentCatalog.load(config_dir), open_audit_log(audit_database)) as agent:
        assert agent.run({"type": "shell", "command": "echo before"}).ok

        with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            refused = agent.run({"type": "shell", "command": f"touch {marker}"}, approval=_approval(APPROVED))
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

        assert refused.status is TaskStatus.FAILED
        assert refused.error is not None and refused.error.code == "audit_unavailable"
        assert not marker.exists()

        # once the store is back, tasks run (and are audited) again
        after = agent.run({"type": "shell", "command": "echo after"}, task_id="task-after")
        assert after.ok
        assert [r.event.value for r in _events(agent, "task-after")] == ["started", "finished"]
        assert agent.audit.verify().ok


def _approval(given: dict | None) -> Approval | None:
    """An approval handed to the engine beside the task, as the CLI, the task API and the fix step do."""
    return Approval.model_validate(given) if given is not None else None
