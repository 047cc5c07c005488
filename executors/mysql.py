"""``mysql``: SQL on MySQL and MariaDB through PyMySQL.

Statements run one at a time (the connection never enables multi-statements, so what runs is what
the policy classified) inside ``START TRANSACTION READ ONLY`` for ``read`` tasks. The server-side
statement timeout comes from the task's remaining time — ``max_statement_time`` on MariaDB,
``max_execution_time`` on MySQL — and a ``KILL QUERY`` from a second connection backs it up.
Rows are read unbuffered: ``max_rows`` kept, the rest counted.

Connection settings (type ``mysql``): ``host``, ``port``, ``user``, ``password``, ``database``,
``unix_socket``, ``connect_timeout``, ``ssl`` (a mapping of PyMySQL ssl options); and the read-only
credential read tasks use, ``read_user`` and ``read_password``, whose grants are checked at first
use (``executors._credentials``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import ER

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
from executors._pool import ConnectionPool, Lease, PerConnection
from executors._sql import jsonable, result_sets_data, split_statements

_FETCH_BATCH = 1000
_KILL_BACKSTOP_SECONDS = 1.0
# Server error numbers that mean "the statement hit its time limit".
_TIMEOUT_ERRORS = {1969, 3024, ER.QUERY_INTERRUPTED}
_AUTH_ERRORS = {ER.ACCESS_DENIED_ERROR, 1698, ER.DBACCESS_DENIED_ERROR}
_PERMISSION_ERRORS = {ER.TABLEACCESS_DENIED_ERROR, ER.COLUMNACCESS_DENIED_ERROR, ER.KILL_DENIED_ERROR, 1227, 1792, 1044}
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
        self._credentials = ReadCredentials(self.environment, self.type, read_settings)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        statements = split_statements(spec.command)
        credential = self._credentials.choose(ctx.connection(), ctx.risk, ctx.notes)
        connection = credential.connection
        with self._pool(credential).lease() as lease:
            session = lease.connection
            self._credentials.check_rights(credential, ctx.notes, lambda: grants_beyond_read(session.db))
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
            # A task's session outlives it in the pool: what it held (named locks from GET_LOCK,
            # LOCK TABLES) would block others' sessions long after it ended.
            cursor.execute("UNLOCK TABLES")
            cursor.execute("DO RELEASE_ALL_LOCKS()")
        return result_sets

    def _pool(self, credential: Credential) -> ConnectionPool[_Session]:
        connection = credential.connection
        return self._pools.get(
            credential.pool_key, lambda: ConnectionPool(lambda: _connect(connection), lambda s: s.db.close())
        )

    def close(self) -> None:
        self._pools.close()


def read_settings(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings of a connection's read credential (same server and database), if it has one."""
    if not settings.get("read_user"):
        return None
    read = {key: value for key, value in settings.items() if key not in (*READ_KEYS["mysql"], "user", "password")}
    read["user"] = settings["read_user"]
    read["password"] = settings.get("read_password") or ""
    return read


#: What a read account may hold (MariaDB 10.5+ shows REPLICATION CLIENT as BINLOG MONITOR, and
#: SLAVE/REPLICA MONITOR is SHOW REPLICA STATUS).
READ_PRIVILEGES = frozenset(
    {"SELECT", "PROCESS", "REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR", "SHOW VIEW",
     "USAGE"}
)  # fmt: skip
_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<target>\S+(?: \S+)?) TO ", re.IGNORECASE)
_ROLE_GRANT = re.compile(r"^GRANT (?P<roles>.+?) TO ", re.IGNORECASE)


def grants_beyond_read(db: pymysql.connections.Connection) -> list[str]:
    """What the session's account may do beyond reading, from ``SHOW GRANTS``."""
    with db.cursor(pymysql.cursors.Cursor) as cursor:
        cursor.execute("SHOW GRANTS")
        lines = [str(row[0]) for row in cursor.fetchall()]
    found = []
    for line in lines:
        grant = _GRANT.match(line)
        if grant is None:
            role = _ROLE_GRANT.match(line)
            if role is not None:  # a role's own privileges are not in this list: not vouched for
                found.append(f"act with role {role['roles']} (its grants are not checked)")
            continue
        target = grant["target"]
        extra = [p for p in _split_privileges(grant["privileges"]) if _privilege_name(p) not in READ_PRIVILEGES]
        if extra:
            found.append(f"{', '.join(extra)} on {target}")
        if re.search(r"\bWITH\b.*\bGRANT OPTION\b", line, re.IGNORECASE):
            found.append(f"grant its privileges on {target} to others (WITH GRANT OPTION)")
    return found


def _split_privileges(text: str) -> list[str]:
    """``SELECT (a, b), PROCESS`` -> ``["SELECT (a, b)", "PROCESS"]`` (commas inside parentheses stay)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()] if current.strip() else parts


def _privilege_name(privilege: str) -> str:
    return " ".join(privilege.split("(")[0].split()).upper()


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
