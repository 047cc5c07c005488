"""What monitoring shows of the judge's system: Prometheus-like scrapes, units, counters, gaps and
missing metrics, and the logs (see ``generate``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.holdout._system import READY_REPLICAS

# ---------------------------------------------------------------------------- observation


@dataclass
class Exposure:
    column: str
    source: str  # canonical metric
    mode: str  # gauge | rate | counter | quantile
    scale: float = 1.0
    noise: float = 0.02
    separate: bool = False  # scraped from another target (kube-state-metrics): present when the pod is down


def exposures_for(rng, nodes, dialect, fault_targets) -> list[list[Exposure]]:
    res = []
    ksm = rng.random() < 0.5
    for i, n in enumerate(nodes):
        ex: list[Exposure] = []
        nm = n.name
        lat_unit = ("ms", 1.0) if (dialect == "short" or rng.random() < 0.65) else ("seconds", 0.001)
        cpu_pct = rng.random() < 0.4
        mem_unit = rng.choice(["bytes", "mb", "bytes"])
        counters = dialect == "prom" and rng.random() < 0.45
        drop = 0.12 if i != 0 else 0.0

        def maybe(e: Exposure, p_keep: float = 1.0, ex: list = ex):
            if rng.random() < p_keep:
                ex.append(e)

        cpu_scale = (100.0 / (n.cores * n.replicas)) if cpu_pct else 1.0
        if dialect == "short":
            ex.append(Exposure(f"{nm}_cpu", "cpu", "rate", cpu_scale, 0.04))
            maybe(Exposure(f"{nm}_mem", "mem", "gauge", 1 / 2**20 if mem_unit == "mb" else 1.0, 0.005), 1 - drop)
        else:
            ex.append(Exposure(f"{nm}_cpu_usage_{'percent' if cpu_pct else 'cores'}", "cpu", "rate", cpu_scale, 0.04))
            maybe(
                Exposure(
                    f"{nm}_memory_{'working_set_bytes' if mem_unit != 'mb' else 'rss_mb'}",
                    "mem",
                    "gauge",
                    1 / 2**20 if mem_unit == "mb" else 1.0,
                    0.005,
                ),
                1 - drop,
            )
        if n.kind == "service":
            has_lat = i == 0 or rng.random() < 0.9
            if has_lat:
                if dialect == "short":
                    q = "latency-90" if rng.random() < 0.3 else "latency-99"
                    ex.append(Exposure(f"{nm}_latency-50", "p50", "quantile", 1.0, 0.05))
                    ex.append(Exposure(f"{nm}_{q}", "p99", "quantile", 0.8 if q == "latency-90" else 1.0, 0.1))
                else:
                    u = lat_unit[0]
                    ex.append(Exposure(f"{nm}_http_latency_p50_{u}", "p50", "quantile", lat_unit[1], 0.05))
                    ex.append(Exposure(f"{nm}_http_latency_p99_{u}", "p99", "quantile", lat_unit[1], 0.1))
            if dialect == "short":
                ex.append(Exposure(f"{nm}_throughput", "rps", "rate", 1.0, 0.02))
                maybe(Exposure(f"{nm}_error", "err", "errrate", 1.0, 0.0), 1 - drop / 2 if i else 1)
            elif counters:
                ex.append(Exposure(f"{nm}_http_requests_total", "rps", "counter", 1.0, 0.0))
                ex.append(Exposure(f"{nm}_http_errors_total", "err", "errcounter", 1.0, 0.0))
            else:
                ex.append(Exposure(f"{nm}_http_requests_per_second", "rps", "rate", 1.0, 0.02))
                if rng.random() < 0.5:
                    ex.append(Exposure(f"{nm}_http_error_ratio", "err", "errratio", 1.0, 0.0))
                else:
                    ex.append(Exposure(f"{nm}_http_5xx_per_second", "err", "errrate", 1.0, 0.0))
            maybe(
                Exposure(
                    f"{nm}_{'connections' if dialect == 'short' else 'tcp_connections_active'}",
                    "conns",
                    "gauge",
                    1.0,
                    0.05,
                ),
                0.6,
            )
            if n.lang == "jvm":
                maybe(
                    Exposure(
                        f"{nm}_{'gc' if dialect == 'short' else 'jvm_gc_pause_seconds_total'}",
                        "gc",
                        "rate" if dialect == "short" else "counter",
                        1.0,
                        0.1,
                    ),
                    0.7,
                )
            if n.pool:
                maybe(
                    Exposure(
                        f"{nm}_{'db-pool-active' if dialect == 'short' else 'hikari_connections_active'}",
                        "pool_active",
                        "gauge",
                        1.0,
                        0.05,
                    ),
                    0.55,
                )
                maybe(
                    Exposure(
                        f"{nm}_{'db-pool-pending' if dialect == 'short' else 'hikari_connections_pending'}",
                        "pool_pending",
                        "gauge",
                        1.0,
                        0.0,
                    ),
                    0.35,
                )
            maybe(
                Exposure(
                    f"{nm}_{'net-retrans' if dialect == 'short' else 'tcp_retransmits_total'}",
                    "retrans",
                    "rate" if dialect == "short" else "counter",
                    1.0,
                    0.2,
                ),
                0.35,
            )
            maybe(
                Exposure(
                    f"{nm}_{'net-tx' if dialect == 'short' else 'network_transmit_bytes_per_second'}",
                    "net_tx",
                    "rate",
                    1.0,
                    0.05,
                ),
                0.3,
            )
            if ksm:
                ex.append(
                    Exposure(
                        nm + ("_replicas-ready" if dialect == "short" else READY_REPLICAS),
                        "ready",
                        "gauge",
                        1.0,
                        0.0,
                        separate=True,
                    )
                )
                ex.append(
                    Exposure(
                        f"{nm}_{'restarts' if dialect == 'short' else 'kube_pod_container_status_restarts_total'}",
                        "restart",
                        "counter",
                        1.0,
                        0.0,
                        separate=True,
                    )
                )
        elif n.kind == "database":
            lat_s = 1.0 if rng.random() < 0.7 else 0.001
            lat_name = "latency" if dialect == "short" else f"query_latency_{'ms' if lat_s == 1 else 'seconds'}"
            maybe(Exposure(f"{nm}_{lat_name}", "p50", "quantile", lat_s * 1.3, 0.08), 0.85)
            ex.append(
                Exposure(
                    f"{nm}_{'throughput' if dialect == 'short' else 'queries_per_second'}", "rps", "rate", 1.0, 0.03
                )
            )
            ex.append(
                Exposure(
                    f"{nm}_{'connections' if dialect == 'short' else 'connections_active'}", "conns", "gauge", 1.0, 0.03
                )
            )
            maybe(
                Exposure(
                    f"{nm}_{'disk' if dialect == 'short' else 'disk_io_util_percent'}", "disk_util", "rate", 100.0, 0.05
                ),
                0.8,
            )
            maybe(
                Exposure(
                    f"{nm}_{'disk-read' if dialect == 'short' else 'disk_read_bytes_per_second'}",
                    "disk_read",
                    "rate",
                    1.0,
                    0.08,
                ),
                0.5,
            )
            maybe(Exposure(f"{nm}_{'locks' if dialect == 'short' else 'lock_waits'}", "locks", "gauge", 1.0, 0.3), 0.4)
            maybe(
                Exposure(
                    f"{nm}_{'net-retrans' if dialect == 'short' else 'node_netstat_tcp_retrans_per_second'}",
                    "retrans",
                    "rate",
                    1.0,
                    0.2,
                ),
                0.4,
            )
        else:
            maybe(
                Exposure(
                    f"{nm}_{'latency' if dialect == 'short' else 'command_latency_ms'}", "p50", "quantile", 1.0, 0.1
                ),
                0.6,
            )
            ex.append(
                Exposure(f"{nm}_{'throughput' if dialect == 'short' else 'ops_per_second'}", "rps", "rate", 1.0, 0.03)
            )
            maybe(
                Exposure(
                    f"{nm}_{'hit-ratio' if dialect == 'short' else 'keyspace_hit_ratio'}", "hit", "gauge", 1.0, 0.01
                ),
                0.75,
            )
            maybe(
                Exposure(
                    f"{nm}_{'evictions' if dialect == 'short' else 'evicted_keys_total'}",
                    "evict",
                    "rate" if dialect == "short" else "counter",
                    1.0,
                    0.1,
                ),
                0.6,
            )
            maybe(
                Exposure(
                    f"{nm}_{'connections' if dialect == 'short' else 'connected_clients'}", "conns", "gauge", 1.0, 0.02
                ),
                0.7,
            )
        res.append(ex)
    return res


def observe(rng, sim_out, nodes, exps, i0, i1, step, window, restarts_by_node):
    """Prometheus-like samples of the per-second truth between seconds i0 and i1."""
    T = sim_out["rps"].shape[0]
    n_rows = int((i1 - i0) // step)
    grid = i0 + rng.uniform(0, step) + np.arange(n_rows) * step
    cols: dict[str, np.ndarray] = {}
    miss_p = rng.choice([0.0, 0.003, 0.01, 0.02])
    for i, _n in enumerate(nodes):
        phase = rng.uniform(0, step)
        idx = np.clip(np.round(grid - phase + rng.normal(0, 0.7, n_rows)).astype(int), 1, T - 1)
        up = sim_out["up"][:, i]
        missing = (up[idx] <= 0) | (rng.random(n_rows) < miss_p)
        if rng.random() < 0.12:  # a scrape gap (target unreachable from prometheus for a while)
            g0 = int(rng.integers(0, n_rows))
            missing[g0 : g0 + int(rng.integers(2, 7))] = True
        # Per node, not per exposure: the rate window and the requests in it are the same for all.
        rps = sim_out["rps"][:, i]
        lo = np.maximum(idx - window, 0)
        requests = np.concatenate([[0], np.cumsum(rps)])
        cnt = np.maximum(requests[idx] - requests[lo], 0)
        for ex in exps[i]:
            x = sim_out[ex.source][:, i]
            if ex.mode in ("rate", "quantile", "errrate", "errratio"):
                base = x if ex.mode != "errrate" else x * rps
                if ex.mode == "quantile":
                    wgt = np.maximum(rps, 1e-3)
                    cs = np.concatenate([[0], np.cumsum(base * wgt)])
                    cw = np.concatenate([[0], np.cumsum(wgt)])
                    val = (cs[idx] - cs[lo]) / np.maximum(cw[idx] - cw[lo], 1e-9)
                else:
                    cs = np.concatenate([[0], np.cumsum(base)])
                    val = (cs[idx] - cs[lo]) / np.maximum(idx - lo, 1)
                if ex.mode in ("errrate", "errratio"):
                    errs = rng.poisson(np.maximum(val * (idx - lo) if ex.mode == "errrate" else val * cnt, 0))
                    val = errs / np.maximum(idx - lo, 1) if ex.mode == "errrate" else errs / np.maximum(cnt, 1)
                elif ex.mode == "quantile":
                    # histogram quantiles: noisier with few requests, bucket interpolation error
                    sig = ex.noise + (1.5 if ex.source == "p99" else 0.5) / np.sqrt(np.maximum(cnt, 1))
                    val = val * np.exp(rng.normal(0, 1, n_rows) * sig)
                    if rng.random() < 0.5 and nodes[i].kind == "service":
                        bounds = np.array([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000.0])
                        b = np.searchsorted(bounds, val)
                        loB = np.where(b > 0, bounds[np.minimum(b, len(bounds) - 1) - 1], 0)
                        hiB = bounds[np.minimum(b, len(bounds) - 1)]
                        x = np.clip((val - loB) / np.maximum(hiB - loB, 1e-9), 0, 1)
                        val = np.where(val < bounds[-1], loB + (hiB - loB) * x**0.75, val)
                else:
                    if ex.source == "rps":
                        val = rng.poisson(np.maximum(val * (idx - lo), 0)) / np.maximum(idx - lo, 1)
                    ar = np.zeros(n_rows)
                    e = rng.normal(0, ex.noise, n_rows)
                    for k in range(1, n_rows):
                        ar[k] = 0.6 * ar[k - 1] + e[k]
                    val = val * np.exp(ar)
            elif ex.mode in ("counter", "errcounter"):
                rate = x if ex.mode == "counter" else x * rps
                incr = rng.poisson(np.maximum(rate, 0)) if ex.source in ("rps", "err") else rate
                c = (
                    np.cumsum(incr)
                    + rng.uniform(1e4, 1e7) * (ex.source == "rps")
                    + rng.integers(0, 4) * (ex.source == "restart")
                )
                # counter resets: a restarted replica's share restarts from zero
                for t_r, j in restarts_by_node:
                    if j == i and t_r < T and ex.source != "restart":
                        c[int(t_r) :] -= c[int(t_r)] / max(1, nodes[i].replicas)
                val = c[idx]
            else:  # gauge
                val = x[idx]
                if ex.source in ("conns", "pool_active", "pool_pending", "locks"):
                    val = rng.poisson(np.maximum(val * np.exp(rng.normal(0, ex.noise, n_rows)), 0)).astype(float)
                else:
                    val = val * np.exp(rng.normal(0, ex.noise, n_rows))
            val = np.asarray(val, float) * ex.scale
            if ex.separate:
                val[rng.random(n_rows) < miss_p] = np.nan
            else:
                val[missing] = np.nan
            if ex.mode == "gauge" and ex.source == "hit":
                val = np.clip(val, 0, 1)
            cols[ex.column] = val
    times = grid + rng.normal(0, 0.15, n_rows)
    return times, cols


# ------------------------------------------------------------------------------------- logs

LOG_MSG = {
    "oom": (
        "ERROR",
        [
            "java.lang.OutOfMemoryError: Java heap space",
            "container killed: OOMKilled (exit code 137)",
            "fatal error: runtime: out of memory",
        ],
    ),
    "overload": (
        "ERROR",
        [
            "503 Service Unavailable: request queue full",
            "rejected execution: thread pool exhausted",
            "server overloaded, shedding load",
        ],
    ),
    "pool": (
        "ERROR",
        [
            "HikariPool-1 - Connection is not available, request timed out after 3000ms",
            "could not acquire connection from pool: timeout",
            "sql: connection pool exhausted",
        ],
    ),
    "own": (
        "ERROR",
        [
            "NullPointerException at OrderMapper.toDto",
            "500 Internal Server Error: unexpected response shape",
            "panic recovered: index out of range",
            "TypeError: Cannot read properties of undefined",
        ],
    ),
    "down": ("ERROR", ["health check failed", "readiness probe failed"]),
}


def make_logs(rng, sim_out, nodes, i0, i1, t0_epoch, events):
    rows = []
    cause = sim_out["_cause"]
    bucket = 10
    for s in range(i0, i1 - bucket, bucket):
        for i, n in enumerate(nodes):
            if n.kind != "service":
                continue
            if sim_out["up"][s, i] <= 0:
                continue
            errs = float((sim_out["err"][s : s + bucket, i] * sim_out["rps"][s : s + bucket, i]).sum())
            k = min(rng.poisson(min(errs * 0.05, 40)), 40)
            cs = [c for c in cause[s : s + bucket, i] if c]
            for _ in range(k):
                c = cs[int(rng.integers(len(cs)))] if cs else "own"
                ts = t0_epoch + s + rng.uniform(0, bucket)
                if c.startswith("dep:"):
                    _, dep, how = ([*c.split(":"), "", ""])[:3]
                    msg = (
                        f"upstream request timeout calling {dep}"
                        if how == "timeout"
                        else str(
                            rng.choice(
                                [
                                    f"error calling {dep}: 503 Service Unavailable",
                                    f"{dep}: connection refused",
                                    f"circuit breaker open for {dep}",
                                ]
                            )
                        )
                    )
                    rows.append((ts, n.name, "ERROR", msg))
                elif c == "dep":
                    rows.append((ts, n.name, "ERROR", "downstream call failed"))
                else:
                    lvl, msgs = LOG_MSG.get(c, LOG_MSG["own"])
                    rows.append((ts, n.name, lvl, str(rng.choice(msgs))))
            # background chatter: slow request warnings, gc warnings, retries
            p99 = sim_out["p99"][s, i]
            if rng.random() < 0.05 or (p99 > 1000 and rng.random() < 0.5):
                rows.append((t0_epoch + s + rng.uniform(0, bucket), n.name, "WARN", f"slow request: {p99:.0f} ms"))
            if n.lang == "jvm" and sim_out["gc"][s, i] > 0.08 and rng.random() < 0.6:
                rows.append(
                    (
                        t0_epoch + s + rng.uniform(0, bucket),
                        n.name,
                        "WARN",
                        f"GC pause {sim_out['gc'][s, i] * 2000:.0f}ms (G1 Evacuation Pause)",
                    )
                )
            if rng.random() < 0.02:
                rows.append(
                    (
                        t0_epoch + s + rng.uniform(0, bucket),
                        n.name,
                        "WARN",
                        str(rng.choice(["retrying request (attempt 2)", "deprecated API used", "cache miss for key"])),
                    )
                )
            if rng.random() < 0.1:
                rows.append((t0_epoch + s + rng.uniform(0, bucket), n.name, "INFO", "GET /health 200"))
    for t_r, i, what in events:
        if i0 <= t_r < i1:
            rows.append((t0_epoch + t_r, nodes[i].name, "INFO", what))
    df = pd.DataFrame(rows, columns=["time", "service", "level", "message"]).sort_values("time")
    return df
