"""One small incident's telemetry, written into every kind of source the collection planner reads.

The same numbers go into PostgreSQL and MariaDB tables (the local servers, in a schema / database
of this run's own, dropped afterwards), embedded ClickHouse (chdb, a database of its own), an
OpenSearch-compatible server (osmem-server: log documents, and spans the way Jaeger stores them)
and Prometheus (Debian's binary over blocks backfilled with promtool). A contract test plans
collection for each source, runs the plan through the real executors and reads the results back:
every source has to give the same frames.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pymysql

from tests.executor_servers import RunningPrometheus, stop_opensearch

#: Seconds between samples, and the planner's step: every bucket holds one sample.
STEP = 15.0
#: Seconds of history before the end of the window.
HISTORY = 600.0
#: The metric series: ``(service, metric) -> value at a time``. The cache and database degrade
#: over the last three minutes; checkout's CPU stays where it was.
SERIES: dict[tuple[str, str], tuple[float, float]] = {
    ("checkout", "cpu"): (0.25, 0.25),
    ("checkout", "error"): (0.5, 6.0),
    ("orders-db", "connections"): (12.0, 95.0),
    ("orders-db", "cpu"): (0.1, 0.7),
}
DEGRADED_SECONDS = 180.0


@dataclass(frozen=True)
class Incident:
    """The telemetry of one incident, ending at ``end`` (a multiple of ``STEP``)."""

    end: float
    #: ``(time, service, level, message, trace_id)``
    logs: list[tuple[float, str, str, str, str]] = field(default_factory=list)
    #: ``(trace_id, span_id, parent, service, duration ms, status, time)``
    spans: list[tuple[str, str, str, str, float, str, float]] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.end - HISTORY

    @property
    def times(self) -> list[float]:
        return [self.start + i * STEP for i in range(int(HISTORY / STEP) + 1)]

    def value(self, service: str, metric: str, at: float) -> float:
        before, after = SERIES[(service, metric)]
        return after if at > self.end - DEGRADED_SECONDS else before

    def samples(self) -> Iterator[tuple[float, str, str, float]]:
        """``(time, service, metric, value)`` for every series."""
        for service, metric in SERIES:
            for at in self.times:
                yield at, service, metric, self.value(service, metric, at)

    @property
    def error_trace_ids(self) -> list[str]:
        return sorted({trace for _, _, level, _, trace in self.in_window_logs() if level == "ERROR" and trace})

    def in_window_logs(self) -> list[tuple[float, str, str, str, str]]:
        return [line for line in self.logs if self.start <= line[0] <= self.end]


def make_incident(now: float | None = None) -> Incident:
    """The incident, its window ending on the last whole step before ``now``."""
    end = (int((now or time.time()) // STEP) - 1) * STEP
    first_error = end - 150
    logs = [
        (first_error, "checkout", "ERROR", "could not obtain a connection from the pool", "trace-a1"),
        (end - 120, "checkout", "ERROR", "timeout waiting for orders-db", "trace-b2"),
        (end - 90, "checkout", "WARN", "retrying order 77", "trace-c3"),
        (end - 60, "checkout", "INFO", "health check ok", "trace-d4"),  # not a level the planner asks for
        # ...but a process starting is asked for at any level: a rollout shows in it.
        (end - 170, "checkout", "INFO", "Started CheckoutApplication in 4.1 seconds (process running for 4.6)", ""),
        (end - 30, "orders-db", "ERROR", "remaining connection slots are reserved", ""),
        (end - HISTORY - 300, "checkout", "ERROR", "an older incident", "trace-old"),  # before the window
    ]
    spans = [
        ("trace-a1", "span-a1", "", "checkout", 5000.0, "error", first_error - 1),
        ("trace-a1", "span-a2", "span-a1", "orders-db", 4900.0, "error", first_error - 0.9),
        ("trace-b2", "span-b1", "", "checkout", 3000.0, "error", end - 121),
        ("trace-c3", "span-c1", "", "checkout", 40.0, "ok", end - 91),
        ("trace-old", "span-o1", "", "checkout", 800.0, "error", end - HISTORY - 301),
    ]
    return Incident(end=end, logs=logs, spans=spans)


# -- SQL: PostgreSQL, MariaDB, ClickHouse (chdb) -------------------------------------------------------


@contextmanager
def postgres_tables(incident: Incident, dsn: str = "host=127.0.0.1 dbname=test user=postgres") -> Iterator[str]:
    """The incident in ``metrics``, ``logs`` and ``traces`` of a schema of its own; yields the schema."""
    schema = f"rca_contract_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            f"CREATE SCHEMA {schema}; "
            f"CREATE TABLE {schema}.metrics (time timestamptz, service text, metric text, value float8); "
            f"CREATE TABLE {schema}.logs (time timestamptz, service text, level text, message text, trace_id text); "
            f"CREATE TABLE {schema}.traces (trace_id text, span_id text, parent_span_id text, service_name text, "
            "duration float8, status text, timestamp timestamptz)"
        )
        try:
            with db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {schema}.metrics VALUES (to_timestamp(%s), %s, %s, %s)", list(incident.samples())
                )
                cursor.executemany(
                    f"INSERT INTO {schema}.logs VALUES (to_timestamp(%s), %s, %s, %s, %s)", incident.logs
                )
                cursor.executemany(
                    f"INSERT INTO {schema}.traces VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s))", incident.spans
                )
            yield schema
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def mysql_tables(incident: Incident, host: str = "127.0.0.1", port: int = 3306) -> Iterator[str]:
    """The incident in a MariaDB database of its own; yields the database name."""
    database = f"rca_contract_{secrets.token_hex(4)}"
    db = pymysql.connect(host=host, port=port, user="root", autocommit=True)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {database}")
            cursor.execute(
                f"CREATE TABLE {database}.metrics (time DATETIME(3), service VARCHAR(64), metric VARCHAR(64), "
                "value DOUBLE)"
            )
            cursor.execute(
                f"CREATE TABLE {database}.logs (time DATETIME(3), service VARCHAR(64), level VARCHAR(16), "
                "message TEXT, trace_id VARCHAR(64))"
            )
            cursor.execute(
                f"CREATE TABLE {database}.traces (trace_id VARCHAR(64), span_id VARCHAR(64), "
                "parent_span_id VARCHAR(64), service_name VARCHAR(64), duration DOUBLE, status VARCHAR(16), "
                "timestamp DATETIME(3))"
            )
            # FROM_UNIXTIME and the planner's UNIX_TIMESTAMP agree within one session time zone
            cursor.executemany(
                f"INSERT INTO {database}.metrics VALUES (FROM_UNIXTIME(%s), %s, %s, %s)", list(incident.samples())
            )
            cursor.executemany(f"INSERT INTO {database}.logs VALUES (FROM_UNIXTIME(%s), %s, %s, %s, %s)", incident.logs)
            cursor.executemany(
                f"INSERT INTO {database}.traces VALUES (%s, %s, %s, %s, %s, %s, FROM_UNIXTIME(%s))", incident.spans
            )
        yield database
    finally:
        with db.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        db.close()


@contextmanager
def clickhouse_tables(incident: Incident) -> Iterator[str]:
    """The incident in embedded ClickHouse (this process's chdb engine); yields the database name.

    The connection stays open until the end: chdb drops an in-memory engine with its last
    connection, and the executor's embedded connections share this one's engine.
    """
    import chdb

    database = f"rca_contract_{secrets.token_hex(4)}"
    engine = chdb.connect(":memory:")
    try:
        engine.query(f"CREATE DATABASE {database}")
        engine.query(
            f"CREATE TABLE {database}.metrics (time DateTime64(3), service String, metric String, value Float64) "
            "ENGINE = MergeTree ORDER BY time"
        )
        engine.query(
            f"CREATE TABLE {database}.logs (time DateTime64(3), service String, level String, message String, "
            "trace_id String) ENGINE = MergeTree ORDER BY time"
        )
        engine.query(
            f"CREATE TABLE {database}.traces (trace_id String, span_id String, parent_span_id String, "
            "service_name String, duration Float64, status String, timestamp DateTime64(3)) "
            "ENGINE = MergeTree ORDER BY timestamp"
        )
        engine.query(f"INSERT INTO {database}.metrics VALUES " + _values(incident.samples(), time_at=0))
        engine.query(f"INSERT INTO {database}.logs VALUES " + _values(incident.logs, time_at=0))
        engine.query(f"INSERT INTO {database}.traces VALUES " + _values(incident.spans, time_at=6))
        yield database
    finally:
        engine.query(f"DROP DATABASE IF EXISTS {database}")
        engine.close()


def _values(rows: Any, time_at: int) -> str:
    def literal(index: int, value: Any) -> str:
        if index == time_at:
            return f"toDateTime64({value:.3f}, 3)"
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return repr(float(value))

    return ", ".join("(" + ", ".join(literal(i, v) for i, v in enumerate(row)) + ")" for row in rows)


# -- OpenSearch API: logs, and spans as Jaeger writes them --------------------------------------------

#: Jaeger's span mapping (jaeger-span-*): times in microseconds, tags and references nested.
JAEGER_SPAN_MAPPING = {
    "mappings": {
        "properties": {
            "traceID": {"type": "keyword"},
            "spanID": {"type": "keyword"},
            "operationName": {"type": "keyword"},
            "startTime": {"type": "long"},
            "startTimeMillis": {"type": "date", "format": "epoch_millis"},
            "duration": {"type": "long"},
            "process": {"properties": {"serviceName": {"type": "keyword"}}},
            "tags": {
                "type": "nested",
                "properties": {"key": {"type": "keyword"}, "type": {"type": "keyword"}, "value": {"type": "keyword"}},
            },
            "references": {
                "type": "nested",
                "properties": {
                    "refType": {"type": "keyword"},
                    "traceID": {"type": "keyword"},
                    "spanID": {"type": "keyword"},
                },
            },
        }
    }
}
LOG_MAPPING = {
    "mappings": {
        "properties": {
            "@timestamp": {"type": "date"},
            "level": {"type": "keyword"},
            "service": {"type": "keyword"},
            "message": {"type": "text"},
            "trace_id": {"type": "keyword"},
        }
    }
}


def jaeger_span(trace: str, span: str, parent: str, service: str, duration_ms: float, status: str, at: float) -> dict:
    """A span document the way Jaeger's Elasticsearch/OpenSearch storage writes it."""
    tags = [{"key": "span.kind", "type": "string", "value": "server"}]
    if status == "error":
        tags.append({"key": "error", "type": "bool", "value": "true"})
    return {
        "traceID": trace,
        "spanID": span,
        "operationName": "POST /orders",
        "references": [{"refType": "CHILD_OF", "traceID": trace, "spanID": parent}] if parent else [],
        "startTime": int(at * 1_000_000),
        "startTimeMillis": int(at * 1000),
        "duration": int(duration_ms * 1000),
        "process": {"serviceName": service, "tags": []},
        "tags": tags,
    }


@contextmanager
def opensearch_indices(incident: Incident) -> Iterator[str]:
    """An osmem-server holding ``contract-logs-<day>`` and ``contract-span-<day>``; yields its URL."""
    from osmem_server import OsmemServer

    server = OsmemServer.start(freeze=False, japanese=False)
    try:
        day = datetime.fromtimestamp(incident.end, UTC).strftime("%Y-%m-%d")
        server.request("PUT", f"/contract-logs-{day}", LOG_MAPPING)
        for number, (at, service, level, message, trace) in enumerate(incident.logs):
            document = {"@timestamp": _iso(at), "service": service, "level": level, "message": message}
            if trace:
                document["trace_id"] = trace
            server.request("PUT", f"/contract-logs-{day}/_doc/log-{number}", document)
        server.request("PUT", f"/contract-span-{day}", JAEGER_SPAN_MAPPING)
        for span in incident.spans:
            server.request("PUT", f"/contract-span-{day}/_doc/{span[1]}", jaeger_span(*span))
        server.request("POST", "/_refresh")
        yield server.url
    finally:
        stop_opensearch(server)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- Prometheus --------------------------------------------------------------------------------------


#: Where the verification planner's PromQL (cAdvisor and HTTP-server names) finds ``checkout``.
CONTAINER = {"namespace": "shop", "pod": "checkout-7d9f5-x2k4q", "service": "checkout"}


def openmetrics(incident: Incident) -> str:
    """The metric series as gauges ``contract_<metric>{service=...}``, one sample per step; and for
    checkout the cAdvisor and HTTP-server series the verification planner asks for, five times
    higher (rates) or slower over the last three minutes."""
    lines = []
    for metric in sorted({metric for _, metric in SERIES}):
        lines.append(f"# TYPE contract_{metric} gauge")
        for service, name in SERIES:
            if name != metric:
                continue
            for at in incident.times:
                lines.append(f'contract_{metric}{{service="{service}"}} {incident.value(service, metric, at)} {at:.0f}')
    pod = 'namespace="{namespace}",pod="{pod}"'.format(**CONTAINER)
    http = 'namespace="{namespace}",service="{service}"'.format(**CONTAINER)
    # per-second rates (normal, degraded) of each counter series
    counters = {
        "container_cpu_usage_seconds_total": [(pod, 0.2, 1.0)],
        "container_fs_writes_bytes_total": [(pod, 1e5, 5e5)],
        "container_network_receive_errors_total": [(pod, 0.1, 0.5)],
        "container_network_transmit_errors_total": [(pod, 0.1, 0.5)],
        "http_requests_total": [(http + ',code="200"', 50.0, 50.0), (http + ',code="500"', 0.5, 2.5)],
        # latency: slow requests (0.1-1 s) take over from fast ones (<= 0.1 s)
        "http_request_duration_seconds_bucket": [
            (http + ',le="0.1"', 50.0, 0.5),
            (http + ',le="1"', 50.5, 50.5),
            (http + ',le="+Inf"', 50.5, 50.5),
        ],
    }
    for sample_name, series in counters.items():
        histogram = sample_name.endswith("_bucket")
        family = sample_name.removesuffix("_bucket").removesuffix("_total")
        lines.append(f"# TYPE {family} {'histogram' if histogram else 'counter'}")
        for labels, normal, degraded in series:
            total = 0.0
            for at in incident.times:
                total += (degraded if at > incident.end - DEGRADED_SECONDS else normal) * STEP
                lines.append(f"{sample_name}{{{labels}}} {total:.1f} {at:.0f}")
    lines.append("# TYPE container_memory_working_set_bytes gauge")
    for at in incident.times:
        megabytes = 900 if at > incident.end - DEGRADED_SECONDS else 180
        lines.append(f"container_memory_working_set_bytes{{{pod}}} {megabytes * 2**20} {at:.0f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


#: PromQL per metric name, as an environment's ``telemetry.metrics.queries`` gives them.
PROMQL_QUERIES = {metric: f'contract_{metric}{{service="{{service}}"}}' for metric in sorted({m for _, m in SERIES})}


@contextmanager
def prometheus_server(incident: Incident, folder: Path) -> Iterator[str]:
    """Debian's Prometheus over the incident's samples (backfilled); yields its URL."""
    server = RunningPrometheus(folder, end=incident.end, samples=openmetrics(incident))
    try:
        yield server.url
    finally:
        server.close()


@contextmanager
def every_source(incident: Incident, folder: Path) -> Iterator[dict[str, str]]:
    """All sources at once: ``{"postgres": schema, "mysql": database, "clickhouse": database,
    "opensearch": url, "prometheus": url}``."""
    with ExitStack() as stack:
        yield {
            "postgres": stack.enter_context(postgres_tables(incident)),
            "mysql": stack.enter_context(mysql_tables(incident)),
            "clickhouse": stack.enter_context(clickhouse_tables(incident)),
            "opensearch": stack.enter_context(opensearch_indices(incident)),
            "prometheus": stack.enter_context(prometheus_server(incident, folder)),
        }
