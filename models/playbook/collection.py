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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from contract import PlannedTask
from models.domain._observations import (
    CacheStats,
    Observations,
    cache_stats_from_info,
    db_snapshot_from_result,
    health_check_from_result,
    prometheus_samples,
)
from models.domain._topology import Topology
from models.domain._types import ServiceKind
from models.playbook._collection_tasks import (
    _bucket,
    _db_state_task,
    _error_spans_task,
    _from_epoch,
    _identifier,
    _literal,
    _logs_task,
    _startup_logs_task,
    _traces_by_id_task,
)
from models.playbook._sources import (
    _SAFE_ID,
    ERROR_CONTEXT_SECONDS,
    FAILURE_REASON_CHARS,
    MAX_FOLLOWED_TRACES,
    METRICS_HISTORY,
    LogsSource,
    MetricsSource,
    SqlDialect,
    TelemetrySources,
    TracesSource,
    Window,
    metrics_history,
)

__all__ = [
    "ERROR_CONTEXT_SECONDS",
    "FAILURE_REASON_CHARS",
    "MAX_FOLLOWED_TRACES",
    "METRICS_HISTORY",
    "CollectedEvidence",
    "LogsSource",
    "MetricsSource",
    "SqlDialect",
    "TelemetrySources",
    "TracesSource",
    "Window",
    "evidence_from_results",
    "failure_line",
    "metrics_from_results",
    "metrics_history",
    "plan_error_context",
    "plan_evidence",
    "plan_follow_ups",
    "plan_metrics",
]

# -- metrics ----------------------------------------------------------------------------------


def plan_metrics(source: MetricsSource, services: Iterable[str], window: Window) -> list[PlannedTask]:
    """One query per service (SQL) or per metric (PromQL): the rows of each fit the row limit."""
    if source.type == "prometheus":
        return [
            PlannedTask(
                label=f"metric {metric} of {service}",
                purpose="metrics",
                service=service,
                metric=metric,
                task={
                    "type": "prometheus",
                    "command": template.replace("{service}", service),
                    "params": {
                        "connection": source.connection,
                        "start": window.start,
                        "end": window.end,
                        "step": f"{source.step_seconds:g}s",
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
            metric = item.metric or "value"
            samples = prometheus_samples(data)
            if samples:
                series[f"{item.service}_{metric}"] = pd.Series(samples, dtype=float)
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
        plan += [_logs_task(sources.logs, involved, window), _startup_logs_task(sources.logs, window)]
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
            collected.failures.append(failure_line(item, result))
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
                collected.failures.append(failure_line(item, result))
    collected.observations = _merge_cache_sections(observations)
    non_empty_logs = [f for f in log_frames if not f.empty]
    non_empty_traces = [f for f in trace_frames if not f.empty]
    # A start-up line logged at an error level comes back from both logs tasks: it is one line.
    collected.logs = (
        pd.concat(non_empty_logs, ignore_index=True).drop_duplicates(subset=["time", "service", "level", "message"])
        if non_empty_logs
        else None
    )
    collected.traces = (
        pd.concat(non_empty_traces, ignore_index=True).drop_duplicates(subset=["trace_id", "span_id"])
        if non_empty_traces
        else None
    )
    return collected


def failure_line(item: PlannedTask, result: Mapping[str, Any]) -> str:
    """The report's line for a task that did not succeed: what it was, how it ended and why.

    The reason is the executor's error (code and message) on one line, so that the report says why
    a source is missing without anyone opening the audit log.
    """
    error = result.get("error") or {}
    message = " ".join(str(error.get("message") or "").split())
    if len(message) > FAILURE_REASON_CHARS:
        message = message[: FAILURE_REASON_CHARS - 1] + "…"
    return f"{item.label}: {result.get('status')} ({error.get('code', '?')}: {message})"


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


def _logs_frame(item: PlannedTask, data: Any) -> pd.DataFrame:
    if item.task.get("type") == "elasticsearch":
        records = [hit.get("_source", hit) for hit in _es_hits(data)]
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return frame
        time_field = next((c for c in ("@timestamp", "timestamp", "time") if c in frame.columns), None)
        if time_field is None:
            return pd.DataFrame()
        # As a duration since the epoch: the datetime's unit is pandas' choice (ns in 2.x, us from 3.0
        # for text), so its raw integers are not nanoseconds.
        moments = pd.to_datetime(frame[time_field], utc=True, errors="coerce")
        frame["time"] = (moments - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
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
            tags.update(span.get("tag") or {})  # Jaeger's tags-as-fields
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
