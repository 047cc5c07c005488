"""``postgres``: SQL on PostgreSQL through psycopg 3.

Each statement of the command runs in turn inside one transaction — ``READ ONLY`` for ``read``
tasks, rolled back at the end, so the server itself refuses writes the policy did not see — with
``statement_timeout`` set from the task's remaining time and a client-side cancel as a backstop.
Row-returning SELECTs stream through a server-side cursor: at most ``max_rows`` come to the agent
and the rest are counted on the server (``MOVE FORWARD ALL``), never loaded.

Connection settings (``deployments/<env>/connections.yaml``, type ``postgres``): ``dsn`` or
``host``, ``port``, ``dbname``, ``user``, ``password``, ``sslmode``, ``connect_timeout``; and the
read-only credential read tasks use, ``read_user`` and ``read_password`` (or a whole ``read_dsn``),
whose rights are checked at first use (``executors._credentials``).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from contract import ResultSet, TaskResult, TaskSpec
from executors._base import Executor, RunContext
from executors._config import Connection
from executors._credentials import READ_KEYS, Credential, ReadCredentials
from executors._errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ExecutorError,
    NotFound,
    PermissionDenied,
    QueryFailed,
    TaskTimedOut,
)
from executors._pool import ConnectionPool, PerConnection
from executors._sql import jsonable, result_sets_data, split_statements

_CONNECTION_KEYS = (
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "options",
    "application_name",
)
_FETCH_BATCH = 1000
#: Time after the deadline at which the client cancels a statement the server did not stop.
_CANCEL_BACKSTOP_SECONDS = 1.0


class PostgresExecutor(Executor):
    type = "postgres"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pools: PerConnection[ConnectionPool[psycopg.Connection]] = PerConnection(ConnectionPool.close)
        self._credentials = ReadCredentials(self.environment, self.type, read_settings)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        statements = split_statements(spec.command)
        credential = self._credentials.choose(ctx.connection(), ctx.risk, ctx.notes)
        with self._pool(credential).lease() as lease:
            db = lease.connection
            self._credentials.check_rights(credential, ctx.notes, lambda: rights_beyond_read(db))
            backstop = threading.Timer(ctx.remaining() + _CANCEL_BACKSTOP_SECONDS, _cancel_quietly, [db])
            backstop.daemon = True
            backstop.start()
            try:
                result_sets = self._run_statements(db, statements, ctx)
            except psycopg.Error as exc:
                _rollback_or_discard(db, lease)
                raise _translate(exc, ctx) from exc
            finally:
                backstop.cancel()
        truncated = any(rs.truncated for rs in result_sets)
        original_rows = max((rs.row_count for rs in result_sets if rs.truncated), default=None)
        return ctx.result(data=result_sets_data(result_sets), truncated=truncated, original_rows=original_rows)

    def _run_statements(self, db: psycopg.Connection, statements: list[str], ctx: RunContext) -> list[ResultSet]:
        timeout_ms = max(1, int(ctx.remaining() * 1000))
        db.execute(
            f"BEGIN {'READ ONLY' if ctx.read_only else 'READ WRITE'}; "
            f"SET LOCAL statement_timeout = {timeout_ms}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {timeout_ms + 5000}"
        )
        result_sets = []
        for statement in statements:
            ctx.check_deadline()
            # Both paths use the extended query protocol, under which the server refuses a string
            # holding more than one statement: what runs is exactly what the policy classified.
            if ctx.read_only:
                result_sets.append(_stream(db, statement, ctx))
            else:
                result_sets.append(_execute(db, statement, ctx))
        db.execute("ROLLBACK" if ctx.read_only else "COMMIT")
        # A task's session outlives it in the pool: session-level state it left (advisory locks,
        # settings, prepared statements, LISTEN) would hold others up or leak into the next task.
        db.execute("DISCARD ALL")
        return result_sets

    def _pool(self, credential: Credential) -> ConnectionPool[psycopg.Connection]:
        connection = credential.connection
        return self._pools.get(
            credential.pool_key, lambda: ConnectionPool(lambda: _connect(connection), lambda db: db.close())
        )

    def close(self) -> None:
        self._pools.close()


def read_settings(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings of a connection's read credential (same server and database), if it has one."""
    user, dsn = settings.get("read_user"), settings.get("read_dsn")
    if not user and not dsn:
        return None
    kept = {key: value for key, value in settings.items() if key not in READ_KEYS["postgres"]}
    if dsn:
        # A whole DSN of its own: none of the main credential's connection keys may override it.
        read = {key: value for key, value in kept.items() if key not in (*_CONNECTION_KEYS, "dsn", "url")}
        read["dsn"] = dsn
    else:
        read = {key: value for key, value in kept.items() if key not in ("user", "password")}
        main_dsn = read.pop("dsn", None) or read.pop("url", None)
        if main_dsn:  # the main user and password must not come along inside it
            parts = {k: v for k, v in conninfo_to_dict(main_dsn).items() if k not in ("user", "password")}
            read["dsn"] = make_conninfo("", **parts)
    if user:
        read["user"] = user
    if settings.get("read_password"):
        read["password"] = settings["read_password"]
    return read


#: Roles whose members can leave the database or act on other sessions.
_RISKY_ROLES = (
    "pg_write_server_files",
    "pg_read_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_write_all_data",
)
_RIGHTS_QUERY = r"""
SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
       ARRAY(SELECT b.rolname::text FROM pg_roles b
             WHERE b.rolname = ANY(%(risky)s) AND pg_has_role(r.oid, b.oid, 'MEMBER') ORDER BY 1),
       current_setting('default_transaction_read_only'),
       ARRAY(SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%%'
               AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
             ORDER BY 1 LIMIT 6),
       ARRAY(SELECT n.nspname::text FROM pg_namespace n
             WHERE n.nspname NOT LIKE 'pg\_%%' AND has_schema_privilege(r.oid, n.oid, 'CREATE') ORDER BY 1),
       has_database_privilege(r.oid, current_database(), 'CREATE')
FROM pg_roles r WHERE r.rolname = current_user
"""


def rights_beyond_read(db: psycopg.Connection) -> list[str]:
    """What the session's role may do beyond reading: attributes, roles, table and schema rights."""
    row = db.execute(_RIGHTS_QUERY, {"risky": list(_RISKY_ROLES)}).fetchone()
    if row is None:
        return ["not be found in pg_roles (current_user)"]
    superuser, createrole, createdb, bypassrls, replication, roles, read_only, tables, schemas, create_db = row
    found = [
        f"{what} ({attribute})"
        for flag, what, attribute in (
            (superuser, "do anything", "SUPERUSER"),
            (createrole, "create roles", "CREATEROLE"),
            (createdb, "create databases", "CREATEDB"),
            (bypassrls, "bypass row security", "BYPASSRLS"),
            (replication, "start replication", "REPLICATION"),
        )
        if flag
    ]
    if roles and not superuser:
        found.append(f"act as member of {', '.join(roles)}")
    if read_only != "on":
        found.append("start writable transactions (default_transaction_read_only is off)")
    if tables and not superuser:
        more = " and more" if len(tables) > 5 else ""
        found.append(f"change tables ({', '.join(tables[:5])}{more}: more than SELECT)")
    if schemas and not superuser:
        found.append(f"create objects in schema {', '.join(schemas)}")
    if create_db and not superuser:
        found.append("create schemas in this database")
    return found


def _connect(connection: Connection) -> psycopg.Connection:
    settings = dict(connection.settings)
    dsn = settings.pop("dsn", None) or settings.pop("url", None) or ""
    kwargs = {key: settings[key] for key in _CONNECTION_KEYS if settings.get(key) not in (None, "")}
    kwargs.setdefault("application_name", "cloud-agent")
    timeout = int(settings.get("connect_timeout", 5))
    where = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 5432)}"
    try:
        # No server-side prepared statements: tasks are one-off statements, and the DISCARD ALL
        # that resets a session between tasks would drop the ones psycopg believes it still has.
        return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout, prepare_threshold=None, **kwargs)
    except psycopg.OperationalError as exc:
        message = _first_line(exc)
        if (
            "password authentication failed" in message
            or "no password supplied" in message
            or ("authentication failed" in message)
        ):
            raise AuthenticationFailed(
                f"PostgreSQL at {where} rejected the credentials of connection {connection.name!r}: {message}"
            ) from exc
        if re.search(r'database ".*" does not exist', message):
            raise NotFound(f"PostgreSQL at {where}: {message}") from exc
        if "role" in message and "does not exist" in message:
            raise AuthenticationFailed(f"PostgreSQL at {where}: {message}") from exc
        raise BackendUnavailable(
            f"cannot reach PostgreSQL at {where} (connection {connection.name!r}): {message}"
        ) from exc


def _stream(db: psycopg.Connection, statement: str, ctx: RunContext) -> ResultSet:
    """A read-only statement, streamed: ``max_rows`` kept, the rest counted and dropped."""
    max_rows = ctx.limits.max_rows
    rows: list[list[Any]] = []
    total = 0
    with db.cursor() as cursor:
        for row in cursor.stream(statement, size=_FETCH_BATCH):
            total += 1
            if total <= max_rows:
                rows.append([jsonable(value) for value in row])
        columns = [column.name for column in cursor.description] if cursor.description else _describe(db, statement)
    return ResultSet(statement=statement, columns=columns, rows=rows, row_count=total, truncated=total > len(rows))


def _describe(db: psycopg.Connection, statement: str) -> list[str]:
    """The columns of a statement that returned no row (psycopg's stream() then has none).

    The statement is prepared (parsed and planned, not run) as the unnamed statement and described.
    """
    pgconn = db.pgconn
    encoding = db.info.encoding
    prepared = pgconn.prepare(b"", statement.encode(encoding))
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        return []
    described = pgconn.describe_prepared(b"")
    return [(described.fname(i) or b"").decode(encoding) for i in range(described.nfields)]


def _execute(db: psycopg.Connection, statement: str, ctx: RunContext) -> ResultSet:
    max_rows = ctx.limits.max_rows
    with db.cursor() as cursor:
        with db.pipeline():  # pipeline mode always uses the extended protocol: one statement
            cursor.execute(statement, prepare=False)
        if cursor.description is None:
            return ResultSet(statement=statement, row_count=max(cursor.rowcount, 0))
        columns = [column.name for column in cursor.description]
        fetched = cursor.fetchmany(max_rows)
        total = max(cursor.rowcount, len(fetched))
    rows = [[jsonable(v) for v in row] for row in fetched]
    return ResultSet(statement=statement, columns=columns, rows=rows, row_count=total, truncated=total > len(rows))


def _rollback_or_discard(db: psycopg.Connection, lease: Any) -> None:
    if db.broken or db.closed:
        lease.discard()
        return
    try:
        db.execute("ROLLBACK")
    except psycopg.Error:
        lease.discard()


def _cancel_quietly(db: psycopg.Connection) -> None:
    with contextlib.suppress(psycopg.Error, AttributeError):
        db.cancel_safe(timeout=2.0)


def _translate(exc: psycopg.Error, ctx: RunContext) -> ExecutorError:
    message = _first_line(exc)
    if isinstance(exc, pg_errors.QueryCanceled):
        return TaskTimedOut(f"PostgreSQL cancelled the statement at the task's {ctx.timeout:g} s timeout ({message})")
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return PermissionDenied(f"{message}: the task ran read-only; a change needs a write task with an approval")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return PermissionDenied(message)
    if isinstance(exc, psycopg.OperationalError) and (ctx.remaining() <= 0):
        return TaskTimedOut(f"PostgreSQL did not answer within the task's {ctx.timeout:g} s timeout ({message})")
    if isinstance(exc, psycopg.OperationalError):
        return BackendUnavailable(f"PostgreSQL connection lost: {message}")
    diag = getattr(exc, "diag", None)
    position = f" (at character {diag.statement_position})" if diag is not None and diag.statement_position else ""
    return QueryFailed(f"{message}{position}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
