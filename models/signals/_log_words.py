"""The words a component's log lines use for each fault: its own lines, or its callers' about it."""

from __future__ import annotations

import re

from models.domain._types import FaultType

#: What the log lines of a component with this fault (or of its callers) tend to say.
LOG_PATTERNS: dict[FaultType, re.Pattern[str]] = {
    FaultType.CPU: re.compile(r"cpu|throttl|saturat|event loop blocked|worker pool", re.I),
    FaultType.MEMORY: re.compile(r"out ?of ?memory|heap|gc overhead|oom|memory limit", re.I),
    FaultType.DISK: re.compile(r"no space|disk|fsync|i/o error|read-only file ?system", re.I),
    FaultType.LATENCY: re.compile(r"slow|timed? ?out|timeout|deadline|latency", re.I),
    FaultType.NETWORK_ERRORS: re.compile(r"reset by peer|broken pipe|i/o timeout|network|retransmi|packet", re.I),
    FaultType.DB_SLOW_QUERY: re.compile(
        r"duration: \d+|slow query|statement timeout|lock wait|query .*timed out", re.I
    ),
    # A connection pool's lines name a connection (HikariCP, SQLAlchemy's QueuePool, psycopg_pool,
    # c3p0, Spring's "Could not get JDBC Connection", the server's own refusals). A worker or thread
    # pool running out ("Task rejected: thread pool exhausted") is a busy service, not its database.
    FaultType.DB_POOL_EXHAUSTED: re.compile(
        r"too many (?:clients|connections)|remaining connection slots|max_connections"
        r"|connection ?pool|(?:hikari|queue)pool|pool ?timeout"
        r"|(?:obtain|acquire|get|checkout)\w*\s+(?:a\s+|jdbc\s+|database\s+)?connection"
        r"|connection is not available",
        re.I,
    ),
    FaultType.DEPENDENCY_DOWN: re.compile(
        r"refused|no route|unreachable|unavailable|dial tcp|no healthy upstream", re.I
    ),
    FaultType.CACHE: re.compile(r"maxmemory|evict|cache miss|redis", re.I),
    FaultType.BAD_DEPLOY: re.compile(
        r"panic|nullpointer|nil pointer|exception|unknown field|undefined|segfault|traceback", re.I
    ),
    FaultType.ERRORS: re.compile(r"\b(?:5\d\d|internal (?:server )?error|failed|failure)\b", re.I),
    # A claim about one metric: no log line speaks for it.
    FaultType.ANOMALY: re.compile(r"(?!)"),
}
