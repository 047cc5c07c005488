"""The small vocabularies everything else speaks: fault types, risks, service and metric kinds."""

from __future__ import annotations

import re
from enum import StrEnum

from contract import Risk

__all__ = [
    "FAULTS_BY_KIND",
    "INJECTED_FAULTS",
    "PLAIN_FAULTS",
    "FaultType",
    "MetricKind",
    "Risk",
    "ServiceKind",
    "guess_service_kind",
    "metric_kind",
]


class FaultType(StrEnum):
    """What broke in a component."""

    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    LATENCY = "latency"
    NETWORK_ERRORS = "network_errors"
    DB_SLOW_QUERY = "db_slow_query"
    DB_POOL_EXHAUSTED = "db_pool_exhausted"
    DEPENDENCY_DOWN = "dependency_down"
    CACHE = "cache"
    BAD_DEPLOY = "bad_deploy"
    #: Error rates rose and nothing more specific is known (a metric-level claim).
    ERRORS = "errors"
    #: A metric of no known kind moved (``node-07_value``): the claim is the metric itself.
    ANOMALY = "anomaly"

    @property
    def is_plain(self) -> bool:
        """Claimed from a metric of its own name alone (``svc: cpu``), not from a mechanism."""
        return self in PLAIN_FAULTS


class ServiceKind(StrEnum):
    SERVICE = "service"
    DATABASE = "database"
    CACHE = "cache"


class MetricKind(StrEnum):
    """What a metric column measures, read from its name (``cartservice_cpu`` → ``cpu``)."""

    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    LATENCY = "latency"
    ERRORS = "errors"
    TRAFFIC = "traffic"
    NETWORK = "network"
    CONNECTIONS = "connections"
    SLOW_QUERIES = "slow_queries"
    CACHE_HITS = "cache_hits"
    EVICTIONS = "evictions"
    RESTARTS = "restarts"
    OTHER = "other"


#: Faults a generator injects: each a mechanism of failure with consequences of its own.
INJECTED_FAULTS: tuple[FaultType, ...] = (
    FaultType.CPU,
    FaultType.MEMORY,
    FaultType.DISK,
    FaultType.LATENCY,
    FaultType.NETWORK_ERRORS,
    FaultType.DB_SLOW_QUERY,
    FaultType.DB_POOL_EXHAUSTED,
    FaultType.DEPENDENCY_DOWN,
    FaultType.CACHE,
    FaultType.BAD_DEPLOY,
)
#: Faults named after the metrics that show them, claimable from those metrics alone.
PLAIN_FAULTS: frozenset[FaultType] = frozenset(
    {FaultType.CPU, FaultType.MEMORY, FaultType.DISK, FaultType.LATENCY, FaultType.ERRORS, FaultType.ANOMALY}
)

#: Which faults a component of each kind can have. A database or a cache is not deployed by us
#: (no ``bad_deploy``); only databases have slow queries, only caches have cache faults. A pool of
#: database connections runs dry at the database (its connection limit) or in the service that
#: holds it (connections it leaked, HikariCP's pending threads).
FAULTS_BY_KIND: dict[ServiceKind, tuple[FaultType, ...]] = {
    ServiceKind.SERVICE: (
        FaultType.CPU,
        FaultType.MEMORY,
        FaultType.DISK,
        FaultType.LATENCY,
        FaultType.NETWORK_ERRORS,
        FaultType.DB_POOL_EXHAUSTED,
        FaultType.DEPENDENCY_DOWN,
        FaultType.BAD_DEPLOY,
        FaultType.ERRORS,
        FaultType.ANOMALY,
    ),
    ServiceKind.DATABASE: (
        FaultType.CPU,
        FaultType.MEMORY,
        FaultType.DISK,
        FaultType.LATENCY,
        FaultType.NETWORK_ERRORS,
        FaultType.DB_SLOW_QUERY,
        FaultType.DB_POOL_EXHAUSTED,
        FaultType.DEPENDENCY_DOWN,
        FaultType.ERRORS,
        FaultType.ANOMALY,
    ),
    ServiceKind.CACHE: (
        FaultType.CPU,
        FaultType.MEMORY,
        FaultType.LATENCY,
        FaultType.NETWORK_ERRORS,
        FaultType.CACHE,
        FaultType.DEPENDENCY_DOWN,
        FaultType.ERRORS,
        FaultType.ANOMALY,
    ),
}

# Checked in order: the specific names first (``hit-rate`` is not traffic, ``db_connections`` is
# not a database-wide metric, ``node_network_receive_errs_total`` is the network's, not the
# service's errors). The names of Prometheus's node, PostgreSQL, MariaDB/MySQL and Redis exporters
# are in ``tests/unit/models/test_metric_kinds.py``.
_METRIC_RULES: tuple[tuple[MetricKind, re.Pattern[str]], ...] = (
    (MetricKind.EVICTIONS, re.compile(r"evict")),
    # A container's restarts (kube-state-metrics), whatever else the name says.
    (MetricKind.RESTARTS, re.compile(r"restart")),
    (MetricKind.CACHE_HITS, re.compile(r"hit|miss")),
    # Lock waits and long transactions are what slow queries are made of.
    (
        MetricKind.SLOW_QUERIES,
        re.compile(
            r"slow|query.?time|long.?running|lock.?(wait|time)|locks?.?wait|deadlock|max_tx_duration|stat_statements"
        ),
    ),
    # A caller's failed connects are its errors (the callee is down or unreachable), unless the
    # refusal names a limit: a full pool or ``max_connections`` is a connection count that ran out.
    (
        MetricKind.ERRORS,
        re.compile(
            r"^(?!.*(max.?conn|pool|hikari|reject))"
            r".*(conn\w*?[-_.](err|fail|refus|timeout)|(^|[-_.])(err|fail)\w*?[-_.]\w*?conn)"
        ),
    ),
    (
        MetricKind.CONNECTIONS,
        re.compile(r"conn|threads.?(connected|running)|pool|numbackends|stat_activity_count|active.?sessions"),
    ),
    (MetricKind.NETWORK, re.compile(r"network|netstat|softnet|retrans|tcp|udp|icmp")),
    # A filesystem's fill level and device errors, IO pressure, processes blocked on IO.
    (MetricKind.DISK, re.compile(r"filesystem|pressure_io|procs_blocked|io.?wait")),
    # Garbage collection and swapping are memory pressure, however long they take.
    (MetricKind.MEMORY, re.compile(r"(^|[-_])gc([-_]|$)|garbage|swap|pswp|majfault")),
    (MetricKind.ERRORS, re.compile(r"err|5xx|fail|exception")),
    # A histogram of request times (Micrometer's http_server_requests_seconds, gRPC's
    # grpc_server_handling_seconds, Envoy's upstream_rq_time) is latency; its _count is traffic.
    (
        MetricKind.LATENCY,
        re.compile(
            r"lat|duration|response.?time|^p\d\d|\bp\d\d|rt$|(requests?|handling|rpc|calls?)_seconds(?!_count)|rq_time"
        ),
    ),
    (MetricKind.CPU, re.compile(r"cpu|load")),
    (MetricKind.MEMORY, re.compile(r"mem|rss|heap|oom")),
    (MetricKind.DISK, re.compile(r"disk|^fs|_fs|iops|inode|^io$|^io[-_]|write.?bytes|read.?bytes")),
    (MetricKind.NETWORK, re.compile(r"net|packet|drop|^rx|^tx|socket")),
    (MetricKind.TRAFFIC, re.compile(r"rps|qps|tps|req|throughput|workload|count|calls|quer(y|ies)|questions|commands")),
)


def metric_kind(metric: str) -> MetricKind:
    """The kind of a metric from its name (the part after the service), ``other`` if unknown."""
    name = metric.lower()
    for kind, pattern in _METRIC_RULES:
        if pattern.search(name):
            return kind
    return MetricKind.OTHER


# Word-ish boundaries: "feedback" contains "db" but is not a database.
_DATABASE_NAME = re.compile(r"(^|[-_.])(db|database|sql)($|[-_.\d])|postgres|mysql|maria|mongo")
_CACHE_NAME = re.compile(r"cache|redis|memcache|valkey")


def guess_service_kind(name: str, metric_kinds: set[MetricKind]) -> ServiceKind:
    """A component's kind when no topology says it: from its metrics first, then its name."""
    if MetricKind.CACHE_HITS in metric_kinds or MetricKind.EVICTIONS in metric_kinds:
        return ServiceKind.CACHE
    if MetricKind.SLOW_QUERIES in metric_kinds:
        return ServiceKind.DATABASE
    lowered = name.lower()
    if _CACHE_NAME.search(lowered):
        return ServiceKind.CACHE
    if _DATABASE_NAME.search(lowered):
        return ServiceKind.DATABASE
    return ServiceKind.SERVICE
