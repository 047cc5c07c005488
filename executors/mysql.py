"""``mysql``: SQL on MySQL and MariaDB through PyMySQL.

Statements run one at a time (the connection never enables multi-statements, so what runs is what
the policy classified) inside ``START TRANSACTION READ ONLY`` for ``read`` tasks. The server-side
statement timeout comes from the task's remaining time — ``max_statement_time`` on MariaDB,
``max_execution_time`` on MySQL — and a ``KILL QUERY`` from a second connection backs it up.
Rows are read unbuffered: ``max_rows`` kept, the rest counted.

Connection settings (type ``mysql``): ``host``, ``port``, ``user``, ``password``, ``database``,
``unix_socket``, ``connect_timeout``, ``ssl`` (a mapping of PyMySQL ssl options).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import ER

from executors._base import Executor, RunContext
from executors._config import Connection
from executors._errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ExecutorError,
    NotFound,
    PermissionDenied,
    QueryFailed,
    TaskTimedOut,
)
from executors._pool import ConnectionPool, Lease, PerConnection
from executors._spec import TaskResult, TaskSpec
from executors._sql import ResultSet, jsonable, result_sets_data, split_statements

_FETCH_BATCH = 1000
_KILL_BACKSTOP_SECONDS = 1.0
# Server error numbers that mean "the statement hit its time limit".
_TIMEOUT_ERRORS = {1969, 3024, ER.QUERY_INTERRUPTED}
_AUTH_ERRORS = {ER.ACCESS_DENIED_ERROR, 1698, ER.DBACCESS_DENIED_ERROR}
_PERMISSION_ERRORS = {ER.TABLEACCESS_DENIED_ERROR, ER.COLUMNACCESS_DENIED_ERROR, 1227, 1792, 1044}
_CONNECT_ERRORS = {2003, 2005, 2006, 2013, 2055}


@dataclass
class _Session:
    db: pymysql.connections.Connection
    mariadb: bool


class MySQLExecutor(Executor):
    type = "mysql"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pools: PerConnection[ConnectionPool[_Session]] = PerConnection(ConnectionPool.close)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        statements = split_statements(spec.command)
        connection = ctx.connection()
        with self._pool(connection).lease() as lease:
            session = lease.connection
            backstop = threading.Timer(
                ctx.remaining() + _KILL_BACKSTOP_SECONDS, _kill_query, [connection, session.db.thread_id()]
            )
            backstop.daemon = True
            backstop.start()
            try:
                result_sets = self._run_statements(session, statements, ctx)
            except pymysql.MySQLError as exc:
                _rollback_or_discard(session, lease)
                raise _translate(exc, ctx, connection) from exc
            finally:
                backstop.cancel()
        truncated = any(rs.truncated for rs in result_sets)
        original_rows = max((rs.row_count for rs in result_sets if rs.truncated), default=None)
        return ctx.result(data=result_sets_data(result_sets), truncated=truncated, original_rows=original_rows)

    def _run_statements(self, session: _Session, statements: list[str], ctx: RunContext) -> list[ResultSet]:
        db = session.db
        with db.cursor(pymysql.cursors.Cursor) as cursor:
            remaining = max(ctx.remaining(), 0.001)
            if session.mariadb:
                cursor.execute(f"SET SESSION max_statement_time = {remaining:.3f}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {max(1, int(remaining * 1000))}")
            cursor.execute("START TRANSACTION READ ONLY" if ctx.read_only else "START TRANSACTION")
        result_sets = []
        for statement in statements:
            ctx.check_deadline()
            result_sets.append(_execute(db, statement, ctx))
        with db.cursor(pymysql.cursors.Cursor) as cursor:
            cursor.execute("ROLLBACK" if ctx.read_only else "COMMIT")
        return result_sets

    def _pool(self, connection: Connection) -> ConnectionPool[_Session]:
        return self._pools.get(
            connection.name, lambda: ConnectionPool(lambda: _connect(connection), lambda s: s.db.close())
        )

    def close(self) -> None:
        self._pools.close()


def _connect_kwargs(connection: Connection) -> dict[str, Any]:
    settings = connection.settings
    kwargs: dict[str, Any] = {
        "host": settings.get("host", "127.0.0.1"),
        "port": int(settings.get("port", 3306)),
        "user": settings.get("user", "root"),
        "password": settings.get("password") or "",
        "connect_timeout": float(settings.get("connect_timeout", 5)),
        "charset": settings.get("charset", "utf8mb4"),
        "autocommit": True,
    }
    for key in ("database", "unix_socket", "ssl"):
        if settings.get(key):
            kwargs[key] = settings[key]
    if settings.get("dbname") and "database" not in kwargs:
        kwargs["database"] = settings["dbname"]
    return kwargs


def _connect(connection: Connection) -> _Session:
    kwargs = _connect_kwargs(connection)
    where = f"{kwargs['host']}:{kwargs['port']}"
    try:
        db = pymysql.connect(**kwargs)
    except pymysql.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        message = exc.args[1] if len(exc.args) > 1 else str(exc)
        if code in _AUTH_ERRORS:
            raise AuthenticationFailed(
                f"MySQL at {where} rejected the credentials of connection {connection.name!r}: {message}"
            ) from exc
        if code == ER.BAD_DB_ERROR:
            raise NotFound(f"MySQL at {where}: {message}") from exc
        raise BackendUnavailable(f"cannot reach MySQL at {where} (connection {connection.name!r}): {message}") from exc
    return _Session(db=db, mariadb="mariadb" in db.get_server_info().lower())


def _execute(db: pymysql.connections.Connection, statement: str, ctx: RunContext) -> ResultSet:
    max_rows = ctx.limits.max_rows
    with db.cursor(pymysql.cursors.SSCursor) as cursor:
        affected = cursor.execute(statement)
        if cursor.description is None:
            return ResultSet(statement=statement, row_count=max(affected or 0, 0))
        columns = [column[0] for column in cursor.description]
        rows: list[list[Any]] = []
        total = 0
        while True:
            batch = cursor.fetchmany(_FETCH_BATCH)
            if not batch:
                break
            for row in batch:
                total += 1
                if total <= max_rows:
                    rows.append([jsonable(value) for value in row])
    return ResultSet(statement=statement, columns=columns, rows=rows, row_count=total, truncated=total > len(rows))


def _rollback_or_discard(session: _Session, lease: Lease[_Session]) -> None:
    try:
        session.db.rollback()
    except pymysql.MySQLError:
        lease.discard()
    except Exception:  # an unbuffered result left half-read leaves the protocol out of step
        lease.discard()


def _kill_query(connection: Connection, thread_id: int) -> None:
    """Stop a statement the server's own timeout did not stop (e.g. a lock wait on old MySQL)."""
    try:
        killer = pymysql.connect(**_connect_kwargs(connection))
        try:
            with killer.cursor() as cursor:
                cursor.execute(f"KILL QUERY {int(thread_id)}")
        finally:
            killer.close()
    except pymysql.MySQLError:
        pass


def _translate(exc: pymysql.MySQLError, ctx: RunContext, connection: Connection) -> ExecutorError:
    code = exc.args[0] if exc.args else None
    message = exc.args[1] if len(exc.args) > 1 else str(exc)
    if code in _TIMEOUT_ERRORS or (code in _CONNECT_ERRORS and ctx.remaining() <= 0):
        return TaskTimedOut(f"MySQL stopped the statement at the task's {ctx.timeout:g} s timeout ({message})")
    if code == 1792:
        return PermissionDenied(f"{message}: the task ran read-only; a change needs a write task with an approval")
    if code in _PERMISSION_ERRORS or code in _AUTH_ERRORS:
        return PermissionDenied(message)
    if code in _CONNECT_ERRORS:
        return BackendUnavailable(f"MySQL connection {connection.name!r} lost: {message}")
    return QueryFailed(f"({code}) {message}" if code else message)
