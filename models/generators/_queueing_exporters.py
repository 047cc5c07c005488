"""Metric columns as exporters and dashboards name and scale them, ``<component>_<metric>``.

A case picks a house style for its services (RCAEval-like, Prometheus client, a Grafana panel,
OpenTelemetry) and some teams use another; databases speak their exporter's dialect
(``postgres_exporter``, ``mysqld_exporter``), caches ``redis_exporter`` or memcached's. Beyond the
core columns each component exports a random subset of extras, so no two cases have the same set.
Component names never contain ``_``: the first ``_`` of a column separates component and metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_events import Events
from models.generators._queueing_math import lognormal_tail
from models.generators._queueing_measure import (
    DEFAULT_BUCKETS,
    FINE_BUCKETS,
    bucket_counts,
    counts,
    histogram_quantiles,
    rss,
    throttled,
    windowed_rate,
)
from models.generators._queueing_samples import Samples
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import Component, System

#: Service dialects: logical metric -> (name, unit). Units: cores|percent, mb|bytes, s|ms,
#: per_second|ratio|percent.
_SERVICE_DIALECTS: dict[str, dict[str, tuple[str, str]]] = {
    "rcaeval": {"cpu": ("cpu", "cores"), "mem": ("mem", "mb"), "p50": ("latency-50", "ms"),
                "p90": ("latency-90", "ms"), "traffic": ("workload", "per_second"), "errors": ("error", "per_second")},
    "prometheus": {"cpu": ("cpu_usage", "cores"), "mem": ("memory_rss", "bytes"),
                   "p50": ("request_duration_seconds_p50", "s"), "p95": ("request_duration_seconds_p95", "s"),
                   "p99": ("request_duration_seconds_p99", "s"), "traffic": ("requests_per_second", "per_second"),
                   "errors": ("http_5xx", "per_second")},
    "dashboard": {"cpu": ("cpu_percent", "percent"), "mem": ("memory_mb", "mb"), "p50": ("p50_latency_ms", "ms"),
                  "p90": ("p90_latency_ms", "ms"), "p99": ("p99_latency_ms", "ms"), "traffic": ("rps", "per_second"),
                  "errors": ("error_rate", "ratio")},
    "otel": {"cpu": ("process_cpu_utilization", "percent"), "mem": ("process_memory_usage", "bytes"),
             "p50": ("http_server_duration_p50", "ms"), "p99": ("http_server_duration_p99", "ms"),
             "traffic": ("http_server_request_rate", "per_second"), "errors": ("http_server_error_ratio", "ratio")},
}  # fmt: skip
_SERVICE_EXTRAS = {
    "retransmits": ("tcp_retransmits", "net_retransmits_per_sec"),
    "disk": ("disk_used_percent", "fs_usage_percent"),
    "iowait": ("disk_io_wait", "iowait_percent"),
    "throttled": ("cpu_throttled", "cpu_throttling_ratio"),
    "restarts": ("restarts", "pod_restarts_total"),
    "busy": ("threads_busy", "inflight_requests"),
    "gc": ("gc_pause_seconds", "gc_time_ratio"),
    "err_timeout": ("errors_timeout", "upstream_timeouts"),
    "err_connection": ("errors_connection", "upstream_connect_errors"),
}
_POOL_EXTRAS = {
    "pool_active": ("db_pool_active", "hikaricp_connections_active"),
    "pool_pending": ("db_pool_pending", "hikaricp_connections_pending"),
    "pool_timeouts": ("db_pool_timeouts", "hikaricp_connections_timeout_total"),
}
_DB_NAMES = {
    "postgres": {"conns": "connections_active", "active": "active_sessions", "max": "max_connections",
                 "qps": "xact_per_second", "slow": "slow_queries", "locks": "locks_waiting"},
    "mysql": {"conns": "threads_connected", "active": "threads_running", "max": "max_connections",
              "qps": "queries_per_second", "slow": "slow_queries", "locks": "innodb_row_lock_waits",
              "refused": "connection_errors_max_connections"},
}  # fmt: skip
_CACHE_NAMES = {
    "redis": {"hits": "keyspace_hits", "misses": "keyspace_misses", "evicted": "evicted_keys",
              "memory": "used_memory", "clients": "connected_clients", "ops": "instantaneous_ops_per_sec"},
    "memcached": {"hits": "get_hits", "misses": "get_misses", "evicted": "evictions", "memory": "bytes",
                  "clients": "curr_connections", "ops": "cmd_get"},
}  # fmt: skip


@dataclass
class Measured:
    """Per-second series as the monitoring system holds them (alert rules and logs read these)."""

    requests: np.ndarray  # requests counted per second
    errors: np.ndarray  # failed requests per second
    cause_errors: dict[str, np.ndarray]  # failed requests per second by cause
    p99: np.ndarray  # seconds, over the latency window
    p50: np.ndarray
    error_ratio: np.ndarray  # over the rate window
    cpu_ratio: np.ndarray  # CPU used / limit
    restarts: np.ndarray  # restart counter
    oom_kills: np.ndarray  # of which OOM kills
    disk_used: np.ndarray  # fraction
    conn_usage: np.ndarray  # databases: connections / max_connections
    connections: np.ndarray
    slow: np.ndarray  # slow queries per second
    scraped: np.ndarray  # the target answered its scrape
    columns: dict[str, np.ndarray]  # column name -> per-second values
    rates: dict[str, np.ndarray]  # rate(...[window]) of requests, errors and errors by cause
    quantiles: dict[int, np.ndarray]  # p50, p90, p95, p99 (s) of the components filled so far
    histograms: _Histograms


def measure(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    st: State,
    samples: Samples,
    events: Events,
    *,
    rate_window: int,
    latency_window: int,
) -> Measured:
    """What the monitoring system counted, per second: requests, failures by cause, latency
    histograms, restarts, disks, database connections (the series alert rules read)."""
    n, steps = st.arrivals.shape
    # A stopped server counts nothing: its callers' connection attempts never became requests.
    requests = counts(rng, st.arrivals * (knobs.up > 0))
    errors = rng.binomial(requests.astype(np.int64), np.clip(np.nan_to_num(st.err), 0.0, 1.0)).astype(float)
    cause_errors = _split(rng, errors, st)
    fine = rng.random() < 0.4
    histograms = _Histograms(samples, requests, FINE_BUCKETS if fine else DEFAULT_BUCKETS, latency_window)
    quantiles = {q: np.full((n, steps), np.nan) for q in (50, 90, 95, 99)}
    histograms.fill(quantiles, system.entries)  # what rules read; the rest when columns are made
    rates = {name: windowed_rate(values, rate_window) for name, values in (("requests", requests), ("errors", errors))}
    for cause in ("timeout", "connection"):
        rates[cause] = windowed_rate(cause_errors[cause], rate_window)
    error_ratio = rates["errors"] / np.maximum(rates["requests"], 1e-9)
    scraped = _scraped(rng, system, knobs, events, steps)
    m = Measured(
        requests=requests, errors=errors, cause_errors=cause_errors, p99=quantiles[99], p50=quantiles[50],
        error_ratio=error_ratio, cpu_ratio=st.cpu_used / np.maximum(st.cpu_limit, 1e-9),
        restarts=np.zeros((n, steps)), oom_kills=np.zeros((n, steps)), disk_used=np.zeros((n, steps)),
        conn_usage=np.zeros((n, steps)), connections=np.zeros((n, steps)), slow=np.zeros((n, steps)),
        scraped=scraped, columns={}, rates=rates, quantiles=quantiles, histograms=histograms,
    )  # fmt: skip
    for i, c in enumerate(system.components):
        m.restarts[i] = _restart_counter(i, events, steps)
        m.oom_kills[i] = _restart_counter(i, events, steps, "OOMKilled")
        m.disk_used[i] = _disk_used(i, c, st, events, steps)
        if c.kind == ServiceKind.DATABASE:
            _connections(rng, system, knobs, st, events, m, i)
    return m


class _Histograms:
    """Latency histograms of drawn requests, turned into percentiles for the components asked for."""

    def __init__(self, samples: Samples, requests: np.ndarray, bounds: np.ndarray, window: int) -> None:
        self.samples, self.requests, self.bounds, self.window = samples, requests, bounds, window

    def fill(self, quantiles: dict[int, np.ndarray], components: list[int]) -> None:
        if not components:
            return
        rows = np.asarray(components)
        buckets = bucket_counts(self.samples.latency[rows], self.requests[rows], self.bounds, self.window)
        for q, values in histogram_quantiles(tuple(p / 100 for p in quantiles), buckets, self.bounds).items():
            quantiles[round(q * 100)][rows] = values


def export(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    st: State,
    events: Events,
    m: Measured,
    *,
    rate_window: int,
    p_uninstrumented: float,
) -> None:
    """Every component's columns as its exporters name and scale them, into ``m.columns``."""
    house = str(rng.choice(list(_SERVICE_DIALECTS)))
    skip = _uninstrumented(rng, system, p_uninstrumented)
    wanted = [i for i, c in enumerate(system.components) if i not in skip and c.kind != ServiceKind.CACHE]
    m.histograms.fill(m.quantiles, [i for i in wanted if i not in system.entries])
    for i, c in enumerate(system.components):
        if c.kind == ServiceKind.DATABASE:
            _database(rng, system, knobs, st, events, m, i, rate_window, m.quantiles, skip)
        elif c.kind == ServiceKind.CACHE:
            _cache(rng, system, knobs, st, events, m, i, rate_window, skip)
        elif i not in skip:
            dialect = house if rng.random() < 0.8 else str(rng.choice(list(_SERVICE_DIALECTS)))
            _service(rng, system, knobs, st, events, m, i, dialect, rate_window, m.quantiles)


def _service(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    st: State,
    events: Events,
    m: Measured,
    i: int,
    dialect: str,
    window: int,
    quantiles: dict[int, np.ndarray],
) -> None:
    c = system.components[i]
    names = _SERVICE_DIALECTS[dialect]
    steps = st.arrivals.shape[1]
    out = m.columns
    cpu = st.cpu_used[i] * (1 + 0.03 * rng.standard_normal(steps))
    name, unit = names["cpu"]
    if unit == "percent":  # of the limit in force (kube_pod_container_resource_limits), per pod running
        cpu = 100 * cpu / np.maximum(c.cores * c.replicas * knobs.cpu_cap[i] * np.maximum(knobs.up[i], 1e-9), 1e-9)
    out[f"{c.name}_{name}"] = windowed_rate(cpu, min(window, 30))
    memory, _ = rss(rng, c, i, st.served[i], events, steps)
    name, unit = names["mem"]
    out[f"{c.name}_{name}"] = memory * (1024 * 1024 if unit == "bytes" else 1)
    for q in (50, 90, 95, 99):
        if f"p{q}" in names:
            name, unit = names[f"p{q}"]
            out[f"{c.name}_{name}"] = quantiles[q][i] * (1000 if unit == "ms" else 1)
    name, _ = names["traffic"]
    out[f"{c.name}_{name}"] = m.rates["requests"][i]
    name, unit = names["errors"]
    out[f"{c.name}_{name}"] = m.rates["errors"][i] if unit == "per_second" else m.error_ratio[i]
    style = int(rng.integers(2))
    extras = {
        "retransmits": lambda: windowed_rate(counts(rng, _retransmits(system, knobs, st, i)), window),
        "disk": lambda: 100 * m.disk_used[i],
        "iowait": lambda: 100 * np.clip(0.01 + 0.03 * (events.io_slow.get(i, np.ones(steps)) - 1), 0, 0.95),
        "throttled": lambda: throttled(st.cpu_used[i], st.cpu_limit[i]),
        "restarts": lambda: m.restarts[i],
        "busy": lambda: st.busy[i],
        "gc": lambda: np.maximum(knobs.gc_frac[i], 0.0) * (1 + 0.1 * rng.standard_normal(steps)),
        "err_timeout": lambda: m.rates["timeout"][i],
        "err_connection": lambda: m.rates["connection"][i],
    }
    for key, make in extras.items():
        if rng.random() < 0.35:
            out[f"{c.name}_{_SERVICE_EXTRAS[key][style]}"] = make()
    pools = [e for e in system.out_edges(i) if system.edges[e].pool]
    if pools and rng.random() < 0.6:
        offered = st.edge_rate[pools] / np.maximum(1 - st.pool_fail[pools], 0.05)
        values = {
            "pool_active": st.pool_in_use[pools].sum(axis=0),
            "pool_pending": (offered * st.pool_wait[pools]).sum(axis=0),
            "pool_timeouts": windowed_rate(counts(rng, (offered * st.pool_fail[pools]).sum(axis=0)), window),
        }
        for key, value in values.items():
            out[f"{c.name}_{_POOL_EXTRAS[key][style]}"] = value
    _blank_when_down(m, c.name, i, knobs, infra_stays=not bool(knobs.down_refuses[i]))


def _connections(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, events: Events, m: Measured, i: int
) -> None:
    """A database's sessions (pools' connections, leaked ones, monitoring) and slow statements."""
    c = system.components[i]
    steps = st.arrivals.shape[1]
    into = system.in_edges(i)
    pooled = [e for e in into if system.edges[e].pool]
    # Fixed-size pools (HikariCP's default) keep every connection open; others keep what they use.
    fixed = rng.random(len(pooled)) < 0.6
    open_ = np.zeros(steps)
    for e, keep in zip(pooled, fixed, strict=True):
        caller_up = knobs.up[system.edges[e].caller] > 0
        used = st.pool_in_use[e] * 1.3 + 0.2 * system.edges[e].pool
        open_ += np.where(caller_up, st.pool_size[e] if keep else np.minimum(used, st.pool_size[e]), 0.0)
    leaked = events.leaked_sessions.get(i, np.zeros(steps))
    connections = np.minimum(np.round(open_ + leaked + 3), c.max_connections)
    m.connections[i] = connections
    m.conn_usage[i] = connections / c.max_connections
    threshold = 1.0 if c.engine == "mysql" else 0.5  # long_query_time / log_min_duration_statement
    slow = sum(st.edge_rate[e] * lognormal_tail(st.edge_attempt[e], st.scv[i], threshold) for e in into)
    m.slow[i] = counts(rng, slow) if into else np.zeros(steps)


def _database(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    st: State,
    events: Events,
    m: Measured,
    i: int,
    window: int,
    quantiles: dict[int, np.ndarray],
    skip: set[int],
) -> None:
    c = system.components[i]
    names = _DB_NAMES[c.engine or "postgres"]
    steps = st.arrivals.shape[1]
    pooled = [e for e in system.in_edges(i) if system.edges[e].pool]
    connections = m.connections[i]
    if i in skip:
        return
    out = m.columns
    style = rng.random() < 0.5
    out[f"{c.name}_{'cpu' if style else 'cpu_usage'}"] = windowed_rate(
        st.cpu_used[i] * (1 + 0.03 * rng.standard_normal(steps)), 30
    )
    memory = c.mem_base_mb + 8.0 * connections  # shared buffers plus per-backend memory
    out[f"{c.name}_{'mem' if style else 'memory_rss'}"] = memory * (1 + 0.002 * rng.standard_normal(steps))
    out[f"{c.name}_{names['conns']}"] = connections
    active = sum(st.pool_in_use[e] for e in pooled) if pooled else np.zeros(steps)
    out[f"{c.name}_{names['active']}"] = np.round(np.asarray(active) + rng.poisson(0.5, steps))
    out[f"{c.name}_{names['qps']}"] = m.rates["requests"][i]
    out[f"{c.name}_{names['slow']}"] = windowed_rate(m.slow[i], window)
    locked = sum(st.pool_in_use[e] for e in pooled if knobs.edge_wait[e].max() > 0) if i in events.lock_holder else 0.0
    out[f"{c.name}_{names['locks']}"] = np.round(np.asarray(locked) + rng.poisson(0.2, steps))
    if rng.random() < 0.5:
        out[f"{c.name}_{names['max']}"] = np.full(steps, float(c.max_connections))
    if "refused" in names:
        refused = (
            sum(st.edge_rate[e] / np.maximum(1 - st.pool_fail[e], 0.05) * st.pool_fail[e] for e in pooled)
            if i in events.leaked_sessions
            else np.zeros(steps)
        )
        out[f"{c.name}_{names['refused']}"] = windowed_rate(counts(rng, np.asarray(refused) * 0.3), window)
    out[f"{c.name}_disk_used_percent"] = 100 * m.disk_used[i]
    if rng.random() < 0.6:
        io_busy = 1.0 - 1.0 / st.io_stretch[i]
        out[f"{c.name}_{'io_wait' if style else 'iowait_percent'}"] = 100 * np.clip(
            0.5 * io_busy + 0.005 * rng.random(steps), 0, 1
        )
    if rng.random() < 0.4:
        out[f"{c.name}_query_latency_p99_ms"] = quantiles[99][i] * 1000
    if rng.random() < 0.4:
        out[f"{c.name}_up"] = (knobs.up[i] > 0).astype(float)
    _blank_when_down(m, c.name, i, knobs, infra_stays=False, keep=f"{c.name}_up")


def _cache(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    st: State,
    events: Events,
    m: Measured,
    i: int,
    window: int,
    skip: set[int],
) -> None:
    c = system.components[i]
    if i in skip:
        return
    names = _CACHE_NAMES[c.engine or "redis"]
    steps = st.arrivals.shape[1]
    reads = counts(rng, st.served[i] * 0.9)
    hit = knobs.hit[i]
    hits = rng.binomial(reads.astype(np.int64), np.clip(hit, 0, 1)).astype(float)
    misses = reads - hits
    full = c.mem_base_mb / c.maxmemory_mb
    kept = events.notes.get(f"undersized:{i}")
    if isinstance(kept, float):
        # maxmemory was cut: every key a miss brings back pushes another one out.
        evicted = misses * 0.9 * (hit < c.hit_ratio * 0.98)
        memory = c.mem_base_mb * np.where(hit < c.hit_ratio * 0.98, 0.5 + 0.5 * kept, 1.0)
    else:
        evicted = misses * (0.3 if full > 0.9 else 0.0)
        memory = c.mem_base_mb * np.clip(hit / max(c.hit_ratio, 1e-9), 0.02, 1.0)
    out = m.columns
    out[f"{c.name}_{names['hits']}"] = windowed_rate(hits, window)
    out[f"{c.name}_{names['misses']}"] = windowed_rate(misses, window)
    out[f"{c.name}_{names['evicted']}"] = windowed_rate(counts(rng, evicted), window)
    out[f"{c.name}_{names['memory']}"] = memory * 1024 * 1024 * (1 + 0.001 * rng.standard_normal(steps))
    clients = sum(system.components[system.edges[e].caller].replicas * 4 for e in system.in_edges(i))
    out[f"{c.name}_{names['clients']}"] = np.where(knobs.up[i] > 0, clients, 0.0) + rng.poisson(0.3, steps)
    out[f"{c.name}_{names['ops']}"] = windowed_rate(reads + misses, min(window, 5))
    if rng.random() < 0.4:
        out[f"{c.name}_hit_ratio"] = windowed_rate(hits, window) / np.maximum(windowed_rate(reads, window), 1e-9)
    if rng.random() < 0.5:
        out[f"{c.name}_cpu"] = windowed_rate(st.cpu_used[i] * (1 + 0.05 * rng.standard_normal(steps)), 30)
    _blank_when_down(m, c.name, i, knobs, infra_stays=False)


def _blank_when_down(m: Measured, name: str, i: int, knobs: Knobs, *, infra_stays: bool, keep: str = "") -> None:
    """A target that does not answer its scrape has no samples: NaN, not zero."""
    gone = (knobs.up[i] <= 0) | ~m.scraped[i]
    if not gone.any():
        return
    prefix = name + "_"
    for column, values in m.columns.items():
        if not column.startswith(prefix) or column == keep:
            continue
        metric = column[len(prefix) :]
        if metric in _KUBE_STATE:
            continue  # kube-state-metrics reports pods whatever their state
        if infra_stays and metric in _INFRA:
            continue  # a hung process: the kubelet still reports its container
        m.columns[column] = np.where(gone, np.nan, values)


#: Pod metrics from kube-state-metrics, there even when the pod is not.
_KUBE_STATE = {"restarts", "pod_restarts_total"}
#: Metrics the kubelet (cAdvisor) reports, not the process itself.
_INFRA = {
    "cpu", "cpu_usage", "cpu_percent", "process_cpu_utilization", "mem", "memory_rss", "memory_mb",
    "process_memory_usage", "cpu_throttled", "cpu_throttling_ratio", "restarts", "pod_restarts_total",
}  # fmt: skip


def _scraped(rng: np.random.Generator, system: System, knobs: Knobs, events: Events, steps: int) -> np.ndarray:
    """Scrape gaps: a target now and then misses scrapes for 15-60 s (slow endpoint, network)."""
    ok = np.ones((len(system.components), steps), dtype=bool)
    for i in range(len(system.components)):
        if rng.random() < 0.08:
            start = int(rng.integers(0, steps))
            length = int(rng.uniform(15, 60))
            ok[i, start : start + length] = False
            events.scrape_gaps.append((i, start, start + length))
    # A stopped process answers no scrape; a hung one neither (its metrics share the stuck server).
    return ok & (knobs.up > 0)


def _split(rng: np.random.Generator, errors: np.ndarray, st: State) -> dict[str, np.ndarray]:
    """Failed requests by cause: each failure counted once, causes drawn in proportion to their shares."""
    where = np.nonzero(errors > 0)
    left = errors[where].astype(np.int64)
    shares = {cause: share[where] for cause, share in st.causes.items()}
    remaining = np.maximum(sum(shares.values()), 1e-12)
    result = {}
    for cause, share in shares.items():
        taken = rng.binomial(left, np.clip(np.nan_to_num(share / remaining), 0.0, 1.0))
        result[cause] = np.zeros_like(errors)
        result[cause][where] = taken
        left = left - taken
        remaining = np.maximum(remaining - share, 1e-12)
    return result


def _uninstrumented(rng: np.random.Generator, system: System, p_uninstrumented: float) -> set[int]:
    if rng.random() >= p_uninstrumented:
        return set()
    share = rng.uniform(0.05, 0.15)
    count = max(1, round(share * len(system.components)))
    return {int(i) for i in rng.choice(len(system.components), size=count, replace=False)}


def _restart_counter(i: int, events: Events, steps: int, reason: str | None = None) -> np.ndarray:
    before = float(events.history[i][0]) if i in events.history and reason is None else 0.0
    counter = np.full(steps, before)
    for comp, second, why in events.restarts:
        if comp == i and second < steps and reason in (None, why):
            counter[second:] += 1
    return counter


def _disk_used(i: int, c: Component, st: State, events: Events, steps: int) -> np.ndarray:
    written = np.cumsum(st.served[i] * c.write_kb) / (c.disk_gb * 1024 * 1024)  # GB in KB
    return np.clip(c.disk_used + written + events.disk_fill.get(i, 0.0), 0.0, 1.0)


def _retransmits(system: System, knobs: Knobs, st: State, i: int) -> np.ndarray:
    """Retransmitted segments/s: about 8 segments a call, lost ones are sent again."""
    segments = 8 * st.arrivals[i] * (knobs.loss[i] + 0.0003)
    for e, edge in enumerate(system.edges):
        if edge.caller == i or edge.callee == i:
            other = edge.callee if edge.caller == i else edge.caller
            segments = segments + 8 * st.edge_rate[e] * (knobs.loss[i] + knobs.loss[other])
    return segments
