"""Typed evidence from executor results, and the pure parsers that build it.

Executors return plain dicts. SQL results are ``{"result_sets": [{"statement", "columns",
"rows", "row_count", "truncated"}]}``; Redis ``INFO`` is a flat dict; an HTTP result is
``{"status_code", "reason", "url", "headers", "body", "elapsed_ms"}``; a PromQL result is tidy
``{"rows": [{"labels", "timestamp", "value"}]}``. A whole task result is
``{"status", "data", "error": {"code", "message"}, ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: A query running longer than this (seconds) counts as long-running.
LONG_RUNNING_SECONDS = 5.0
#: Statements kept in a snapshot (their ids are what a fix may terminate), and clients.
MAX_TOP_QUERIES = 50
MAX_CLIENTS = 10
#: A client whose long-running sessions are at least this many, and this share of its sessions,
#: has an exhausted pool: new requests of that application wait for a connection.
STUCK_POOL_MIN_SESSIONS = 5
STUCK_POOL_SHARE = 0.8

_IDLE_STATES = {"idle", "sleep", ""}
_MYSQL_IDLE_COMMANDS = {"sleep", "daemon", "binlog dump", "connect"}


class TopQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str | None = None
    seconds: float
    state: str = ""
    query: str = ""


class ClientSessions(BaseModel):
    """The sessions one client (an application's pool) holds on a database."""

    model_config = ConfigDict(frozen=True)

    #: ``application_name`` (PostgreSQL) or ``user@host/db`` (MySQL); ``usename`` when unnamed.
    client: str
    connections: int = Field(ge=0)
    active: int = Field(default=0, ge=0)
    long_running: int = Field(default=0, ge=0)


class DbSnapshot(BaseModel):
    """What a database was doing: connections and its longest-running statements."""

    model_config = ConfigDict(frozen=True)

    service: str
    engine: Literal["postgres", "mysql"]
    connections: int = Field(ge=0)
    max_connections: int | None = Field(default=None, ge=1)
    active: int = Field(default=0, ge=0)
    #: Statements running for longer than ``LONG_RUNNING_SECONDS``.
    long_running: int = Field(default=0, ge=0)
    longest_seconds: float = Field(default=0.0, ge=0)
    waiting_on_locks: int = Field(default=0, ge=0)
    top_queries: list[TopQuery] = Field(default_factory=list)
    #: Sessions per client, most long-running first: an application whose whole pool is stuck in
    #: long statements shows here even when the server is far from its ``max_connections``.
    clients: list[ClientSessions] = Field(default_factory=list)

    @property
    def stuck_client(self) -> ClientSessions | None:
        """The client with the most long-running sessions, if it has any."""
        return self.clients[0] if self.clients and self.clients[0].long_running > 0 else None

    @property
    def usage(self) -> float | None:
        """Connections as a fraction of the maximum, when the maximum is known."""
        return None if not self.max_connections else self.connections / self.max_connections


class HealthCheck(BaseModel):
    """An HTTP health probe: ``status_code`` is ``None`` when the service could not be reached."""

    model_config = ConfigDict(frozen=True)

    service: str
    status_code: int | None = None
    ok: bool
    latency_ms: float | None = None
    error: str | None = None

    @property
    def unreachable(self) -> bool:
        return self.status_code is None


class CacheStats(BaseModel):
    """Redis ``INFO stats``/``INFO memory``/``INFO clients`` counters."""

    model_config = ConfigDict(frozen=True)

    service: str
    evicted_keys: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    used_memory: int | None = None
    maxmemory: int | None = None
    connected_clients: int | None = None
    rejected_connections: int = 0
    #: True when the counters cover a window between two snapshots (``since``), not Redis's lifetime.
    window: bool = False

    @property
    def hit_ratio(self) -> float | None:
        total = self.keyspace_hits + self.keyspace_misses
        return None if total == 0 else self.keyspace_hits / total

    @property
    def memory_usage(self) -> float | None:
        if not self.maxmemory or self.used_memory is None:
            return None
        return self.used_memory / self.maxmemory

    def since(self, earlier: CacheStats) -> CacheStats:
        """These stats over the window since ``earlier``: counters as differences, gauges as now.

        Redis counts evictions, hits, misses and rejections from its start (or ``CONFIG
        RESETSTAT``), so a snapshot alone cannot say whether keys are *still* being evicted. Counters
        that went down mean a restart or a reset in between: then they count from that point.
        """
        counters = ("evicted_keys", "keyspace_hits", "keyspace_misses", "rejected_connections")
        now, before = self.model_dump(), earlier.model_dump()
        reset = any(now[name] < before[name] for name in counters)
        deltas = {name: now[name] if reset else now[name] - before[name] for name in counters}
        return self.model_copy(update={**deltas, "window": True})


class DeployEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    time: float
    revision: str | None = None
    #: Read from the component's own start-up lines (a rollout or a restart), not reported by the platform.
    from_logs: bool = False

    def late_tolerance(self, step: float) -> float:
        """How long after a change point this event may be stamped and still count as before it.

        The platform's rollout history is stamped by another clock, and its events lag (60 s); a
        process stamps its own start-up line, so only the metrics' sampling blurs it (one step), and
        a restart more than a sample after the change (a crash, an OOM kill) is not read as its cause.
        """
        return step if self.from_logs else 60.0


class PodStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    restarts: int = Field(default=0, ge=0)
    ready: bool = True
    #: ``OOMKilled``, ``CrashLoopBackOff``, ``Error``... (the last termination or waiting reason).
    reason: str | None = None


class Observations(BaseModel):
    """Everything executors told us, grouped by type."""

    model_config = ConfigDict(frozen=True)

    db: list[DbSnapshot] = Field(default_factory=list)
    health: list[HealthCheck] = Field(default_factory=list)
    cache: list[CacheStats] = Field(default_factory=list)
    deploys: list[DeployEvent] = Field(default_factory=list)
    pods: list[PodStatus] = Field(default_factory=list)

    def merged(self, other: Observations) -> Observations:
        return Observations(
            db=[*self.db, *other.db],
            health=[*self.health, *other.health],
            cache=[*self.cache, *other.cache],
            deploys=[*self.deploys, *other.deploys],
            pods=[*self.pods, *other.pods],
        )


# ---------------------------------------------------------------------------------------------
# SQL


def db_snapshot_from_result(data: Mapping[str, Any], engine: str, service: str) -> DbSnapshot:
    """A ``DbSnapshot`` from a SQL executor's ``data``.

    Understands PostgreSQL ``pg_stat_activity`` rows (a ``duration`` column, or ``query_start``
    and ``now``), MySQL ``SHOW [FULL] PROCESSLIST`` and ``information_schema.processlist``
    (``Id``/``Time``/``State``/``Info``), ``SHOW STATUS LIKE 'Threads_connected'`` and
    ``SHOW VARIABLES LIKE 'max_connections'``, and a ``max_connections`` column or row anywhere.

    Args:
        data: ``{"result_sets": [...]}`` (or a whole task result holding it under ``data``).
        engine: ``postgres`` or ``mysql``.
        service: the database's component name.
    """
    if "result_sets" not in data and isinstance(data.get("data"), Mapping):
        data = data["data"]
    engine_name: Literal["postgres", "mysql"] = "mysql" if engine.lower() in ("mysql", "mariadb") else "postgres"
    sessions: list[dict[str, Any]] = []
    status: dict[str, Any] = {}
    for result_set in data.get("result_sets") or []:
        columns = [str(column).lower() for column in result_set.get("columns") or []]
        rows = result_set.get("rows") or []
        if _is_key_value(columns):
            for row in rows:
                if len(row) >= 2:
                    status[str(row[0]).lower()] = row[1]
            continue
        for row in rows:
            record = dict(zip(columns, row, strict=False))
            if "max_connections" in record and len(record) <= 3 and not _session_like(record):
                status["max_connections"] = record["max_connections"]
                if "connections" in record:
                    status["connections"] = record["connections"]
                continue
            if record.get("max_connections") is not None:  # a session query that carries the limit
                status.setdefault("max_connections", record["max_connections"])
            sessions.append(record)
    tops: list[TopQuery] = []
    active = long_running = waiting = 0
    per_client: dict[str, list[int]] = {}
    for record in sessions:
        state = str(record.get("state") or "").strip().lower()
        idle = _is_idle(record, state)
        seconds = _session_seconds(record)
        query = str(record.get("query") or record.get("info") or "")
        counts = per_client.setdefault(_client_of(record), [0, 0, 0])
        counts[0] += 1
        if not idle:
            active += 1
            counts[1] += 1
        if _waits_on_lock(record, state):
            waiting += 1
        if seconds is not None and not idle and query:
            if seconds > LONG_RUNNING_SECONDS:
                long_running += 1
                counts[2] += 1
            ident = record.get("pid", record.get("id"))
            label = state or str(record.get("command") or "").lower()
            tops.append(TopQuery(id=None if ident is None else str(ident), seconds=seconds, state=label, query=query))
    tops.sort(key=lambda top: top.seconds, reverse=True)
    connections = _as_int(status.get("threads_connected", status.get("connections")))
    if connections is None:
        connections = len(sessions)
    max_connections = _as_int(status.get("max_connections"))
    return DbSnapshot(
        service=service,
        engine=engine_name,
        connections=max(connections, 0),
        max_connections=max_connections if max_connections and max_connections > 0 else None,
        active=active,
        long_running=long_running,
        longest_seconds=tops[0].seconds if tops else 0.0,
        waiting_on_locks=waiting,
        top_queries=tops[:MAX_TOP_QUERIES],
        clients=sorted(
            (ClientSessions(client=c, connections=n, active=a, long_running=r) for c, (n, a, r) in per_client.items()),
            key=lambda client: (client.long_running, client.connections),
            reverse=True,
        )[:MAX_CLIENTS],
    )


def _client_of(record: Mapping[str, Any]) -> str:
    """Who holds a session: PostgreSQL's application_name (else user), MySQL's user@host/db."""
    application = str(record.get("application_name") or "").strip()
    if application:
        return application
    user = str(record.get("usename") or record.get("user") or "").strip() or "?"
    host = str(record.get("host") or record.get("client_addr") or "").strip().rsplit(":", 1)[0]
    database = str(record.get("db") or record.get("datname") or "").strip()
    return f"{user}@{host}/{database}" if host or database else user


def _is_key_value(columns: Sequence[str]) -> bool:
    return len(columns) == 2 and columns[0] in ("variable_name", "name", "setting", "key")


def _session_like(record: Mapping[str, Any]) -> bool:
    return any(key in record for key in ("pid", "id", "query", "info", "state"))


def _session_seconds(record: Mapping[str, Any]) -> float | None:
    for key in ("duration", "time", "seconds", "elapsed"):
        if key in record and record[key] is not None:
            return parse_duration(record[key])
    return None


_INTERVAL = re.compile(r"^(?:(?P<days>-?\d+) days? )?(?P<h>-?\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)$")


def parse_duration(value: Any) -> float | None:
    """Seconds from a number, a PostgreSQL interval text (``1 day 02:03:04.5``) or ``P…`` text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    text = str(value).strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    match = _INTERVAL.match(text)
    if match:
        days = int(match.group("days") or 0)
        seconds = days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))
        return max(seconds, 0.0)
    return None


def _is_idle(record: Mapping[str, Any], state: str) -> bool:
    if "command" in record:  # MySQL: the command says what the thread does, the state is detail
        command = str(record.get("command") or "").strip().lower()
        return command in _MYSQL_IDLE_COMMANDS
    return state in _IDLE_STATES


def _waits_on_lock(record: Mapping[str, Any], state: str) -> bool:
    wait = str(record.get("wait_event_type") or "").lower()
    return wait == "lock" or ("lock" in state and ("wait" in state or state == "locked"))


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Redis


def cache_stats_from_info(info: Mapping[str, Any], service: str) -> CacheStats:
    """``CacheStats`` from Redis ``INFO`` parsed as a flat dict (missing counters count as 0)."""
    if isinstance(info.get("data"), Mapping) and "status" in info:
        info = info["data"]

    def number(key: str) -> int | None:
        return _as_int(info.get(key))

    maxmemory = number("maxmemory")
    return CacheStats(
        service=service,
        evicted_keys=number("evicted_keys") or 0,
        keyspace_hits=number("keyspace_hits") or 0,
        keyspace_misses=number("keyspace_misses") or 0,
        used_memory=number("used_memory"),
        maxmemory=maxmemory if maxmemory else None,
        connected_clients=number("connected_clients"),
        rejected_connections=number("rejected_connections") or 0,
    )


# ---------------------------------------------------------------------------------------------
# HTTP


def health_check_from_result(result: Mapping[str, Any], service: str) -> HealthCheck:
    """A ``HealthCheck`` from a whole ``api`` task result.

    A failed task carrying an HTTP response (a 5xx) keeps its status code; a task that failed
    before any response (``unreachable``, ``timed_out``) has ``status_code=None``.
    """
    data = result.get("data") if isinstance(result.get("data"), Mapping) else None
    error = result.get("error") if isinstance(result.get("error"), Mapping) else None
    message = None if error is None else f"{error.get('code', 'error')}: {error.get('message', '')}".strip()
    if data is not None and data.get("status_code") is not None:
        code = _as_int(data.get("status_code"))
        elapsed = data.get("elapsed_ms")
        return HealthCheck(
            service=service,
            status_code=code,
            ok=code is not None and 200 <= code < 400 and str(result.get("status", "succeeded")) == "succeeded",
            latency_ms=float(elapsed) if isinstance(elapsed, int | float) else None,
            error=message,
        )
    return HealthCheck(service=service, status_code=None, ok=False, latency_ms=None, error=message or "no response")


def task_error_code(result: Mapping[str, Any]) -> str | None:
    error = result.get("error")
    if isinstance(error, Mapping) and error.get("code"):
        return str(error["code"])
    return None


def prometheus_samples(data: Any) -> dict[float, float]:
    """``{timestamp: value}`` of a prometheus task's tidy rows, the series summed per timestamp.

    One series per query is the contract of the metric and verification queries; several mean an
    aggregation is missing, so they are summed, as ``sum(...)`` would have. Values that are not
    numbers (``NaN`` and ``±Inf`` arrive as text) are left out.
    """
    rows = data.get("rows") if isinstance(data, Mapping) else data
    if not isinstance(rows, list):
        return {}
    samples: dict[float, float] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        try:
            at, value = float(row["timestamp"]), float(row["value"])
        except (KeyError, TypeError, ValueError):
            continue
        if value == value and abs(value) != float("inf"):
            samples[at] = samples.get(at, 0.0) + value
    return dict(sorted(samples.items()))
