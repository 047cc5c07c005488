"""The task that asks each kind of source for what collection needs: SQL for logs, spans and
database state in each dialect, search requests, Jaeger-shaped trace lookups."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from contract import PlannedTask, Purpose
from models.playbook._sources import LogsSource, SqlDialect, TracesSource, Window


def _db_state_task(service: str, engine: str, connection: str) -> PlannedTask:
    if engine == "postgres":
        command = (
            "SELECT pid, usename, application_name, state, wait_event_type, "
            "EXTRACT(EPOCH FROM now() - query_start) AS seconds, left(query, 200) AS query, "
            "(SELECT setting::int FROM pg_settings WHERE name = 'max_connections') AS max_connections "
            "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "ORDER BY query_start NULLS LAST"
        )
    else:
        command = "SHOW FULL PROCESSLIST; SHOW STATUS LIKE 'Threads_connected'; SHOW VARIABLES LIKE 'max_connections';"
    return PlannedTask(
        label=f"sessions of {service}",
        purpose="db",
        service=service,
        task={"type": engine, "command": command, "params": {"connection": connection}, "timeout": 15},
    )


def _logs_task(source: LogsSource, services: Sequence[str], window: Window) -> PlannedTask:
    levels = ", ".join(_literal(level) for level in source.levels)
    return _log_lines_task(
        "error logs",
        source,
        window,
        search={"filter": [{"terms": {"level": [*source.levels, *(level.lower() for level in source.levels)]}}]},
        where=f"upper(level) IN ({levels})",
        limit=source.max_lines,
    )


def _log_lines_task(
    label: str, source: LogsSource, window: Window, *, search: dict[str, Any], where: str, limit: int
) -> PlannedTask:
    """The log lines of ``window`` that ``search`` (bool clauses beside the time range) or ``where``
    (an SQL condition) select, oldest first, at most ``limit``."""
    if source.type == "elasticsearch":
        start, end = window.iso()
        query = {"bool": {"must": [{"range": {source.time_field: {"gte": start, "lte": end}}}], **search}}
        return _search_task(
            label, "logs", source.connection, source.index, query, limit, sort=[{source.time_field: "asc"}]
        )
    dialect: SqlDialect = source.type
    sql = (
        f"SELECT {_to_epoch(dialect, 'time')} AS time, service, level, message, trace_id "
        f"FROM {_identifier(source.table)} "
        f"WHERE time >= {_from_epoch(dialect, window.start)} AND time <= {_from_epoch(dialect, window.end)} "
        f"AND {where} ORDER BY time LIMIT {limit}"
    )
    return _sql_task(label, "logs", dialect, sql, source.connection)


#: How a process's start-up line reads (``models.signals._deploys.STARTUP_LINE`` is the exact rule the
#: analysis applies to what comes back): SQL ``LIKE`` patterns on the lower-cased message, and
#: phrases for a search engine, whose tokens cannot end a word with a wildcard (Spring Boot's
#: "Started OrdersApplication in 4.1 seconds (process running for 4.6)" is found by its tail).
STARTUP_LIKE = (
    "%started %application%",
    "%started %server%",
    "%started %service%",
    "%server started%",
    "%application started%",
    "%server listening%",
    "%listening on%",
    "%booting worker%",
    "%startup complete%",
    "%ready to accept connections%",
    "%ready for connections%",
)
STARTUP_PHRASES = (
    "started application",
    "started server",
    "started service",
    "server started",
    "application started",
    "server listening",
    "listening on",
    "booting worker",
    "startup complete",
    "ready to accept connections",
    "ready for connections",
    "seconds process running for",
    "seconds jvm running for",
)
#: A task of its own, capped apart from the errors: an application that logs a request as
#: "Started GET ..." must not crowd the errors out of theirs.
STARTUP_MAX_LINES = 500


def _startup_logs_task(source: LogsSource, window: Window) -> PlannedTask:
    """Start-up lines at any level: a rollout shows in them (``models.signals._deploys``)."""
    matches = " OR ".join(f"lower(message) LIKE {_literal(pattern)}" for pattern in STARTUP_LIKE)
    return _log_lines_task(
        "start-up logs",
        source,
        window,
        search={
            "should": [{"match_phrase": {"message": phrase}} for phrase in STARTUP_PHRASES],
            "minimum_should_match": 1,
        },
        where=f"({matches})",
        limit=STARTUP_MAX_LINES,
    )


def _error_spans_task(source: TracesSource, window: Window) -> PlannedTask:
    if source.type == "elasticsearch":
        started = {"gte": int(window.start * 1e6), "lte": int(window.end * 1e6)}  # Jaeger: microseconds
        query = {
            "bool": {"must": [{"range": {"startTime": started}}], "should": _JAEGER_ERROR, "minimum_should_match": 1}
        }
        return _search_task("error spans", "traces", source.connection, source.index, query, source.max_spans)
    dialect: SqlDialect = source.type
    where = (
        f"timestamp >= {_from_epoch(dialect, window.start)} AND timestamp <= {_from_epoch(dialect, window.end)} "
        f"AND status = 'error' ORDER BY timestamp DESC"
    )
    return _sql_task("error spans", "traces", dialect, _spans_sql(source, dialect, where), source.connection)


#: A span with ``error=true``, as Jaeger stores tags: nested ``{key, type, value}`` objects, or
#: fields under ``tag.`` with ``--es.tags-as-fields.all``. (``tags.error`` matches neither.)
_JAEGER_ERROR: list[dict[str, Any]] = [
    {
        "nested": {
            "path": "tags",
            "ignore_unmapped": True,
            "query": {"bool": {"must": [{"term": {"tags.key": "error"}}, {"term": {"tags.value": "true"}}]}},
        }
    },
    {"term": {"tag.error": True}},
]


def _traces_by_id_task(source: TracesSource, trace_ids: Sequence[str]) -> PlannedTask:
    label = f"{len(trace_ids)} error traces"
    if source.type == "elasticsearch":
        query = {"terms": {"traceID": list(trace_ids)}}
        return _search_task(label, "traces", source.connection, source.index, query, source.max_spans)
    dialect: SqlDialect = source.type
    where = f"trace_id IN ({', '.join(_literal(trace_id) for trace_id in trace_ids)})"
    return _sql_task(label, "traces", dialect, _spans_sql(source, dialect, where), source.connection)


def _spans_sql(source: TracesSource, dialect: SqlDialect, where: str) -> str:
    """Spans in the columns of the traces frame, from a table with the spec's columns."""
    return (
        "SELECT trace_id, span_id, parent_span_id AS parent, service_name AS service, duration, status, "
        f"{_to_epoch(dialect, 'timestamp')} AS time FROM {_identifier(source.table)} "
        f"WHERE {where} LIMIT {source.max_spans}"
    )


def _sql_task(label: str, purpose: Purpose, dialect: SqlDialect, sql: str, connection: str) -> PlannedTask:
    return PlannedTask(
        label=label,
        purpose=purpose,
        task={"type": dialect, "command": sql, "params": {"connection": connection}, "timeout": 30},
    )


def _search_task(
    label: str,
    purpose: Purpose,
    connection: str,
    index: str,
    query: dict[str, Any],
    size: int,
    *,
    sort: list[dict[str, str]] | None = None,
) -> PlannedTask:
    params: dict[str, Any] = {
        "connection": connection,
        "operation": "search",
        "index": index,
        "query": query,
        "size": size,
    }
    if sort is not None:
        params["sort"] = sort
    return PlannedTask(label=label, purpose=purpose, task={"type": "elasticsearch", "params": params, "timeout": 30})


# -- SQL text ---------------------------------------------------------------------------------


def _literal(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def _from_epoch(dialect: SqlDialect, seconds: float) -> str:
    return {
        "postgres": f"to_timestamp({seconds:.3f})",
        "mysql": f"FROM_UNIXTIME({seconds:.3f})",
        "clickhouse": f"toDateTime64({seconds:.3f}, 3)",
    }[dialect]


def _to_epoch(dialect: SqlDialect, column: str) -> str:
    return {
        "postgres": f"EXTRACT(EPOCH FROM {column})::float8",
        "mysql": f"UNIX_TIMESTAMP({column})",
        "clickhouse": f"toFloat64(toUnixTimestamp64Milli(toDateTime64({column}, 3))) / 1000",
    }[dialect]


def _bucket(dialect: SqlDialect, column: str, step: float) -> str:
    epoch = _to_epoch(dialect, column)
    return f"floor(({epoch}) / {step:g}) * {step:g}"
