"""The append-only audit log: every task, allowed or denied, who/what/where/when/outcome.

Records are hash-chained (each carries the SHA-256 of the previous record and of itself), the
tables refuse UPDATE and DELETE with triggers, and ``verify()`` walks the chain, so an edit made
behind the log's back is detected. SQLite by default, PostgreSQL by configuration
(``CLOUD_AGENT_AUDIT_URL=postgresql://...``).

A task records ``started`` before it runs and ``finished`` after: a record that could not be
written means the task does not run (``AuditUnavailable``), and a ``started`` without its
``finished`` is a task whose process died mid-way.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from executors._errors import AuditUnavailable, ConfigurationError

HOST = socket.gethostname()
_COLUMNS = (
    "recorded_at",
    "event",
    "task_id",
    "actor",
    "agent_id",
    "environment",
    "host",
    "task_type",
    "command",
    "params",
    "risk",
    "status",
    "error_code",
    "message",
    "approved_by",
    "duration_ms",
    "output_digest",
    "output_bytes",
    "truncated",
    "prev_hash",
    "hash",
    "approval_verified",
)

_NUMERIC_COLUMNS = frozenset({"duration_ms", "output_bytes", "truncated"})
#: Columns added after the first release: tables created before get them at open, and records
#: that predate them (the column is NULL) hash as they did when they were written.
_ADDED_COLUMNS = ("approval_verified",)


class AuditEvent(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    DENIED = "denied"
    APPROVAL_REQUIRED = "approval_required"
    #: The task never reached policy: malformed, unknown type or agent, misconfigured connection.
    REJECTED = "rejected"
    #: A request to the task API: ``actor`` is the token's name, ``command`` the method and path,
    #: ``status`` the HTTP status (the tasks it runs have records of their own).
    API_REQUEST = "api_request"


class AuditRecord(BaseModel):
    seq: int | None = None
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event: AuditEvent
    task_id: str
    actor: str
    agent_id: str | None = None
    environment: str | None = None
    host: str = HOST
    task_type: str | None = None
    #: The command with inline credentials masked.
    command: str = ""
    #: The params with secret keys and secret values masked.
    params: dict[str, Any] = Field(default_factory=dict)
    risk: str | None = None
    status: str | None = None
    error_code: str | None = None
    message: str | None = None
    approved_by: str | None = None
    #: ``False`` when ``approved_by`` is a name nobody checked (typed in the Prefect UI form).
    approval_verified: bool | None = None
    duration_ms: float | None = None
    output_digest: str | None = None
    output_bytes: int | None = None
    truncated: bool = False
    prev_hash: str = ""
    hash: str = ""

    def chained_to(self, prev_hash: str) -> AuditRecord:
        record = self.model_copy(update={"prev_hash": prev_hash, "hash": ""})
        return record.model_copy(update={"hash": record.compute_hash()})

    def compute_hash(self) -> str:
        body = self.model_dump(mode="json", exclude={"seq", "hash"})
        for column in _ADDED_COLUMNS:
            if body[column] is None:
                del body[column]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def as_row(self) -> tuple[Any, ...]:
        values = self.model_dump(mode="json")
        values["params"] = json.dumps(values["params"], sort_keys=True, ensure_ascii=False)
        values["truncated"] = int(values["truncated"])
        return tuple(values[column] for column in _COLUMNS)

    @classmethod
    def from_row(cls, seq: int, row: tuple[Any, ...]) -> AuditRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["params"] = json.loads(values["params"] or "{}")
        values["truncated"] = bool(values["truncated"])
        if values["approval_verified"] is not None:  # SQLite keeps a boolean as 0 or 1
            values["approval_verified"] = bool(values["approval_verified"])
        return cls.model_validate({"seq": seq, **values})


@dataclass(frozen=True)
class AuditQuery:
    task_id: str | None = None
    agent_id: str | None = None
    environment: str | None = None
    event: str | None = None
    actor: str | None = None
    since: datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class ChainReport:
    records: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""


class AuditLog(ABC):
    """Append, list, verify. There is deliberately no update and no delete."""

    @abstractmethod
    def append(self, record: AuditRecord) -> AuditRecord:
        """Store ``record`` at the end of the chain. Raises ``AuditUnavailable`` on failure."""

    @abstractmethod
    def query(self, query: AuditQuery | None = None) -> list[AuditRecord]:
        """Records, newest first."""

    @abstractmethod
    def _all_in_order(self) -> Iterator[AuditRecord]: ...

    def verify(self) -> ChainReport:
        """Walk the chain from the first record and check every link and every digest."""
        previous = ""
        count = 0
        for record in self._all_in_order():
            count += 1
            if record.prev_hash != previous:
                return ChainReport(count, False, record.seq, "the link to the previous record is broken")
            if record.compute_hash() != record.hash:
                return ChainReport(count, False, record.seq, "the record was changed after it was written")
            previous = record.hash
        return ChainReport(count, True)

    def close(self) -> None:
        pass


def _sqlite_type(column: str) -> str:
    return "NUMERIC" if column in _NUMERIC_COLUMNS or column in _ADDED_COLUMNS else "TEXT"


def _postgres_type(column: str) -> str:
    if column == "approval_verified":
        return "BOOLEAN"
    return "DOUBLE PRECISION" if column in _NUMERIC_COLUMNS else "TEXT"


_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {_sqlite_type(c)}" for c in _COLUMNS)}
);
CREATE INDEX IF NOT EXISTS audit_log_task ON audit_log(task_id);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(recorded_at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class SQLiteAuditLog(AuditLog):
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SQLITE_SCHEMA)
            self._add_missing_columns()
        except (sqlite3.Error, OSError) as exc:
            raise AuditUnavailable(f"cannot open the audit log at {path}: {exc}") from exc

    def _add_missing_columns(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(audit_log)")}
        for column in _ADDED_COLUMNS:
            if column not in present:
                try:
                    self._db.execute(f"ALTER TABLE audit_log ADD COLUMN {column} {_sqlite_type(column)}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise

    def append(self, record: AuditRecord) -> AuditRecord:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                    chained = record.chained_to(row[0] if row else "")
                    cursor = self._db.execute(
                        f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                        chained.as_row(),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise AuditUnavailable(f"cannot write the audit log at {self.path}: {exc}") from exc
        return chained.model_copy(update={"seq": cursor.lastrowid})

    def query(self, query: AuditQuery | None = None) -> list[AuditRecord]:
        query = query or AuditQuery()
        where, args = _where(query, "?")
        sql = f"SELECT seq, {', '.join(_COLUMNS)} FROM audit_log {where} ORDER BY seq DESC LIMIT ? OFFSET ?"
        with self._lock:
            try:
                rows = self._db.execute(sql, [*args, query.limit, query.offset]).fetchall()
            except sqlite3.Error as exc:
                raise AuditUnavailable(f"cannot read the audit log at {self.path}: {exc}") from exc
        return [AuditRecord.from_row(row[0], row[1:]) for row in rows]

    def _all_in_order(self) -> Iterator[AuditRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT seq, {', '.join(_COLUMNS)} FROM audit_log ORDER BY seq").fetchall()
        for row in rows:
            yield AuditRecord.from_row(row[0], row[1:])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_POSTGRES_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cloud_agent_audit (
    seq BIGSERIAL PRIMARY KEY,
    {", ".join(f"{c} {_postgres_type(c)}" for c in _COLUMNS)}
);
{"".join(f"ALTER TABLE cloud_agent_audit ADD COLUMN IF NOT EXISTS {c} {_postgres_type(c)};" for c in _ADDED_COLUMNS)}
CREATE INDEX IF NOT EXISTS cloud_agent_audit_task ON cloud_agent_audit(task_id);
CREATE OR REPLACE FUNCTION cloud_agent_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'cloud_agent_audit_no_change') THEN
        CREATE TRIGGER cloud_agent_audit_no_change BEFORE UPDATE OR DELETE ON cloud_agent_audit
        FOR EACH ROW EXECUTE FUNCTION cloud_agent_audit_append_only();
        CREATE TRIGGER cloud_agent_audit_no_truncate BEFORE TRUNCATE ON cloud_agent_audit
        FOR EACH STATEMENT EXECUTE FUNCTION cloud_agent_audit_append_only();
    END IF;
END $$;
"""


class PostgresAuditLog(AuditLog):
    def __init__(self, dsn: str):
        import psycopg

        self._psycopg = psycopg
        self._dsn = dsn
        self._lock = threading.Lock()
        self._db: Any = None
        with self._connection() as db:
            db.execute("SELECT pg_advisory_lock(hashtext('cloud_agent_audit_schema'))")
            try:
                db.execute(_POSTGRES_SCHEMA)
            finally:
                db.execute("SELECT pg_advisory_unlock(hashtext('cloud_agent_audit_schema'))")

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            try:
                if self._db is None or self._db.closed:
                    self._db = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
                yield self._db
            except self._psycopg.Error as exc:
                # A connection that failed at the connection level (a terminated backend, a rollback
                # that could not be sent) may not say it is broken and still hold the failed command
                # ("another command is already in progress"): the next call starts on a new one.
                if self._db is not None and (self._db.broken or isinstance(exc, self._psycopg.OperationalError)):
                    with suppress(self._psycopg.Error):
                        self._db.close()
                    self._db = None
                raise AuditUnavailable(f"the PostgreSQL audit log is unavailable: {exc}") from exc

    def append(self, record: AuditRecord) -> AuditRecord:
        placeholders = ", ".join("%s" for _ in _COLUMNS)
        with self._connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(hashtext('cloud_agent_audit'))")
            row = db.execute("SELECT hash FROM cloud_agent_audit ORDER BY seq DESC LIMIT 1").fetchone()
            chained = record.chained_to(row[0] if row else "")
            seq = db.execute(
                f"INSERT INTO cloud_agent_audit ({', '.join(_COLUMNS)}) VALUES ({placeholders}) RETURNING seq",
                chained.as_row(),
            ).fetchone()[0]
        return chained.model_copy(update={"seq": seq})

    def query(self, query: AuditQuery | None = None) -> list[AuditRecord]:
        query = query or AuditQuery()
        where, args = _where(query, "%s")
        sql = f"SELECT seq, {', '.join(_COLUMNS)} FROM cloud_agent_audit {where} ORDER BY seq DESC LIMIT %s OFFSET %s"
        with self._connection() as db:
            rows = db.execute(sql, [*args, query.limit, query.offset]).fetchall()
        return [AuditRecord.from_row(row[0], row[1:]) for row in rows]

    def _all_in_order(self) -> Iterator[AuditRecord]:
        with self._connection() as db:
            rows = db.execute(f"SELECT seq, {', '.join(_COLUMNS)} FROM cloud_agent_audit ORDER BY seq").fetchall()
        for row in rows:
            yield AuditRecord.from_row(row[0], row[1:])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()


def _where(query: AuditQuery, marker: str) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column in ("task_id", "agent_id", "environment", "event", "actor"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"{column} = {marker}")
            args.append(value)
    if query.since is not None:
        clauses.append(f"recorded_at >= {marker}")
        args.append(query.since.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def open_audit_log(url: str) -> AuditLog:
    """``sqlite:///path/to/audit.db`` or ``postgresql://user@host/db``."""
    path = sqlite_path(url)
    if path is not None:
        return SQLiteAuditLog(path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditLog(url)
    raise ConfigurationError(f"unsupported audit log URL {url!r}: use sqlite:///PATH or postgresql://...")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` audit URL, ``None`` for other stores."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).expanduser()
    return None
