"""A demo incident: simulated telemetry of a service graph, with the root cause bound to a real,
locally broken component.

The simulator (``models.simulate_incident``) draws a call graph and an incident with a known root
cause. Its metrics, logs and spans are written into PostgreSQL tables (``rca_demo.*``) that the
environment's ``telemetry:`` section points at, so collection goes through the real executors.
The root-cause component is bound to something really broken on this machine — PostgreSQL
sessions stuck in long queries, MariaDB sessions stuck likewise, an HTTP dependency answering
500, a Redis evicting keys — so that verification and the fix act on the real thing.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import psycopg
import yaml

from gateway.demo import accounts
from gateway.demo.faults import (
    FailingDependency,
    MySQLConnectionHog,
    PostgresConnectionHog,
    RedisEvictionStorm,
)
from models import FaultType, SimulatedIncident, Topology, simulate_incident

Scenario = Literal["pool", "latency", "errors", "cache"]
SCENARIOS: dict[str, tuple[FaultType, str]] = {
    "pool": (FaultType.DB_POOL_EXHAUSTED, "DB connection pool exhausted: sessions stuck in long queries (PostgreSQL)"),
    "latency": (FaultType.DB_SLOW_QUERY, "latency spike from slow queries holding locks (MariaDB)"),
    "errors": (FaultType.DEPENDENCY_DOWN, "error surge: a dependency answers 500 (HTTP)"),
    "cache": (FaultType.CACHE, "cache eviction storm (Redis)"),
}
#: This machine's PostgreSQL, where the telemetry tables and the "pool" fault live by default.
LOCAL_POSTGRES: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}
#: This machine's MariaDB, where the databases live by default and the "latency" fault is injected.
LOCAL_MYSQL: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
SCHEMA = "rca_demo"
ENVIRONMENT = "local"
#: How long a fault is in place before its alert fires (longer than a "long-running" statement).
FAULT_DEVELOPS_SECONDS = 6.0


@dataclass
class DemoIncident:
    """A prepared demo: its configuration folder, the alert to send, and the truth to check."""

    scenario: str
    config_dir: Path
    alert: dict[str, Any]
    root_cause: tuple[str, FaultType]
    incident: SimulatedIncident
    description: str
    #: The injected faults by role (``pool``, ``dependency``, ``cache``, ``healthy``), to act on them.
    faults: dict[str, Any]


@contextmanager
def prepared_incident(
    scenario: str,
    workdir: Path,
    *,
    seed: int = 7,
    postgres: Mapping[str, Any] | None = None,
    mysql: Mapping[str, Any] | None = None,
) -> Iterator[DemoIncident]:
    """Simulate, seed the telemetry tables, inject the real fault; undo it all on exit.

    ``postgres`` is the server holding the telemetry tables and the "pool" fault (a connection
    entry: host, port, dbname, user), ``mysql`` the one behind the databases and the "latency"
    fault (host, port, user, database); this machine's by default. Tests that share the machine
    with other runs give private servers: another run would rewrite the same tables, and its
    stuck sessions would show in this run's process lists.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    fault, description = SCENARIOS[scenario]
    incident = _simulate_with_root_kind(seed, fault)
    shifted = _shift_to_now(incident)
    root_service = incident.root_cause[0] if incident.root_cause else ""
    with ExitStack() as stack:
        pg = {**LOCAL_POSTGRES, **(postgres or {})}
        dsn = " ".join(f"{key}={value}" for key, value in pg.items())
        maria = {**LOCAL_MYSQL, **(mysql or {})}
        connections: dict[str, dict[str, Any]] = _local_connections(pg, dsn, maria)
        faults: dict[str, Any] = {}
        injected_at = time.monotonic()
        bindings = _bind(incident.topology, root_service, scenario, stack, connections, faults, dsn)
        _seed_telemetry(shifted, dsn)
        accounts.grant_postgres_schema(dsn, SCHEMA)
        config_dir = _write_environment(workdir / "deployments", bindings, connections)
        alert = _alertmanager_payload(shifted, root_service)
        # An alert fires once its condition has lasted (Alertmanager's `for:`): by then stuck
        # statements have run for a while, which is what the process lists show.
        time.sleep(max(0.0, FAULT_DEVELOPS_SECONDS - (time.monotonic() - injected_at)))
        yield DemoIncident(
            scenario=scenario,
            config_dir=config_dir,
            alert=alert,
            root_cause=(root_service, fault),
            incident=shifted,
            description=description,
            faults=faults,
        )


def _simulate_with_root_kind(seed: int, fault: FaultType) -> SimulatedIncident:
    """A small graph (readable in a terminal) whose root cause has the wanted fault."""
    return simulate_incident(seed, fault, 12)


def _shift_to_now(incident: SimulatedIncident) -> SimulatedIncident:
    """The same incident, its last sample now (so `now-1h` style queries and the alert agree)."""
    offset = time.time() - incident.telemetry.end - 5
    telemetry = incident.telemetry
    metrics = telemetry.metrics.copy()
    metrics["time"] = metrics["time"] + offset
    logs = None if telemetry.logs is None else telemetry.logs.assign(time=telemetry.logs["time"] + offset)
    traces = telemetry.traces
    if traces is not None and "time" in traces.columns:
        traces = traces.assign(time=traces["time"] + offset)
    return incident.model_copy(
        update={
            "telemetry": type(telemetry)(metrics=metrics, logs=logs, traces=traces),
            "alert_time": incident.alert_time + offset,
            "inject_time": None if incident.inject_time is None else incident.inject_time + offset,
        }
    )


def _local_connections(postgres: Mapping[str, Any], dsn: str, mysql: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The servers the incident lives on; reads go through their read-only accounts where they have them."""
    return {
        "postgres": {"default": {**postgres, **accounts.postgres_read(dsn)}},
        "mysql": {"default": {**mysql, **accounts.mysql_read(dict(mysql))}},
        "redis": {"default": {"url": "redis://127.0.0.1:6379/0", **accounts.redis_read("127.0.0.1", 6379)}},
        "api": {"default": {}},
    }


def _bind(
    topology: Topology,
    root: str,
    scenario: str,
    stack: ExitStack,
    connections: dict[str, dict[str, Any]],
    faults: dict[str, Any],
    dsn: str,
) -> dict[str, Any]:
    """The topology with every component pointed at something real on this machine."""
    healthy = stack.enter_context(FailingDependency(status=200))  # every other service answers 200
    faults["healthy"] = healthy
    services = []
    for node in topology.services:
        entry = node.model_dump(exclude_none=True, mode="json")
        entry.pop("host", None)
        if node.kind == "database":
            entry["engine"], entry["connection"] = "mysql", "default"  # healthy MariaDB by default
        elif node.kind == "cache":
            entry["connection"] = "default"
        else:
            entry["health_url"] = f"{healthy.url}/{node.name}/health"
        services.append(entry)
    by_name = {entry["name"]: entry for entry in services}
    root_entry = by_name.get(root)
    if root_entry is not None:
        if scenario == "pool":
            faults["pool"] = stack.enter_context(PostgresConnectionHog(dsn, sessions=12, hold_seconds=900, lock=False))
            root_entry.update(engine="postgres", connection="default")
        elif scenario == "latency":
            server = connections["mysql"]["default"]
            hog = MySQLConnectionHog(
                host=server["host"],
                port=int(server["port"]),
                user=server["user"],
                database=server["database"],
                sessions=4,
                hold_seconds=900,
            )
            faults["pool"] = stack.enter_context(hog)
            root_entry.update(engine="mysql", connection="default")
            for entry in services:  # the other databases are PostgreSQL here, and healthy
                if entry is not root_entry and entry.get("kind") == "database":
                    entry.update(engine="postgres", connection="default")
        elif scenario == "errors":
            failing = faults["dependency"] = stack.enter_context(FailingDependency(status=500))
            root_entry["health_url"] = f"{failing.url}/{root}/health"
        elif scenario == "cache":
            storm = faults["cache"] = stack.enter_context(RedisEvictionStorm())
            accounts.create_redis_read_user("127.0.0.1", storm.port)
            connections["redis"]["evicting"] = {"url": storm.url, **accounts.redis_read("127.0.0.1", storm.port)}
            root_entry["connection"] = "evicting"
    return {"services": services, "calls": [list(edge) for edge in topology.calls]}


def _seed_telemetry(incident: SimulatedIncident, dsn: str) -> None:
    """Metrics (long format), logs and spans of the incident into ``rca_demo.*`` via COPY."""
    telemetry = incident.telemetry
    long = telemetry.metrics.melt(id_vars="time", var_name="column", value_name="value").dropna()
    services = sorted({node.name for node in incident.topology.services}, key=len, reverse=True)
    split = long["column"].map(lambda column: _split_column(column, services))
    long = long.assign(service=split.str[0], metric=split.str[1])
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        db.execute(
            f"DROP TABLE IF EXISTS {SCHEMA}.metrics, {SCHEMA}.logs, {SCHEMA}.traces; "
            f"CREATE TABLE {SCHEMA}.metrics (time timestamptz NOT NULL, service text NOT NULL, metric text NOT NULL, "
            "value double precision); "
            f"CREATE INDEX ON {SCHEMA}.metrics (service, time); "
            f"CREATE TABLE {SCHEMA}.logs (time timestamptz NOT NULL, service text, level text, message text, "
            "trace_id text); "
            f"CREATE TABLE {SCHEMA}.traces (trace_id text, span_id text, parent_span_id text, service_name text, "
            "duration double precision, status text, timestamp timestamptz)"
        )
        _copy(db, f"{SCHEMA}.metrics (time, service, metric, value)", long[["time", "service", "metric", "value"]])
        if telemetry.logs is not None and not telemetry.logs.empty:
            logs = telemetry.logs[["time", "service", "level", "message", "trace_id"]]
            _copy(db, f"{SCHEMA}.logs (time, service, level, message, trace_id)", logs)
        if telemetry.traces is not None and not telemetry.traces.empty:
            traces = telemetry.traces
            start = traces["time"] if "time" in traces.columns else pd.Series(incident.alert_time, index=traces.index)
            status = (
                traces["status"]
                .astype("string")
                .str.lower()
                .map(lambda s: "error" if s in ("error", "err", "5xx") else "ok")
            )
            frame = pd.DataFrame(
                {
                    "trace_id": traces["trace_id"],
                    "span_id": traces["span_id"],
                    "parent_span_id": traces["parent"],
                    "service_name": traces["service"],
                    "duration": traces["duration"],
                    "status": status,
                    "timestamp": start,
                }
            )
            _copy(
                db,
                f"{SCHEMA}.traces (trace_id, span_id, parent_span_id, service_name, duration, status, timestamp)",
                frame,
            )


def _split_column(column: str, services: list[str]) -> tuple[str, str]:
    for service in services:
        if column.startswith(service + "_"):
            return service, column[len(service) + 1 :]
    service, _, metric = column.partition("_")
    return service, metric


def _copy(db: psycopg.Connection, target: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    converted = frame.copy()
    for column in converted.columns:
        if column in ("time", "timestamp"):
            converted[column] = pd.to_datetime(converted[column], unit="s", utc=True).map(lambda t: t.isoformat())
    converted.to_csv(buffer, index=False, header=False)
    with db.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def _write_environment(root: Path, topology: dict[str, Any], connections: dict[str, Any]) -> Path:
    folder = root / ENVIRONMENT
    folder.mkdir(parents=True, exist_ok=True)
    environment = {
        "description": "the demo: this machine, with simulated telemetry and a real broken component",
        "work_pool": "rca-local",
        "agents": ["agent-local-001"],
        "limits": {"max_timeout_seconds": 600, "max_rows": 10000},
        "telemetry": {
            "metrics": {"type": "postgres", "connection": "default", "table": f"{SCHEMA}.metrics"},
            "logs": {"type": "postgres", "connection": "default", "table": f"{SCHEMA}.logs"},
            "traces": {"type": "postgres", "connection": "default", "table": f"{SCHEMA}.traces"},
        },
        "topology": "topology.yaml",
    }
    (folder / "environment.yaml").write_text(yaml.safe_dump(environment, sort_keys=False))
    (folder / "connections.yaml").write_text(yaml.safe_dump(connections, sort_keys=False))
    (folder / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    return root


def _alertmanager_payload(incident: SimulatedIncident, root: str) -> dict[str, Any]:
    """The simulator's alert as Alertmanager would send it, for environment ``local``."""
    alert = json.loads(json.dumps(incident.alert))
    labels = {**alert.get("labels", {}), "env": ENVIRONMENT}
    starts = datetime.fromtimestamp(incident.alert_time, UTC).isoformat().replace("+00:00", "Z")
    alert.update(labels=labels, startsAt=starts)
    group_labels = {"alertname": labels.get("alertname", "alert"), "service": labels.get("service", root)}
    return {
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "cloud-agent-rca",
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": alert.get("annotations", {}),
        "externalURL": "http://alertmanager.local:9093",
        "alerts": [alert],
    }
