"""Log lines as services write them, and spans of sampled requests.

Logs come from the same per-second counts the metrics came from: each failed request of a second
may leave an ERROR line (sampled: services rate-limit their logs), worded the way its runtime and
library word that cause (a Java ``SocketTimeoutException``, Go's ``context deadline exceeded``,
HikariCP's pool timeout, PostgreSQL's ``too many clients``); databases log slow statements and
lock waits; restarted pods log their start. Quiet periods have the usual INFO chatter. The fault
itself is never written down: a line says what the writer saw.

Traces: a few requests per second at each entry, walked down the call graph. A span's duration is
its queueing, its own work and its children's spans (sequential children add, parallel ones
overlap); durations are in milliseconds, ``status`` is ``ok`` or ``error``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.domain._types import ServiceKind
from models.generators._queueing_events import Events
from models.generators._queueing_exporters import Measured
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import Component, System

#: A log line: time, service, level, message, trace id.
_Row = tuple[float, str, str, str, str | None]

#: At most this many ERROR lines per component and second (log rate limiting, sampling).
_ERROR_LINES = 3


_JVM = "[http-nio-8080-exec-{n}] "
_TEMPLATES = {
    "jvm": {
        "timeout": _JVM + "c.s.client.{Callee}Client - call to {callee} failed: "
        "java.net.SocketTimeoutException: Read timed out",
        "connection": _JVM + "c.s.client.{Callee}Client - call to {callee} failed: "
        "java.net.ConnectException: Connection refused",
        "reset": _JVM + "c.s.client.{Callee}Client - call to {callee} failed: "
        "java.net.SocketException: Connection reset",
        "upstream": _JVM + "c.s.client.{Callee}Client - {callee} responded 503 Service Unavailable",
        "pool": _JVM + "o.h.engine.jdbc.spi.SqlExceptionHelper - HikariPool-1 - "
        "Connection is not available, request timed out after {pool_ms}ms.",
        "rejected": _JVM + "o.a.tomcat.util.threads.ThreadPoolExecutor - Task rejected: thread pool exhausted",
        "disk": _JVM + "c.s.storage.FileStore - write failed: java.io.IOException: No space left on device",
        "internal": _JVM + "o.a.c.c.C.[.[.[/].[dispatcherServlet] - Servlet.service() threw exception: {exception}",
    },
    "python": {
        "timeout": "ERROR app.clients: request to {callee} failed: ReadTimeout(HTTPConnectionPool(host='{callee}', "
        "port=8080): Read timed out.)",
        "connection": "ERROR app.clients: request to {callee} failed: ConnectionError: [Errno 111] Connection refused",
        "reset": "ERROR app.clients: request to {callee} failed: ConnectionError: ('Connection aborted.', "
        "ConnectionResetError(104, 'Connection reset by peer'))",
        "upstream": "ERROR app.clients: {callee} returned 503",
        "pool": "ERROR sqlalchemy.pool: QueuePool limit of size {pool} overflow 0 reached, connection timed out, "
        "timeout {pool_s}",
        "rejected": "ERROR gunicorn.error: WORKER TIMEOUT (pid:{pid})",
        "disk": "ERROR app.storage: OSError: [Errno 28] No space left on device",
        "internal": "ERROR app.views: Internal Server Error: /api/v1/orders\nTraceback (most recent call last):\n"
        "  ...\n{exception}",
    },
    "node": {
        "timeout": "request to http://{callee}:8080 failed, reason: socket hang up (ETIMEDOUT)",
        "connection": "Error: connect ECONNREFUSED 10.{a}.{b}.{c}:8080 (calling {callee})",
        "reset": "Error: read ECONNRESET (calling {callee})",
        "upstream": "upstream {callee} responded with status 503",
        "pool": "KnexTimeoutError: Knex: Timeout acquiring a connection. The pool is probably full.",
        "rejected": "server overloaded: event loop delay {pid}ms, shedding request",
        "disk": "Error: ENOSPC: no space left on device, write",
        "internal": "{exception}\n    at handler (/app/src/routes/orders.js:{pid}:17)",
    },
    "go": {
        "timeout": 'msg="upstream call failed" upstream={callee} error="context deadline exceeded"',
        "connection": 'msg="upstream call failed" upstream={callee} '
        'error="dial tcp 10.{a}.{b}.{c}:8080: connect: connection refused"',
        "reset": 'msg="upstream call failed" upstream={callee} '
        'error="read tcp 10.{a}.{b}.{c}:43122->10.{b}.{a}.{c}:8080: read: connection reset by peer"',
        "upstream": 'msg="upstream returned error" upstream={callee} code=Unavailable',
        "pool": 'msg="query failed" db={callee} error="context deadline exceeded" waiting="for a connection"',
        "rejected": 'msg="request rejected" reason="max concurrent streams reached"',
        "disk": 'msg="write failed" error="write /data/spool/0001.log: no space left on device"',
        "internal": 'msg="handler failed" error="{exception}"',
    },
}
#: What the database driver says when the server refuses a new connection.
_REFUSED_BY_SERVER = {
    "postgres": "FATAL: sorry, too many clients already (connecting to {callee})",
    "mysql": "Error 1040 (08004): Too many connections (connecting to {callee})",
}
#: Drivers' words for a statement cut off, a server gone, a connection broken, by engine.
_DRIVER = {
    "postgres": {
        "timeout": "org.postgresql.util.PSQLException: ERROR: canceling statement due to statement timeout",
        "connection": "org.postgresql.util.PSQLException: Connection to {callee}:5432 refused.",
        "reset": "org.postgresql.util.PSQLException: An I/O error occurred while sending to the backend. "
        "Caused by: java.net.SocketException: Connection reset",
    },
    "mysql": {
        "timeout": "com.mysql.cj.jdbc.exceptions.MySQLTimeoutException: Statement cancelled due to timeout",
        "connection": "com.mysql.cj.jdbc.exceptions.CommunicationsException: Communications link failure",
        "reset": "com.mysql.cj.jdbc.exceptions.CommunicationsException: Communications link failure "
        "Caused by: java.net.SocketException: Connection reset",
    },
    "redis": {
        "timeout": "redis: command timed out after {timeout_ms}ms ({callee}:6379)",
        "connection": "Could not connect to Redis at {callee}:6379: Connection refused",
        "reset": "redis: connection reset by peer ({callee}:6379)",
    },
    "memcached": {
        "timeout": "memcache: i/o timeout talking to {callee}:11211",
        "connection": "memcache: dial tcp {callee}:11211: connect: connection refused",
        "reset": "memcache: connection reset by peer ({callee}:11211)",
    },
}


def _template(runtime: str, cause: str, callee_engine: str | None, refused_by_server: bool) -> str:
    if cause == "pool" and refused_by_server and callee_engine in _REFUSED_BY_SERVER:
        return _REFUSED_BY_SERVER[callee_engine]
    if callee_engine in _DRIVER and cause in _DRIVER[callee_engine]:
        return _DRIVER[callee_engine][cause]
    return _TEMPLATES.get(runtime, _TEMPLATES["go"])[cause]


def service_logs(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, m: Measured, events: Events, start: int
) -> pd.DataFrame:
    """The logs frame: ``time, service, level, message, trace_id``."""
    rows: list[_Row] = []
    steps = st.arrivals.shape[1]
    for i, c in enumerate(system.components):
        if c.kind != ServiceKind.SERVICE:
            continue
        out = system.out_edges(i)
        for cause in ("timeout", "connection", "upstream", "pool", "rejected", "disk", "internal"):
            per_second = m.cause_errors[cause][i]
            seconds = np.flatnonzero((per_second >= 0.5) & (knobs.up[i] > 0))
            if not len(seconds):
                continue
            # Each failed request may leave a line, up to a few a second (rate-limited logging).
            times = np.repeat(seconds, np.minimum(np.round(per_second[seconds]), _ERROR_LINES).astype(int))
            blamed = _blamed(rng, system, st, out, cause, times)
            fields = rng.integers(0, 255, size=(len(times), 4))
            jitter = rng.random(len(times))
            for t, k, f, dt in zip(times.tolist(), blamed.tolist(), fields.tolist(), jitter.tolist(), strict=True):
                callee = system.components[k].name if k >= 0 else "backend"
                reset = cause == "connection" and k >= 0 and knobs.up[k, t] > 0
                kind = "reset" if reset else cause
                template = _template(c.runtime, kind, system.components[k].engine, k in events.leaked_sessions)
                text = template.format(
                    n=f[0] % 200 + 1, callee=callee, Callee=callee.title().replace("-", ""),
                    pool_ms=int(_pool_timeout(system, out) * 1000), pool_s=_pool_timeout(system, out), pool=10,
                    pid=100 + f[1] * 35, a=f[1], b=f[2], c=f[3] % 252 + 2, timeout_ms=250,
                    exception=events.exception.get(i, "java.lang.RuntimeException: unexpected state"),
                )  # fmt: skip
                trace = rng.bytes(16).hex() if f[3] < 180 else ""
                rows.append((start + t + dt, c.name, "ERROR", text, trace))
        for e in out:
            rows += _retries(rng, system, knobs, st, c, e, start)
            if system.edges[e].fallback:
                rows += _fallbacks(rng, system, knobs, st, c, e, start)
        for t in range(int(rng.integers(0, 20)), steps, int(rng.integers(15, 60))):
            if knobs.up[i, t] > 0:
                rows.append((start + t + float(rng.random()), c.name, "INFO", _chatter(rng, c.runtime, m, i, t), None))
        for comp, second, _ in events.restarts:
            if comp == i and second < steps:
                rows.append((start + second + 1.5, c.name, "INFO", _startup(c.runtime, c.name), None))
        for comp, second, revision in events.deploys:
            if comp == i and second < steps:
                rows.append(
                    (start + second + 20.0, c.name, "INFO", f"{_startup(c.runtime, c.name)} (version {revision})", None)
                )
        if i in events.leak and i in events.exception:  # a bounded heap's last words before the restart
            for comp, second, _ in events.restarts:
                if comp == i and second < steps:
                    rows.append((start + second - 1.0, c.name, "ERROR", events.exception[i], None))
    rows += _database_logs(rng, system, knobs, st, m, events, start)
    frame = pd.DataFrame(rows, columns=["time", "service", "level", "message", "trace_id"])
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def _database_logs(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, m: Measured, events: Events, start: int
) -> list[_Row]:
    rows: list[_Row] = []
    steps = st.arrivals.shape[1]
    for d in system.kind_indices(ServiceKind.DATABASE):
        c = system.components[d]
        into = system.in_edges(d)
        for t in np.flatnonzero(m.slow[d] >= 1).tolist():
            for _ in range(min(int(m.slow[d, t]), 2)):
                e = int(rng.choice(into))
                threshold = 1.0 if c.engine == "mysql" else 0.5  # only statements beyond it are logged
                ms = 1000 * max(threshold, float(st.edge_attempt[e, t])) * float(rng.uniform(1.02, 3.0))
                if c.engine == "mysql":
                    examined = int(rng.integers(10_000, 5_000_000))
                    text = (
                        f"# Query_time: {ms / 1000:.6f}  Lock_time: 0.000120 Rows_sent: 50  Rows_examined: {examined}"
                        f"\n{system.edges[e].query};"
                    )
                else:
                    text = f"duration: {ms:.3f} ms  statement: {system.edges[e].query}"
                rows.append(
                    (start + t + float(rng.random()), c.name, "LOG" if c.engine != "mysql" else "WARN", text, None)
                )
        if d in events.leaked_sessions:
            refused = np.flatnonzero(events.leaked_sessions[d] >= c.max_connections - 3 - 1)
            for t in refused[:: max(len(refused) // 120, 1)].tolist():
                text = (
                    "FATAL:  sorry, too many clients already"
                    if c.engine != "mysql"
                    else "[Warning] Too many connections"
                )
                rows.append(
                    (start + t + float(rng.random()), c.name, "FATAL" if c.engine != "mysql" else "WARN", text, None)
                )
        if d in events.lock_holder:
            since, _ = events.lock_holder[d]
            for t in range(since + 1, steps, 5):
                pid, xid = int(rng.integers(1000, 60000)), int(rng.integers(1_000_000, 9_000_000))
                text = f"process {pid} still waiting for ShareLock on transaction {xid} after 1000.{pid % 1000:03d} ms"
                rows.append((start + t + float(rng.random()), c.name, "LOG", text, None))
        full = np.flatnonzero(m.disk_used[d] >= 0.999)
        for t in full[::10].tolist():
            text = (
                'PANIC:  could not write to file "pg_wal/xlogtemp.123": No space left on device'
                if c.engine != "mysql"
                else "[ERROR] Disk is full writing './binlog.000042' (OS errno 28 - No space left on device)"
            )
            rows.append((start + t + float(rng.random()), c.name, "ERROR", text, None))
    for k in system.kind_indices(ServiceKind.CACHE):
        if k in events.cache_restarted:
            second = events.cache_reset[k]
            for offset, text in ((0.2, "Redis is starting oO0OoO0OoO0Oo"), (2.5, "Ready to accept connections tcp")):
                rows.append((start + second + offset, system.components[k].name, "NOTICE", text, None))
    return rows


def _retries(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, c: Component, e: int, start: int
) -> list[_Row]:
    """WARN lines of a client retrying along ``e``, sampled (one in five, at most two a second)."""
    attempts = st.extras["attempts"][e]
    retried = st.edge_rate[e] * (attempts - 1.0) / np.maximum(attempts, 1.0)
    lines = np.minimum(rng.poisson(np.maximum(retried * 0.2, 0.0)), 2) * (knobs.up[system.edges[e].caller] > 0)
    rows: list[_Row] = []
    callee = system.components[system.edges[e].callee].name
    reset_share = st.extras["reset"][e] / np.maximum(st.extras["reset"][e] + st.edge_timeouts[e], 1e-12)
    limit = system.edges[e].timeout
    for t in np.flatnonzero(lines):
        for _ in range(int(lines[t])):
            why = "connection reset by peer" if rng.random() < reset_share[t] else f"timed out after {limit:g}s"
            if c.runtime == "go":
                text = f'msg="retrying" upstream={callee} attempt=2 error="{why}"'
            else:
                text = f"Retrying request to {callee} (attempt 2): {why}"
            rows.append((start + t + float(rng.random()), c.name, "WARN", text, None))
    return rows


def _fallbacks(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, c: Component, e: int, start: int
) -> list[_Row]:
    """WARN lines of a client reading through to the database because its cache call failed
    (sampled: one in twenty, at most two a second)."""
    failed = st.edge_rate[e] * st.edge_fail[e] / np.maximum(st.extras["attempts"][e], 1.0)
    lines = np.minimum(rng.poisson(np.maximum(failed * 0.05, 0.0)), 2) * (knobs.up[system.edges[e].caller] > 0)
    cache = system.components[system.edges[e].callee]
    rows: list[_Row] = []
    for t in np.flatnonzero(lines).tolist():
        down = knobs.up[system.edges[e].callee, t] <= 0
        why = _DRIVER[cache.engine or "redis"]["connection" if down else "timeout"].format(
            callee=cache.name, timeout_ms=250
        )
        for _ in range(int(lines[t])):
            rows.append(
                (start + t + float(rng.random()), c.name, "WARN", f"cache read failed, using the database: {why}", None)
            )
    return rows


def _blamed(
    rng: np.random.Generator, system: System, st: State, out: list[int], cause: str, times: np.ndarray
) -> np.ndarray:
    """The dependency each failed request's log line names (-1: none), drawn in proportion to how
    much each one failed at that second (pool failures only on database edges)."""
    edges = [e for e in out if system.edges[e].pool] if cause == "pool" else out
    if not edges:
        return np.full(len(times), -1)
    weights = np.cumsum(st.edge_fail[edges][:, times] * st.extras["per_request"][edges][:, times] + 1e-9, axis=0)
    pick = (weights < rng.random(len(times)) * weights[-1]).sum(axis=0)
    return np.array([system.edges[e].callee for e in edges])[np.minimum(pick, len(edges) - 1)]


def _pool_timeout(system: System, out: list[int]) -> float:
    timeouts = [system.edges[e].pool_timeout for e in out if system.edges[e].pool]
    return timeouts[0] if timeouts else 30.0


def _chatter(rng: np.random.Generator, runtime: str, m: Measured, i: int, t: int) -> str:
    handled = int(m.requests[i, max(t - 15, 0) : t + 1].sum())
    if runtime == "jvm":
        return f"[scheduling-1] c.s.metrics.StatsReporter - handled {handled} requests in the last 15s"
    if runtime == "go":
        return f'msg="stats" requests={handled} goroutines={int(rng.integers(40, 400))}'
    return f"handled {handled} requests in the last 15s"


def _startup(runtime: str, name: str) -> str:
    if runtime == "jvm":
        application = name.title().replace("-", "")
        return f"[main] c.s.Application - Started {application}Application in 14.2 seconds (process running for 15.1)"
    if runtime == "go":
        return 'msg="server listening" addr=":8080"'
    if runtime == "python":
        return "[INFO] Booting worker with pid: 8"
    return "Server listening on port 8080"


def traces(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, start: int, per_second: float = 0.5
) -> pd.DataFrame:
    """Spans of requests sampled at the entries (``per_second`` each): ``trace_id, span_id, parent,
    service, duration, status, time`` (duration in ms)."""
    tracer = _Tracer(rng, system, knobs, st)
    for entry in system.entries:
        for t in np.flatnonzero(knobs.up[entry] > 0).tolist():
            for _ in range(int(rng.poisson(per_second))):
                trace = rng.bytes(16).hex()
                tracer.span(entry, t, start + t + tracer.uniform(), trace, "", 0)
    return pd.DataFrame(tracer.rows, columns=["trace_id", "span_id", "parent", "service", "duration", "status", "time"])


def _span_id(n: int) -> str:
    """64-bit span ids from a counter, scrambled (splitmix64's finaliser) so they look random."""
    z = (n * 0x9E3779B97F4A7C15) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return f"{z ^ (z >> 31):016x}"


class _Tracer:
    """Walks sampled requests down the call graph; random numbers come from pre-drawn pools."""

    _POOL = 65536

    def __init__(self, rng: np.random.Generator, system: System, knobs: Knobs, st: State) -> None:
        self.rng, self.system, self.knobs, self.st = rng, system, knobs, st
        self.rows: list[tuple[str, str, str, str, float, str, float]] = []
        self.count = 0
        self.sigma = [float(np.sqrt(np.log1p(c.cv**2))) for c in system.components]
        self.fails = st.causes["rejected"] + st.causes["internal"]
        self._refill()

    def _refill(self) -> None:
        self.uniforms = self.rng.random(self._POOL).tolist()
        self.normals = self.rng.standard_normal(self._POOL).tolist()
        self.used = 0

    def uniform(self) -> float:
        if self.used >= self._POOL:
            self._refill()
        self.used += 1
        return self.uniforms[self.used - 1]

    def normal(self) -> float:
        if self.used >= self._POOL:
            self._refill()
        self.used += 1
        return self.normals[self.used - 1]

    def span(self, j: int, t: int, begin: float, trace: str, parent: str, depth: int) -> tuple[float, bool]:
        """Append the span of a request at ``j`` (and its children's); its duration (s) and failure."""
        system, st, knobs = self.system, self.st, self.knobs
        self.count += 1
        span_id = _span_id(self.count)
        name = system.components[j].name
        index = len(self.rows)
        self.rows.append((trace, span_id, parent, name, 0.0, "ok", begin))
        p_wait = float(st.p_wait[j, t])
        u = self.uniform()
        wait = -np.log(max(u / p_wait, 1e-9)) * float(st.wait[j, t]) / p_wait if u < p_wait else 0.0
        wait += float(st.backlog_delay[j, t])
        sigma = self.sigma[j]
        own = float(st.own[j, t]) * float(np.exp(sigma * self.normal() - sigma * sigma / 2))
        failed = self.uniform() < self.fails[j, t]
        clock = begin + wait + own / 2
        longest = 0.0
        for e in system.out_edges(j) if depth < 12 and not failed else []:
            edge = system.edges[e]
            expected = float(st.extras["per_request"][e, t])  # calls along e per request
            calls = int(expected) + (self.uniform() < expected - int(expected))
            k = edge.callee
            for _ in range(calls):
                if knobs.up[k, t] <= 0:
                    spent, bad = (0.001 if knobs.down_refuses[k] else edge.timeout), True
                    # Only the caller's client span exists: the callee never answered.
                    self.count += 1
                    client = _span_id(self.count)
                    self.rows.append((trace, client, span_id, name, spent * 1000, "error", clock))
                else:
                    spent, bad = self.span(k, t, clock, trace, span_id, depth + 1)
                    if spent > edge.timeout:
                        spent, bad = edge.timeout, True
                if edge.parallel:
                    longest = max(longest, spent)
                else:
                    clock += spent
                failed |= bad and system.components[k].kind != ServiceKind.CACHE
        duration = clock + longest + own / 2 - begin
        self.rows[index] = (trace, span_id, parent, name, duration * 1000, "error" if failed else "ok", begin)
        return duration, bool(failed)
