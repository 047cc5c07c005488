"""Planning what to collect around an anomaly, and reading what came back.

Collection is planned, not fixed. Around an alert the flow first collects metrics for every
component (detection needs them), then — from what detection found — the evidence the candidate
faults call for: error logs and error spans of the involved services, the process lists of the
databases they call, the caches' counters, health checks, pod states. The cross-source chain of
the spec is the follow-up plan: trace ids in the error logs → those traces → the metrics of the
services on them around the time of the errors.

Everything here is pure: plans are ``PlannedTask`` values (the spec's task JSON plus a label and a
purpose), results are the task results as plain dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._observations import (
    CacheStats,
    Observations,
    cache_stats_from_info,
    db_snapshot_from_result,
    health_check_from_result,
)
from models._topology import Topology
from models._types import ServiceKind
from models.planning import PlannedTask, Purpose

SqlDialect = Literal["postgres", "mysql", "clickhouse"]
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: Error trace ids followed up from the logs (the spec's cross-source chain), at most.
MAX_FOLLOWED_TRACES = 20
#: Seconds of metrics around the first error, for the chain's last link.
ERROR_CONTEXT_SECONDS = 120.0


class MetricsSource(BaseModel):
    """Where metrics live. SQL tables are in long format: ``time, service, metric, value``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["postgres", "mysql", "clickhouse", "prometheus"]
    connection: str = "default"
    table: str = "metrics"
    #: Averaging step of SQL queries, and the PromQL range step.
    step_seconds: float = Field(default=1.0, gt=0)
    #: PromQL per metric name; ``{service}`` is replaced by the service name. Results must carry
    #: a ``service`` label (or one query per service, which the template gives).
    queries: dict[str, str] = Field(default_factory=dict)


class LogsSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["postgres", "mysql", "clickhouse", "elasticsearch"]
    connection: str = "default"
    table: str = "logs"
    index: str = "app-logs-*"
    #: Field names in Elasticsearch documents.
    time_field: str = "@timestamp"
    levels: list[str] = Field(default_factory=lambda: ["ERROR", "FATAL", "WARN", "WARNING"])
    max_lines: int = Field(default=2000, gt=0)


class TracesSource(BaseModel):
    """Spans. SQL tables have the spec's columns: ``trace_id, span_id, service_name, duration,
    status, timestamp`` (and ``parent_span_id`` when known); duration in milliseconds."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["postgres", "mysql", "clickhouse", "elasticsearch"]
    connection: str = "default"
    table: str = "traces"
    index: str = "jaeger-span-*"
    max_spans: int = Field(default=2000, gt=0)


class TelemetrySources(BaseModel):
    """An environment's ``telemetry:`` section."""

    model_config = ConfigDict(extra="forbid")

    metrics: MetricsSource | None = None
    logs: LogsSource | None = None
    traces: TracesSource | None = None
    #: Run ``top``/``df`` on the agent's host (useful when the agent shares the host).
    host: bool = False
    #: Ask Kubernetes for pods and events in the involved namespaces (needs a k8s connection).
    kubernetes: bool = False
    kubernetes_namespace: str | None = None


@dataclass(frozen=True)
class Window:
    """A time range in epoch seconds."""

    start: float
    end: float

    @classmethod
    def around(cls, alert_time: float, before: float = 600.0, after: float = 300.0, now: float | None = None) -> Window:
        end = alert_time + after
        if now is not None:
            end = min(end, now)
        return cls(alert_time - before, max(end, alert_time + 1))

    def iso(self) -> tuple[str, str]:
        return (_iso(self.start), _iso(self.end))


# -- metrics ----------------------------------------------------------------------------------


def plan_metrics(source: MetricsSource, services: Iterable[str], window: Window) -> list[PlannedTask]:
    """One query per service (SQL) or per metric (PromQL): the rows of each fit the row limit."""
    if source.type == "prometheus":
        return [
            PlannedTask(
                label=f"metric {metric} of {service}",
                purpose="metrics",
                service=service,
                task={
                    "type": "prometheus",
                    "command": template.replace("{service}", service),
                    "params": {
                        "connection": source.connection,
                        "start": window.start,
                        "end": window.end,
                        "step": f"{source.step_seconds:g}s",
                        "metric": metric,
                        "service": service,
                    },
                    "timeout": 30,
                },
            )
            for service in services
            for metric, template in source.queries.items()
        ]
    dialect: SqlDialect = source.type
    tasks = []
    for service in services:
        sql = (
            f"SELECT {_bucket(dialect, 'time', source.step_seconds)} AS t, metric, avg(value) AS value "
            f"FROM {_identifier(source.table)} WHERE service = {_literal(service)} "
            f"AND time >= {_from_epoch(dialect, window.start)} AND time <= {_from_epoch(dialect, window.end)} "
            "GROUP BY 1, 2 ORDER BY 1"
        )
        tasks.append(
            PlannedTask(
                label=f"metrics of {service}",
                purpose="metrics",
                service=service,
                task={"type": dialect, "command": sql, "params": {"connection": source.connection}, "timeout": 30},
            )
        )
    return tasks


def metrics_from_results(items: Sequence[PlannedTask], results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The RCAEval frame (``time`` + ``<service>_<metric>`` columns) from metric task results.

    Failed tasks contribute nothing (their failure is reported by the caller); an empty frame has
    only the ``time`` column.
    """
    series: dict[str, pd.Series] = {}
    for item, result in zip(items, results, strict=True):
        if item.purpose != "metrics" or result.get("status") != "succeeded" or item.service is None:
            continue
        data = result.get("data")
        if item.task.get("type") == "prometheus":
            metric = str(item.task.get("params", {}).get("metric", "value"))
            for points in _prometheus_points(data):
                series[f"{item.service}_{metric}"] = points
            continue
        for result_set in _result_sets(data):
            frame = _rows_frame(result_set)
            if frame.empty or not {"t", "metric", "value"} <= set(frame.columns):
                continue
            frame["t"] = pd.to_numeric(frame["t"], errors="coerce")
            frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
            for metric, group in frame.dropna(subset=["t"]).groupby("metric", sort=True):
                series[f"{item.service}_{metric}"] = group.set_index("t")["value"].astype(float)
    if not series:
        return pd.DataFrame({"time": pd.Series(dtype=float)})
    wide = pd.concat(series, axis=1).sort_index()
    wide.index.name = "time"
    return wide.reset_index()


def _prometheus_points(data: Any) -> list[pd.Series]:
    """Series from a prometheus task's tidy rows ``{"labels", "timestamp", "value"}``."""
    rows = data.get("rows") if isinstance(data, Mapping) else data
    if not isinstance(rows, list):
        return []
    by_series: dict[str, dict[float, float]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        key = str(sorted((row.get("labels") or {}).items()))
        try:
            by_series.setdefault(key, {})[float(row["timestamp"])] = float(row["value"])
        except (KeyError, TypeError, ValueError):
            continue
    # One series per query and service is the contract; several mean an aggregation is missing:
    # sum them, as the query would have.
    if not by_series:
        return []
    total = pd.DataFrame(by_series).sum(axis=1, min_count=1)
    return [total.astype(float)]


# -- evidence ---------------------------------------------------------------------------------


def plan_evidence(
    sources: TelemetrySources,
    topology: Topology | None,
    involved: Sequence[str],
    window: Window,
) -> list[PlannedTask]:
    """Logs, traces, databases, caches, health checks and pods around the involved services."""
    plan: list[PlannedTask] = []
    if sources.logs is not None:
        plan.append(_logs_task(sources.logs, involved, window))
    if sources.traces is not None:
        plan.append(_error_spans_task(sources.traces, window))
    for node in _components_near(topology, involved):
        if node.kind is ServiceKind.DATABASE and node.engine is not None:
            plan.append(_db_state_task(node.name, node.engine, node.connection or "default"))
        elif node.kind is ServiceKind.CACHE and node.connection:
            for section in ("stats", "memory"):
                plan.append(
                    PlannedTask(
                        label=f"INFO {section} of {node.name}",
                        purpose="cache",
                        service=node.name,
                        task={
                            "type": "redis",
                            "command": f"INFO {section}",
                            "params": {"connection": node.connection},
                            "timeout": 10,
                        },
                    )
                )
        if node.health_url:
            plan.append(
                PlannedTask(
                    label=f"health of {node.name}",
                    purpose="health",
                    service=node.name,
                    task={"type": "api", "params": {"method": "GET", "url": node.health_url}, "timeout": 10},
                )
            )
    if sources.kubernetes:
        namespaces = sorted(
            {node.namespace for node in _components_near(topology, involved) if node.namespace}
            or {sources.kubernetes_namespace or "default"}
        )
        for namespace in namespaces:
            plan.append(
                PlannedTask(
                    label=f"pods in {namespace}",
                    purpose="k8s",
                    task={
                        "type": "k8s",
                        "command": f"kubectl get pods -n {namespace} -o wide",
                        "params": {"namespace": namespace},
                        "timeout": 30,
                    },
                )
            )
            plan.append(
                PlannedTask(
                    label=f"events in {namespace}",
                    purpose="k8s",
                    task={
                        "type": "k8s",
                        "command": f"kubectl get events -n {namespace} --sort-by='.lastTimestamp' | tail -50",
                        "params": {"namespace": namespace},
                        "timeout": 30,
                    },
                )
            )
    if sources.host:
        plan.append(
            PlannedTask(
                label="top", purpose="host", task={"type": "shell", "command": "top -bn1 | head -20", "timeout": 15}
            )
        )
        plan.append(
            PlannedTask(
                label="disk and memory",
                purpose="host",
                task={"type": "shell", "command": "df -h && free -m && cat /proc/loadavg", "timeout": 15},
            )
        )
    return plan


def plan_follow_ups(sources: TelemetrySources, logs: pd.DataFrame | None, window: Window) -> list[PlannedTask]:
    """The spec's cross-source chain: error trace ids from the logs → those traces → the metrics
    of the services on them around the first error."""
    if logs is None or logs.empty or sources.traces is None or "trace_id" not in logs.columns:
        return []
    errors = logs[logs["level"].str.upper().isin({"ERROR", "FATAL"})]
    trace_ids = [str(t) for t in errors["trace_id"].dropna().unique() if _SAFE_ID.match(str(t))][:MAX_FOLLOWED_TRACES]
    if not trace_ids:
        return []
    return [_traces_by_id_task(sources.traces, trace_ids)]


def plan_error_context(
    sources: TelemetrySources, logs: pd.DataFrame | None, traces: pd.DataFrame | None
) -> list[PlannedTask]:
    """The chain's last link: metrics of the services on the error traces, around the first error."""
    if sources.metrics is None or logs is None or logs.empty or traces is None or traces.empty:
        return []
    errors = logs[logs["level"].str.upper().isin({"ERROR", "FATAL"})]
    if errors.empty:
        return []
    first_error = float(errors["time"].min())
    on_error_traces = traces[traces["trace_id"].isin(set(errors["trace_id"].dropna()))]
    services = sorted(set(on_error_traces["service"].dropna()))
    context = Window(first_error - ERROR_CONTEXT_SECONDS / 2, first_error + ERROR_CONTEXT_SECONDS / 2)
    tasks = plan_metrics(sources.metrics, services, context)
    return [
        task.model_copy(update={"label": f"{task.label} at the first error", "purpose": "metrics"}) for task in tasks
    ]


@dataclass
class CollectedEvidence:
    """What a collection round produced, and which sources failed."""

    logs: pd.DataFrame | None = None
    traces: pd.DataFrame | None = None
    observations: Observations = field(default_factory=Observations)
    failures: list[str] = field(default_factory=list)
    succeeded: int = 0


def evidence_from_results(
    items: Sequence[PlannedTask], results: Sequence[Mapping[str, Any]], topology: Topology | None = None
) -> CollectedEvidence:
    """Logs and traces frames, typed observations, and the list of failed sources."""
    collected = CollectedEvidence()
    log_frames: list[pd.DataFrame] = []
    trace_frames: list[pd.DataFrame] = []
    observations = Observations()
    for item, result in zip(items, results, strict=True):
        status = result.get("status")
        if status != "succeeded" and item.purpose != "health":
            error = result.get("error") or {}
            collected.failures.append(f"{item.label}: {status} ({error.get('code', '?')}: {error.get('message', '')})")
            continue
        collected.succeeded += status == "succeeded"
        data = result.get("data")
        if item.purpose == "logs":
            log_frames.append(_logs_frame(item, data))
        elif item.purpose == "traces":
            trace_frames.append(_traces_frame(item, data))
        elif item.purpose == "db" and item.service:
            engine = str(item.task.get("type"))
            observations = observations.merged(
                Observations(db=[db_snapshot_from_result(data or {}, engine, item.service)])
            )
        elif item.purpose == "cache" and item.service and isinstance(data, Mapping):
            observations = observations.merged(Observations(cache=[cache_stats_from_info(data, item.service)]))
        elif item.purpose == "health" and item.service:
            check = health_check_from_result(result, item.service)
            observations = observations.merged(Observations(health=[check]))
            if status != "succeeded" and check.status_code is None:
                collected.failures.append(f"{item.label}: unreachable")
    collected.observations = _merge_cache_sections(observations)
    non_empty_logs = [f for f in log_frames if not f.empty]
    non_empty_traces = [f for f in trace_frames if not f.empty]
    collected.logs = pd.concat(non_empty_logs, ignore_index=True) if non_empty_logs else None
    collected.traces = (
        pd.concat(non_empty_traces, ignore_index=True).drop_duplicates(subset=["trace_id", "span_id"])
        if non_empty_traces
        else None
    )
    return collected


def _merge_cache_sections(observations: Observations) -> Observations:
    """``INFO stats`` and ``INFO memory`` of one cache arrive separately: one ``CacheStats`` each."""
    merged: dict[str, dict[str, Any]] = {}
    for stats in observations.cache:
        current = merged.setdefault(stats.service, {"service": stats.service})
        for key, value in stats.model_dump().items():
            if value not in (None, 0) or key not in current:
                current[key] = value
    return observations.model_copy(update={"cache": [CacheStats(**values) for values in merged.values()]})


def _components_near(topology: Topology | None, involved: Sequence[str]) -> list[Any]:
    """The involved components and everything they call, directly or not (databases, caches)."""
    if topology is None:
        return []
    names: set[str] = {name for name in involved if topology.node(name) is not None}
    if not names:
        names = set(topology.names)
    for name in list(names):
        index = topology.index[name]
        names.update(topology.names[j] for j in np.flatnonzero(topology.reach[index]))
    return [topology.node(name) for name in topology.names if name in names]


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
    if source.type == "elasticsearch":
        start, end = window.iso()
        query: dict[str, Any] = {
            "bool": {
                "must": [{"range": {source.time_field: {"gte": start, "lte": end}}}],
                "filter": [{"terms": {"level": [*source.levels, *(level.lower() for level in source.levels)]}}],
            }
        }
        return _search_task(
            "error logs",
            "logs",
            source.connection,
            source.index,
            query,
            source.max_lines,
            sort=[{source.time_field: "asc"}],
        )
    dialect: SqlDialect = source.type
    levels = ", ".join(_literal(level) for level in source.levels)
    sql = (
        f"SELECT {_to_epoch(dialect, 'time')} AS time, service, level, message, trace_id "
        f"FROM {_identifier(source.table)} "
        f"WHERE time >= {_from_epoch(dialect, window.start)} AND time <= {_from_epoch(dialect, window.end)} "
        f"AND upper(level) IN ({levels}) ORDER BY time LIMIT {source.max_lines}"
    )
    return _sql_task("error logs", "logs", dialect, sql, source.connection)


def _error_spans_task(source: TracesSource, window: Window) -> PlannedTask:
    if source.type == "elasticsearch":
        started = {"gte": int(window.start * 1e6), "lte": int(window.end * 1e6)}  # Jaeger: microseconds
        query = {"bool": {"must": [{"range": {"startTime": started}}, {"term": {"tags.error": True}}]}}
        return _search_task("error spans", "traces", source.connection, source.index, query, source.max_spans)
    dialect: SqlDialect = source.type
    where = (
        f"timestamp >= {_from_epoch(dialect, window.start)} AND timestamp <= {_from_epoch(dialect, window.end)} "
        f"AND status = 'error' ORDER BY timestamp DESC"
    )
    return _sql_task("error spans", "traces", dialect, _spans_sql(source, dialect, where), source.connection)


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


def _logs_frame(item: PlannedTask, data: Any) -> pd.DataFrame:
    if item.task.get("type") == "elasticsearch":
        records = [hit.get("_source", hit) for hit in _es_hits(data)]
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return frame
        time_field = next((c for c in ("@timestamp", "timestamp", "time") if c in frame.columns), None)
        if time_field is None:
            return pd.DataFrame()
        frame["time"] = pd.to_datetime(frame[time_field], utc=True, errors="coerce").astype("int64") / 1e9
        for column in ("service", "level", "message", "trace_id"):
            if column not in frame.columns:
                frame[column] = None
        return frame[["time", "service", "level", "message", "trace_id"]]
    frames = [_rows_frame(rs) for rs in _result_sets(data)]
    frame = frames[0] if frames else pd.DataFrame()
    if not frame.empty:
        frame["time"] = pd.to_numeric(frame["time"], errors="coerce")
    return frame


def _traces_frame(item: PlannedTask, data: Any) -> pd.DataFrame:
    if item.task.get("type") == "elasticsearch":
        rows = []
        for hit in _es_hits(data):
            span = hit.get("_source", hit)
            references = span.get("references") or []
            tags = {t.get("key"): t.get("value") for t in span.get("tags") or [] if isinstance(t, Mapping)}
            rows.append(
                {
                    "trace_id": span.get("traceID"),
                    "span_id": span.get("spanID"),
                    "parent": references[0].get("spanID") if references else "",
                    "service": (span.get("process") or {}).get("serviceName"),
                    "duration": float(span.get("duration", 0)) / 1000.0,
                    "status": "error" if tags.get("error") in (True, "true") else "ok",
                    "time": float(span.get("startTime", 0)) / 1e6,
                }
            )
        return pd.DataFrame.from_records(rows)
    frames = [_rows_frame(rs) for rs in _result_sets(data)]
    frame = frames[0] if frames else pd.DataFrame()
    if not frame.empty:
        frame["parent"] = frame["parent"].fillna("")
        frame["time"] = pd.to_numeric(frame["time"], errors="coerce")
    return frame


def _es_hits(data: Any) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping):
        return []
    hits = data.get("hits")
    if isinstance(hits, Mapping):
        hits = hits.get("hits")
    return [hit for hit in hits or [] if isinstance(hit, Mapping)]


def _result_sets(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and isinstance(data.get("result_sets"), list):
        return [rs for rs in data["result_sets"] if isinstance(rs, Mapping)]
    return []


def _rows_frame(result_set: Mapping[str, Any]) -> pd.DataFrame:
    columns = [str(c) for c in result_set.get("columns") or []]
    return pd.DataFrame(result_set.get("rows") or [], columns=columns)


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


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
