"""``clickhouse``: SQL on ClickHouse through clickhouse-connect — over HTTP, or embedded (chdb).

The spec's task, unchanged::

    {"type": "clickhouse", "params": {"connection": "default"},
     "command": "SELECT service, count(*) as error_count, max(timestamp) as last_error FROM error_logs
                 WHERE timestamp > now() - INTERVAL 1 HOUR GROUP BY service"}

The statements of ``command`` run one at a time. ``params.parameters`` binds ClickHouse's own
``{name:Type}`` placeholders on the server (never by string substitution). ``read`` tasks run with
``readonly=1``, so the server refuses any write the policy did not see; every statement gets
``max_execution_time`` from the task's remaining time, and over HTTP the socket read timeout is the
same deadline plus a second. Rows stream block by block: ``max_rows`` are kept, the rest counted
and dropped. Results are ``result_sets`` of ``columns`` + ``rows``, as for the other SQL executors.

Connection settings (type ``clickhouse``):

* ``mode: http`` (the default): ``host``, ``port`` (8123, or 8443 with ``secure``), ``username``,
  ``password``, ``database``, ``secure``, ``verify``, ``ca_cert``, ``compress`` (default true),
  ``connect_timeout``; or ``dsn`` (``clickhouse://user:pass@host:port/db``).
* ``mode: embedded``: ClickHouse in this process (chdb), for one machine and the demo; ``path``
  (a folder, for data that outlives the process; default in memory) and ``database``. chdb hosts
  one engine per process: every embedded connection of a process must name the same ``path``, and
  a ``path`` cannot be open in two processes at once. ``init``: statements run when a connection
  opens (an in-memory engine starts empty in every process), e.g. ``CREATE VIEW IF NOT EXISTS``
  over sample data; they are the operator's configuration, not a task, and run unrestricted.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError, ProgrammingError
from clickhouse_connect.driver.httpclient import HttpClient
from clickhouse_connect.driver.summary import QuerySummary
from pydantic import BaseModel, ConfigDict, Field
from urllib3 import Timeout

from contract import ResultSet, TaskResult, TaskSpec
from executors._base import Executor, RunContext
from executors._config import Connection
from executors._errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigurationError,
    ExecutorError,
    NotFound,
    PermissionDenied,
    QueryFailed,
    TaskTimedOut,
)
from executors._policy.sql import READ_STATEMENTS
from executors._pool import ConnectionPool, PerConnection
from executors._sql import jsonable, result_sets_data, split_statements

Mode = Literal["http", "embedded"]
#: Socket time allowed past the server-side limit, so the server's own timeout error arrives first.
_READ_BACKSTOP_SECONDS = 1.0
# Statements that return rows even in a write task (everything else goes through ``command``).
_ROW_STATEMENTS = READ_STATEMENTS | {"WITH", "EXPLAIN", "CHECK"}
# ClickHouse exception codes, by what they mean for the caller.
_AUTH_CODES = {192, 193, 194, 516, 195}  # UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, ...
_PERMISSION_CODES = {164, 497, 452, 291}  # READONLY, ACCESS_DENIED, SETTING_CONSTRAINT_VIOLATION, ...
_NOT_FOUND_CODES = {60, 81, 16, 47, 46, 107}  # UNKNOWN_TABLE, UNKNOWN_DATABASE, NO_SUCH_COLUMN, ...
_TIMEOUT_CODES = {159, 394, 209}  # TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED, SOCKET_TIMEOUT
_CODE = re.compile(r"\bCode: (\d+)\b|\bcode: (\d+)\b")


class ClickHouseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str | None = None
    #: Values for ``{name:Type}`` placeholders in the statements.
    parameters: dict[str, Any] = Field(default_factory=dict)


class ClickHouseExecutor(Executor):
    type = "clickhouse"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pools: PerConnection[ConnectionPool[Client]] = PerConnection(ConnectionPool.close)

    def validate(self, spec: TaskSpec) -> None:
        self.params(ClickHouseParams, spec)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        params: ClickHouseParams = self.params(ClickHouseParams, spec)
        statements = split_statements(spec.command)
        connection = ctx.connection()
        mode = _mode(connection)
        where = _describe(connection, mode)
        result_sets: list[ResultSet] = []
        notes: list[str] = []
        try:
            with self._pool(connection, mode).lease() as lease:
                client = lease.connection
                for statement in statements:
                    ctx.check_deadline()
                    if isinstance(client, HttpClient):
                        client.timeout = Timeout(
                            connect=min(ctx.remaining(), 10.0), read=ctx.remaining() + _READ_BACKSTOP_SECONDS
                        )
                    settings = _settings(ctx)
                    if ctx.read_only or _returns_rows(statement):
                        result_sets.append(_stream(client, statement, params.parameters, settings, ctx, notes))
                    else:
                        result_sets.append(_command(client, statement, params.parameters, settings))
        except (ClickHouseError, OSError) as exc:
            raise _translate(exc, ctx, where, connection.name) from exc
        truncated = any(rs.truncated for rs in result_sets)
        original_rows = max((rs.row_count for rs in result_sets if rs.truncated), default=None)
        result = ctx.result(data=result_sets_data(result_sets), truncated=truncated, original_rows=original_rows)
        result.notes.extend(notes)
        return result

    def _pool(self, connection: Connection, mode: Mode) -> ConnectionPool[Client]:
        return self._pools.get(
            connection.name, lambda: ConnectionPool(lambda: _connect(connection, mode), _close_client)
        )

    def close(self) -> None:
        self._pools.close()


def _mode(connection: Connection) -> Mode:
    mode = connection.get("mode", "http")
    if mode not in ("http", "embedded"):
        raise ConfigurationError(f"clickhouse connection {connection.name!r}: mode {mode!r} is not http or embedded")
    return mode


def _describe(connection: Connection, mode: Mode) -> str:
    if mode == "embedded":
        return f"embedded ClickHouse (chdb, {connection.get('path') or 'in memory'})"
    if connection.get("dsn"):
        return f"ClickHouse (connection {connection.name!r})"
    return f"ClickHouse at {connection.get('host', 'localhost')}:{connection.get('port', 8123)}"


def _connect(connection: Connection, mode: Mode) -> Client:
    settings = dict(connection.settings)
    where = _describe(connection, mode)
    try:
        if mode == "embedded":
            client = clickhouse_connect.get_client(
                interface="chdb", path=settings.get("path") or None, database=settings.get("database")
            )
            for number, statement in enumerate(_init_statements(connection), start=1):
                try:
                    client.command(statement)
                except ClickHouseError as exc:
                    client.close()
                    raise ConfigurationError(f"{where}: init statement {number} failed: {_first_line(exc)}") from exc
            return client
        kwargs: dict[str, Any] = {
            key: settings[key]
            for key in ("host", "username", "password", "database", "dsn", "ca_cert")
            if settings.get(key) not in (None, "")
        }
        if settings.get("port") not in (None, ""):
            kwargs["port"] = int(settings["port"])
        if settings.get("secure"):
            kwargs["secure"] = True
        if "verify" in settings:
            kwargs["verify"] = bool(settings["verify"])
        return clickhouse_connect.get_client(
            **kwargs,
            compress=settings.get("compress", True),
            connect_timeout=int(settings.get("connect_timeout", 5)),
            # A session serialises a client's queries on the server, and nothing we run needs one.
            autogenerate_session_id=False,
            # Retries are the agent's decision (reads only, within the task's timeout).
            query_retries=0,
        )
    except ProgrammingError as exc:
        if mode == "embedded":
            raise ConfigurationError(f"{where}: {_first_line(exc)}") from exc
        raise
    except (ClickHouseError, OSError) as exc:
        error = _translate(exc, None, where, connection.name)
        raise error from exc


def _init_statements(connection: Connection) -> list[str]:
    init = connection.get("init") or []
    if isinstance(init, str):
        return split_statements(init)
    if not isinstance(init, list) or not all(isinstance(statement, str) for statement in init):
        raise ConfigurationError(f"clickhouse connection {connection.name!r}: init is a list of SQL statements")
    return [statement for text in init for statement in split_statements(text)]


def _close_client(client: Client) -> None:
    client.close()


def _settings(ctx: RunContext) -> dict[str, Any]:
    # max_execution_time before readonly: a server applies them in order, and once readonly=1
    # is in force no setting may change.
    settings: dict[str, Any] = {"max_execution_time": round(max(ctx.remaining(), 0.001), 3)}
    if ctx.read_only:
        settings["readonly"] = 1
    return settings


def _returns_rows(statement: str) -> bool:
    head = statement.lstrip("( \t\n").split(None, 1)[0].upper() if statement.strip() else ""
    return head in _ROW_STATEMENTS


def _stream(
    client: Client,
    statement: str,
    parameters: dict[str, Any],
    settings: dict[str, Any],
    ctx: RunContext,
    notes: list[str],
) -> ResultSet:
    """Rows of one statement: ``max_rows`` kept, the rest counted while the deadline allows."""
    max_rows = ctx.limits.max_rows
    rows: list[list[Any]] = []
    total = 0
    counting_cut = False
    with client.query_row_block_stream(statement, parameters=parameters or None, settings=settings) as stream:
        columns = list(stream.source.column_names)
        for block in stream:
            total += len(block)
            if len(rows) < max_rows:
                rows.extend([jsonable(value) for value in row] for row in block[: max_rows - len(rows)])
            elif ctx.remaining() <= 0:
                # The kept rows are the answer; counting the rest is not worth a timed-out task.
                counting_cut = True
                break
    if counting_cut:
        notes.append(f"stopped counting rows at the timeout: at least {total} rows")
    return ResultSet(statement=statement, columns=columns, rows=rows, row_count=total, truncated=total > len(rows))


def _command(client: Client, statement: str, parameters: dict[str, Any], settings: dict[str, Any]) -> ResultSet:
    reply = client.command(statement, parameters=parameters or None, settings=settings)
    if isinstance(reply, QuerySummary):
        return ResultSet(statement=statement, row_count=int(reply.written_rows or 0))
    values = reply if isinstance(reply, list) else [reply]
    rows = [[jsonable(value)] for value in values]
    return ResultSet(statement=statement, columns=["result"], rows=rows, row_count=len(values))


def _translate(
    exc: BaseException, ctx: RunContext | None, where: str, connection: str
) -> ExecutorError | ConfigurationError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    code = _code(exc)
    if code in _AUTH_CODES:
        return AuthenticationFailed(
            f"{where} rejected the credentials of connection {connection!r}: {_server_words(message)}"
        )
    if code in _TIMEOUT_CODES:
        limit = f"the task's {ctx.timeout:g} s timeout" if ctx else "its time limit"
        return TaskTimedOut(f"{where} stopped the query at {limit}: {_server_words(message)}")
    if code == 164:
        return PermissionDenied(
            f"{_server_words(message)}: the task ran read-only; a change needs a write task with an approval"
        )
    if code in _PERMISSION_CODES:
        return PermissionDenied(_server_words(message))
    if code in _NOT_FOUND_CODES:
        return NotFound(_server_words(message))
    if isinstance(exc, DatabaseError) and code is not None:
        return QueryFailed(_server_words(message))
    if isinstance(exc, OperationalError | OSError):
        if ctx is not None and ctx.remaining() <= 0:
            return TaskTimedOut(f"{where} did not answer within the task's {ctx.timeout:g} s timeout")
        return BackendUnavailable(f"cannot reach {where} (connection {connection!r}): {_socket_error(message)}")
    if isinstance(exc, ProgrammingError):
        return QueryFailed(message)
    return QueryFailed(f"{where}: {message}")


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = _CODE.search(str(exc))
    if found:
        return int(found.group(1) or found.group(2))
    return None


def _server_words(message: str) -> str:
    """``Code: 60. DB::Exception: Unknown table ... (UNKNOWN_TABLE)`` without the client's wrapping."""
    found = re.search(r"Code: \d+\. DB::Exception: (.*?)(?: \(version [^)]*\))?(?: \(for url [^)]*\))?\s*$", message)
    return f"ClickHouse: {found.group(1)}" if found else message


def _socket_error(message: str) -> str:
    """``[Errno 111] Connection refused`` out of urllib3's retry-wrapped message, when it is there."""
    found = re.search(r"\[Errno -?\d+\] [^\"'()]+", message)
    return found.group(0).strip() if found else message


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
