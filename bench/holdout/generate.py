#!/usr/bin/env python
"""Held-out incident generator for judging a root-cause ranker.

Independent of the project's simulators: a fluid (per-second) model of a microservice system
(call graph with services, databases and caches; diurnal + bursty load; queueing, retries,
timeouts, circuit breakers, connection pools, cache-aside masking, GC, restarts), faults injected
into it, and an observation layer that imitates Prometheus-style monitoring (15 s / 30 s scrapes,
per-target phase and jitter, rate windows, counters vs gauges, unit differences, missing scrapes,
missing metrics).

    python generate.py --out DIR --cases 60 --seed 7

Writes DIR/<id>/{metrics.csv, truth.json, topology.yaml[, logs.csv]} and DIR.manifest.json (the
scenario of each case, kept outside the case folders so a ranker cannot read it).

A judge, not a training generator: written by someone who had not read the ranker, from how
production systems fail, and scored with ``bench/rca_accuracy.py --cases-dir``. Nothing in
``models/`` trains, calibrates or is tuned on it; a change made because of its numbers makes them
worthless as ground the model was not built on.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# The project's fault names (models/domain/_types.py FaultType); "errors"/"anomaly" are generic
# metric-level claims and are never a ground truth here.
FAULTS = (
    "cpu",
    "memory",
    "disk",
    "latency",
    "network_errors",
    "db_slow_query",
    "db_pool_exhausted",
    "dependency_down",
    "cache",
    "bad_deploy",
)

ENTRY_NAMES = ["frontend", "api-gateway", "web-bff", "edge-proxy", "storefront"]
SVC_NAMES = [
    "checkout",
    "cart",
    "orders",
    "payments",
    "catalog",
    "search",
    "recommendation",
    "users",
    "auth",
    "inventory",
    "shipping",
    "notification",
    "pricing",
    "reviews",
    "ads",
    "currency",
    "email",
    "fraud",
    "profile",
    "session",
    "ledger",
    "media",
    "coupons",
    "wishlist",
    "loyalty",
    "tax",
    "address",
    "invoice",
    "quotes",
    "fulfillment",
    "billing",
    "accounts",
]
SOFT_NAMES = {"recommendation", "reviews", "ads", "wishlist", "loyalty", "media", "notification", "email", "coupons"}
LANGS = ["jvm", "go", "python", "node"]
LANG_P = [0.4, 0.3, 0.15, 0.15]
SQRT2 = math.sqrt(2.0)
READY_REPLICAS = "_kube_deployment_status_replicas_available"


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / SQRT2))


# ----------------------------------------------------------------------------------- topology


@dataclass
class Node:
    name: str
    kind: str  # service | database | cache
    lang: str = "go"
    engine: str | None = None
    replicas: int = 1
    cores: float = 1.0  # per replica
    cost: float = 0.005  # core-seconds per request
    s50: float = 5.0  # own median service time, ms
    tail: float = 3.0  # own p99/p50
    base_err: float = 0.0005
    mem_base: float = 3e8  # bytes per replica (non-heap / RSS floor)
    heap_max: float = 1e9  # jvm: max heap per replica; others: memory limit per replica
    live0: float = 3e8  # live set per replica
    pool: int = 0  # connections per replica to its database(s)
    qmax_s: float = 5.0  # seconds of backlog before rejecting
    io_frac: float = 0.3  # databases: share of query time waiting on disk
    io_cost: float = 0.0  # databases: disk utilisation per query/s
    hit0: float = 0.9  # caches: baseline hit ratio
    depth: int = 0
    util: float = 0.3  # baseline cpu utilisation at mean load
    parallel: bool = False  # fans out to its callees concurrently
    out: list = field(default_factory=list)  # edge indexes


@dataclass
class Edge:
    src: int
    dst: int
    kind: str  # rpc | db | cache
    p: float  # calls per request
    critical: bool = True
    timeout: float = 1000.0  # ms
    retries: int = 0
    breaker: bool = False
    p_write: float = 0.0  # db edges behind a cache: calls not served by the cache
    cache: int = -1  # db edges behind a cache: that cache's node index
    budget: float = 0.2  # retry budget: extra attempts per original call at most


def build_topology(rng: np.random.Generator, n_total: int) -> tuple[list[Node], list[Edge]]:
    n_db = max(1, round(n_total * rng.uniform(0.12, 0.22)))
    n_cache = max(1, round(n_total * rng.uniform(0.05, 0.12))) if n_total >= 10 else int(rng.random() < 0.7)
    n_svc = n_total - n_db - n_cache
    names = list(rng.choice(SVC_NAMES, size=n_svc - 1, replace=False))
    nodes = [Node(str(rng.choice(ENTRY_NAMES)), "service", depth=0)]
    max_depth = 2 if n_svc <= 7 else (3 if n_svc <= 16 else 4)
    depths = sorted(int(d) for d in rng.integers(1, max_depth + 1, size=n_svc - 1))
    # every level up to the deepest one used is non-empty
    for d in range(1, max(depths) + 1):
        if d not in depths:
            depths[-1 - (d % len(depths))] = d
    depths.sort()
    for name, d in zip(names, depths, strict=False):
        nodes.append(Node(str(name), "service", depth=d))
    edges: list[Edge] = []
    by_depth: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        by_depth.setdefault(n.depth, []).append(i)

    def add(src: int, dst: int, kind: str, **kw) -> None:
        if any(e.src == src and e.dst == dst for e in edges):
            return
        edges.append(Edge(src, dst, kind, **kw))

    for i, n in enumerate(nodes[1:], start=1):
        parents = by_depth.get(n.depth - 1) or [0]
        callers = {int(rng.choice(parents))}
        for d in range(0, n.depth):
            for j in by_depth.get(d, []):
                if rng.random() < (0.22 if d == n.depth - 1 else 0.08):
                    callers.add(j)
        for j in sorted(callers):
            soft = n.name in SOFT_NAMES or rng.random() < 0.12
            add(j, i, "rpc", p=float(rng.uniform(0.4, 1.6) if not soft else rng.uniform(0.3, 1.0)), critical=not soft)

    # databases: owned by the deeper services, sometimes shared
    svc_idx = list(range(1, len(nodes)))
    weights = np.array([1.0 + nodes[i].depth for i in svc_idx], float)
    owners = list(rng.choice(svc_idx, size=min(n_db, len(svc_idx)), replace=False, p=weights / weights.sum()))
    db_nodes = []
    for o in owners:
        engine = str(rng.choice(["postgres", "mysql"], p=[0.65, 0.35]))
        base = nodes[o].name
        nm = f"{base}-db" if rng.random() < 0.7 else f"{base}-{'pg' if engine == 'postgres' else 'mysql'}"
        nodes.append(Node(nm, "database", engine=engine, depth=nodes[o].depth + 1))
        d = len(nodes) - 1
        db_nodes.append(d)
        add(o, d, "db", p=float(rng.uniform(1.0, 3.5)), timeout=float(rng.choice([2000, 5000, 10000, 30000])))
        nodes[o].pool = int(rng.choice([10, 10, 20, 20, 30, 50]))
        if rng.random() < 0.3:
            others = [i for i in svc_idx if i != o and not any(e.src == i and e.dst == d for e in edges)]
            if others:
                j = int(rng.choice(others))
                add(j, d, "db", p=float(rng.uniform(0.3, 1.5)), timeout=5000.0)
                nodes[j].pool = nodes[j].pool or int(rng.choice([10, 20]))
    # caches in front of databases (cache-aside), sometimes a standalone session cache
    for k in range(n_cache):
        cand = [e for e in edges if e.kind == "db" and e.cache < 0]
        style = str(rng.choice(["redis", "cache", "memcached"], p=[0.55, 0.3, 0.15]))
        if cand and rng.random() < 0.85:
            e = cand[int(rng.integers(len(cand)))]
            owner = nodes[e.src].name
            nm = f"{owner}-{style}" if style != "memcached" else f"memcached-{owner}"
            nodes.append(Node(nm, "cache", depth=nodes[e.src].depth + 1))
            c = len(nodes) - 1
            reads = e.p
            e.p_write = reads * float(rng.uniform(0.05, 0.3))
            e.p = reads  # reads, scaled by the miss ratio at run time
            e.cache = c
            add(e.src, c, "cache", p=reads, critical=False, timeout=float(rng.choice([50, 100, 200, 500])))
        else:
            users = [i for i in svc_idx if nodes[i].depth <= 1] or [0]
            s = int(rng.choice([*users, 0]))
            nm = "session-redis" if not any(n.name == "session-redis" for n in nodes) else f"redis-{k}"
            nodes.append(Node(nm, "cache", depth=nodes[s].depth + 1))
            add(s, len(nodes) - 1, "cache", p=1.0, critical=True, timeout=200.0)
    for i, e in enumerate(edges):
        nodes[e.src].out.append(i)
        if e.kind == "rpc":
            e.retries = int(rng.choice([0, 0, 1, 2, 3]))
            e.budget = float(rng.choice([0.1, 0.2, 0.2, 0.5, 1.0]))
            e.breaker = bool(rng.random() < 0.3)
    return nodes, edges


def topo_order(nodes: list[Node], edges: list[Edge]) -> list[int]:
    indeg = [0] * len(nodes)
    for e in edges:
        indeg[e.dst] += 1
    ready = [i for i in range(len(nodes)) if indeg[i] == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for k in nodes[i].out:
            d = edges[k].dst
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    assert len(order) == len(nodes), "call graph has a cycle"
    return order


def calibrate(
    rng: np.random.Generator, nodes: list[Node], edges: list[Edge], order: list[int], rps0: float
) -> np.ndarray:
    """Baseline rates, then sizes (cores, replicas, pools) so that the system is healthy."""
    lam = np.zeros(len(nodes))
    lam[0] = rps0
    for i in order:
        for k in nodes[i].out:
            e = edges[k]
            p = e.p
            if e.kind == "db" and e.cache >= 0:
                p = e.p * 0.1 + e.p_write
            lam[e.dst] += lam[i] * p
    for i, n in enumerate(nodes):
        if n.kind == "service":
            n.parallel = bool(rng.random() < (0.8 if i == 0 else 0.45))
            n.lang = str(rng.choice(LANGS, p=LANG_P))
            n.s50 = float(
                {
                    "go": rng.uniform(2, 10),
                    "jvm": rng.uniform(4, 20),
                    "python": rng.uniform(8, 40),
                    "node": rng.uniform(4, 25),
                }[n.lang]
            )
            n.tail = float(rng.uniform(2.5, 6.0))
            n.cost = float(rng.uniform(0.002, 0.025)) * (1.6 if n.lang == "python" else 1.0)
            n.base_err = float(rng.choice([0.0, 0.0002, 0.0005, 0.001, 0.003]))
            util = rng.uniform(0.12, 0.4)
            n.util = float(util)
            total = max(0.25, lam[i] * n.cost / util)
            n.replicas = int(np.clip(round(total / rng.uniform(0.5, 2.0)), 1, 12))
            n.cores = total / n.replicas
            n.mem_base = float(rng.uniform(0.1, 0.4) * 2**30)
            n.heap_max = float(rng.choice([0.5, 1, 2, 4]) * 2**30)
            n.live0 = n.heap_max * float(rng.uniform(0.2, 0.45))
            # bounded queues that shed load quickly, or deep queues that turn overload into timeouts
            n.qmax_s = float(rng.uniform(0.3, 2.5) if rng.random() < 0.6 else rng.uniform(3, 10))
        elif n.kind == "database":
            n.s50 = float(rng.uniform(0.5, 6))
            n.tail = float(rng.uniform(3, 10))
            n.cost = float(rng.uniform(0.0003, 0.003))
            n.replicas = 1
            util = rng.uniform(0.1, 0.4)
            n.cores = float(max(2.0, 2 ** math.ceil(math.log2(max(1.0, lam[i] * n.cost / util)))))
            n.cost = min(n.cost, n.cores * util / max(lam[i], 1e-3))
            n.mem_base = float(rng.choice([4, 8, 16, 32]) * 2**30)
            n.heap_max = n.mem_base * 1.25
            n.live0 = n.mem_base * 0.9
            n.io_frac = float(rng.uniform(0.15, 0.5))
            n.io_cost = float(rng.uniform(0.1, 0.35)) / max(lam[i], 1.0)  # baseline disk util 10-35 %
            n.base_err = 0.0
            n.qmax_s = 30.0
        else:
            n.s50 = float(rng.uniform(0.15, 0.8))
            n.tail = float(rng.uniform(2, 5))
            n.cost = float(rng.uniform(1e-5, 6e-5))
            n.replicas = 1
            n.cores = 1.0
            n.mem_base = float(rng.choice([1, 2, 4, 8]) * 2**30) * rng.uniform(0.5, 0.8)
            n.heap_max = n.mem_base * 1.3
            n.live0 = n.mem_base
            n.hit0 = float(rng.uniform(0.82, 0.97))
            n.base_err = 0.0
            n.qmax_s = 1.0
    # hit ratio actually used at calibration was 0.9: recompute db rates with the real ones
    lam[:] = 0
    lam[0] = rps0
    for i in order:
        for k in nodes[i].out:
            e = edges[k]
            p = e.p
            if e.kind == "db" and e.cache >= 0:
                p = e.p * (1 - nodes[e.cache].hit0) + e.p_write
            lam[e.dst] += lam[i] * p
    for i, n in enumerate(nodes):
        if n.kind == "database":
            n.io_cost = float(rng.uniform(0.1, 0.35)) / max(lam[i], 1.0)
            cpu_util = lam[i] * n.cost / n.cores
            if cpu_util > 0.45:
                n.cores = float(2 ** math.ceil(math.log2(lam[i] * n.cost / 0.4)))
        if n.kind == "service" and n.pool:
            # pool sized so baseline concurrency to the db uses 5-30 % of it
            db_rate = sum(lam[i] * edges[k].p for k in n.out if edges[k].kind == "db")
            conc = db_rate * 0.005
            n.pool = int(max(n.pool, math.ceil(conc / rng.uniform(0.05, 0.3) / n.replicas)))
    # timeouts: callers set them from the callee's usual latency
    for e in edges:
        if e.kind == "rpc":
            e.timeout = float(
                rng.choice([500, 1000, 2000, 3000, 5000]) if e.critical else rng.choice([100, 200, 300, 500])
            )
    return lam


# ------------------------------------------------------------------------------------ faults


@dataclass
class Fault:
    fault: str  # project fault name (truth)
    variant: str
    target: int
    start: float  # seconds from simulation start
    sev: float
    onset: float = 0.0  # ramp seconds (0 = abrupt)
    extra: dict = field(default_factory=dict)

    def level(self, t: float) -> float:
        if t < self.start:
            return 0.0
        if self.onset <= 0:
            return 1.0
        return min(1.0, (t - self.start) / self.onset)


class Effects:
    """Per-node knobs for one second of simulation."""

    def __init__(self, n: int) -> None:
        self.hog = np.zeros(n)  # cores burnt inside the container
        self.steal = np.zeros(n)  # capacity lost to a noisy neighbour (not in the container's cpu)
        self.cost_mult = np.ones(n)
        self.lat_add = np.zeros(n)  # ms added to own processing
        self.lat_mult = np.ones(n)
        self.net_delay = np.zeros(n)  # ms on every packet in/out
        self.loss = np.zeros(n)
        self.err_add = np.zeros(n)
        self.down = np.zeros(n, bool)
        self.down_fast = np.ones(n, bool)  # connection refused (fast) vs dropped (connect timeout)
        self.lock = np.zeros(n)  # share of capacity lost to lock contention
        self.io_ext = np.zeros(n)  # extra disk utilisation
        self.hit_mult = np.ones(n)  # caches
        self.pool_leak = np.zeros(n)  # connections leaked per replica
        self.fanout_mult = np.ones(n)  # multiplies this node's calls to databases (N+1 queries)
        self.cpu_jitter = np.zeros(n)

    def freeze(self) -> None:
        for k, v in list(vars(self).items()):
            setattr(self, k, v.tolist())


# -------------------------------------------------------------------------------- simulation


def load_curve(rng: np.random.Generator, T: int, t0_epoch: float, rps0: float) -> tuple[np.ndarray, list]:
    t = np.arange(T)
    tod = ((t0_epoch + t) % 86400) / 3600.0
    diurnal = 0.35 + 0.65 * (0.5 - 0.5 * np.cos(2 * np.pi * (tod - 4.0) / 24.0)) ** 1.3
    ar = np.zeros(T)
    eps = rng.normal(0, 0.012, T)
    for k in range(1, T):
        ar[k] = 0.985 * ar[k - 1] + eps[k]
    bursts = np.zeros(T)
    events = []
    n_b = rng.poisson(T / 1500.0)
    for _ in range(n_b):
        b0 = rng.uniform(0, T)
        amp = rng.uniform(0.15, 0.7)
        rise = rng.uniform(10, 90)
        decay = rng.uniform(60, 400)
        x = t - b0
        shape = np.where(x < 0, 0.0, np.where(x < rise, x / rise, np.exp(-(x - rise) / decay)))
        bursts += amp * shape
        events.append(("burst", float(b0), float(amp)))
    spikes = (rng.random(T) < 0.002) * rng.uniform(0.05, 0.3, T)
    lam = rps0 * diurnal / diurnal.mean() * np.exp(ar) * (1 + bursts + spikes)
    return lam, events


class Sim:
    METRICS = (
        "rps",
        "err",
        "p50",
        "p99",
        "cpu",
        "mem",
        "conns",
        "gc",
        "retrans",
        "pool_active",
        "pool_pending",
        "disk_util",
        "disk_read",
        "hit",
        "evict",
        "locks",
        "up",
        "restart",
        "net_tx",
        "ready",
    )

    def __init__(self, rng, nodes, edges, order, load, faults, background):
        self.rng, self.nodes, self.edges, self.order = rng, nodes, edges, order
        self.load, self.faults, self.background = load, faults, background
        self.N, self.T = len(nodes), len(load)

    def run(self) -> dict:
        rng, nodes, edges, N, T = self.rng, self.nodes, self.edges, self.N, self.T
        out = {m: np.zeros((T, N)) for m in self.METRICS}
        cause = np.empty((T, N), dtype=object)
        R = [n.replicas for n in nodes]
        # per-replica state
        live = [np.full(n.replicas, n.live0) * rng.uniform(0.95, 1.05, n.replicas) for n in nodes]
        restart_until = [np.full(n.replicas, -1.0) for n in nodes]
        warm_until = [np.full(n.replicas, -1.0) for n in nodes]
        new_version = [np.zeros(n.replicas, bool) for n in nodes]
        leak_rate = [np.zeros(n.replicas) for n in nodes]
        leak_start = [math.inf] * N
        self.dirty = [1.0] * N  # replica state may change until then
        callers_of = [[e.src for e in edges if e.dst == i] for i in range(N)]
        caller_reps = [float(sum(nodes[j].replicas for j in callers_of[i])) for i in range(N)]
        Q = [0.0] * N
        p50 = [n.s50 for n in nodes]
        p99 = [n.s50 * n.tail for n in nodes]
        err = [0.0] * N
        fail_edge = [0.0] * len(edges)
        breaker_open = [0.0] * len(edges)
        pool_fail = [0.0] * N
        reject = [0.0] * N
        hit_state = [n.hit0 if n.kind == "cache" else 0.0 for n in nodes]
        cache_fill = [1.0] * N  # fraction of the working set cached
        crash_sched = {}
        flushes = {}
        for f in self.faults + self.background:
            if f.variant in ("leak",):
                leak_rate[f.target][:] = f.extra["rate"] * rng.uniform(0.8, 1.2, R[f.target])
                leak_start[f.target] = f.start
            if f.fault == "dependency_down" and f.variant == "crashloop":
                # down windows with a growing back-off, short up windows in between
                windows, t = [], f.start
                back = rng.uniform(10, 25)
                while t < T:
                    windows.append((t, t + back))
                    t += back + rng.uniform(8, 20)
                    back = min(back * 2, 300)
                crash_sched[f.target] = windows
            if f.fault == "cache" and f.variant == "flush":
                flushes[int(f.start)] = f.target
        deploys = [f for f in self.faults + self.background if f.variant.startswith("deploy")]
        for f in deploys:
            f.extra["order"] = list(rng.permutation(R[f.target]))
            f.extra["step"] = float(rng.uniform(15, 45))
        cron = self.background_cron()
        # cached replica-level aggregates: up, warm, new, gc, memory without the concurrency term
        agg = [None] * N

        def refresh(i: int, t: int) -> None:
            n = nodes[i]
            alive = restart_until[i] < t
            up_i = float(alive.sum())
            warm_i = float(((warm_until[i] >= t) & alive).sum())
            new_i = float((new_version[i] & alive).sum())
            gc_i, mem_i = 0.0, 0.0
            if n.kind == "service":
                frac = live[i] / n.heap_max
                if n.lang == "jvm":
                    g = 0.01 * (1.0 / np.maximum(0.04, 1 - frac)) ** 1.6
                else:
                    g = 0.004 * (1.0 / np.maximum(0.1, 1 - frac))
                gc_i = float(min(0.6, g[alive].mean())) if up_i else 0.0
                warm_mem = np.where(warm_until[i] >= t, 0.6, 1.0)[alive]
                if n.lang == "jvm":
                    heap = np.maximum(n.heap_max * 0.6, live[i][alive] * 1.25)
                    mem_i = float((n.mem_base + np.minimum(heap, n.heap_max) * warm_mem).sum())
                else:
                    mem_i = float((live[i][alive] * warm_mem).sum())
            agg[i] = (up_i, warm_i, new_i, gc_i, mem_i)

        for t in range(T):
            ef = Effects(N)
            self.apply(ef, t, crash_sched, deploys, restart_until, warm_until, new_version)
            for i, (period, dur, amp, phase) in cron.items():
                if (t + phase) % period < dur:
                    ef.hog[i] += amp
            ef.freeze()
            row = {m: [0.0] * N for m in self.METRICS}
            crow = [None] * N
            # ---- memory / GC / replicas
            for i, n in enumerate(nodes):
                leaking = t >= leak_start[i]
                if leaking:
                    live[i] += leak_rate[i] * (restart_until[i] < t)
                    frac = live[i] / n.heap_max
                    oom = (restart_until[i] < t) & (frac >= 0.985)
                    for r in np.flatnonzero(oom):
                        restart_until[i][r] = t + rng.uniform(15, 45)
                        warm_until[i][r] = restart_until[i][r] + rng.uniform(30, 90)
                        self.dirty[i] = max(self.dirty[i], warm_until[i][r] + 1)
                        live[i][r] = n.live0 * rng.uniform(0.95, 1.05)
                        row["restart"][i] += 1
                        crow[i] = "oom"
                if leaking or t <= self.dirty[i] or agg[i] is None:
                    refresh(i, t)
            up = [a[0] for a in agg]
            warm = [a[1] for a in agg]
            gc = [a[3] for a in agg]
            upf = [up[i] / R[i] for i in range(N)]
            # ---- arrival rates, callers first
            lam = [0.0] * N
            lam[0] = float(self.load[t])
            miss = [0.0] * N
            for i, n in enumerate(nodes):
                if n.kind == "cache":
                    target = n.hit0 * ef.hit_mult[i] * cache_fill[i]
                    hit_state[i] += (target - hit_state[i]) * 0.2
                    miss[i] = 1 - hit_state[i]
                    if ef.down[i] or up[i] == 0:
                        miss[i] = 1.0
            for i in self.order:
                served = lam[i] * (1 - reject[i])
                if ef.down[i] or up[i] == 0:
                    served = 0.0
                for k in nodes[i].out:
                    e = edges[k]
                    p = e.p
                    if e.kind == "db":
                        p *= ef.fanout_mult[i]
                        if e.cache >= 0:
                            p = p * miss[e.cache] + e.p_write
                        p *= 1 - pool_fail[i]
                    f = fail_edge[k]
                    attempts = 1 + min(e.budget, sum(f**r for r in range(1, e.retries + 1)))
                    if breaker_open[k] > 0.5:
                        attempts = 0.05
                    lam[e.dst] += served * p * attempts
            # ---- latency and errors, callees first
            pool_active = [0.0] * N
            pool_pending = [0.0] * N
            conns_db = [0.0] * N
            retrans = [0.0] * N
            for i in reversed(self.order):
                n = nodes[i]
                if up[i] == 0 or ef.down[i]:
                    err[i] = 1.0
                    p50[i] = p99[i] = 0.5 if ef.down_fast[i] or up[i] == 0 else 3000.0
                    Q[i] = 0.0
                    reject[i] = 1.0
                    crow[i] = crow[i] or "down"
                    continue
                warm_mult = 1 + 1.5 * warm[i] / max(up[i], 1)
                cost = n.cost * (1 + gc[i] * 1.5) * ef.cost_mult[i] * warm_mult
                cores_av = max(0.02, up[i] * n.cores - ef.hog[i] - ef.steal[i])
                mu = cores_av / cost * (1 - ef.lock[i])
                Q[i] = min(max(0.0, Q[i] + lam[i] - mu), mu * n.qmax_s + 1)
                reject[i] = max(0.0, (lam[i] - mu) / lam[i]) if (Q[i] >= mu * n.qmax_s and lam[i] > 0) else 0.0
                rho = min(lam[i] / mu, 0.985) if mu > 0 else 0.985
                c = max(1.0, up[i] * n.cores * 2)
                own = n.s50 * ef.lat_mult[i] * (1 + 0.6 * warm[i] / max(up[i], 1))
                if n.kind == "database":
                    io = min(0.985, n.io_cost * lam[i] + ef.io_ext[i] + 0.03 * math.sin(t / 97.0) ** 8)
                    row["disk_util"][i] = io
                    row["disk_read"][i] = lam[i] * 8192 * (0.3 + 2 * (ef.cost_mult[i] - 1)) + ef.io_ext[i] * 2.5e8
                    own *= 1 + n.io_frac * (io / (1 - io)) * 0.7
                wait = own * rho ** (math.sqrt(2 * (c + 1)) - 1) / (c * (1 - rho))
                if ef.lock[i] > 0:
                    wait += own * 4 * ef.lock[i] / max(0.05, 1 - rho)
                qwait = 1000.0 * Q[i] / max(mu, 1e-3)
                gcp = gc[i] * 400.0 if n.lang == "jvm" else gc[i] * 60
                o50 = own + ef.lat_add[i] + wait + qwait
                o99 = own * n.tail + ef.lat_add[i] * 2.0 + wait * 3 + qwait * 1.2 + gcp
                c50, cvar = [], []
                succ = 1.0
                worst, worst_name = 0.0, None
                pool_wait, pf = 0.0, 0.0
                db_conc = 0.0
                for k in n.out:
                    e = edges[k]
                    d = e.dst
                    p = e.p
                    if e.kind == "db":
                        p *= ef.fanout_mult[i]
                        if e.cache >= 0:
                            p = p * miss[e.cache] + e.p_write
                    delay = ef.net_delay[i] + ef.net_delay[d]
                    loss = 1 - (1 - ef.loss[i]) * (1 - ef.loss[d])
                    l50 = p50[d] + delay + 1000 * loss * 0.3
                    l99 = max(p99[d] + delay * 1.5 + (1000 * min(1, loss * 30)), l50 * 1.01)
                    T_ = e.timeout
                    if err[d] >= 0.999 and p50[d] < 1:  # refused
                        f = 1.0
                        l50 = l99 = 1.0 + delay
                    else:
                        sig = max(0.05, math.log(l99 / max(l50, 1e-3)) / 2.326)
                        ptime = 1 - phi((math.log(T_) - math.log(max(l50, 1e-3))) / sig)
                        f = 1 - (1 - err[d]) * (1 - ptime) * (1 - min(0.9, loss * 3))
                    fail_edge[k] = f
                    if e.breaker:
                        breaker_open[k] = 1.0 if f > 0.5 else (0.0 if f < 0.2 else breaker_open[k])
                    extra = sum(f**r for r in range(1, e.retries + 1))
                    attempts = 1 + min(e.budget, extra)
                    ff = f ** (1 + (e.retries * min(1.0, e.budget / extra) if extra > 0 else 0))
                    if breaker_open[k] > 0.5:
                        ff, attempts, l50c, l99c = 1.0, 0.0, 0.2, 0.5
                    else:
                        l50c, l99c = min(l50, T_) * attempts, min(l99, T_) * attempts
                    if e.kind == "db" and n.pool:
                        rate = lam[i] * (1 - reject[i]) * p
                        db_conc += rate * min(l50 * 1.4, T_) / 1000.0
                    c50.append(min(p, 1.5) * l50c)
                    cvar.append((min(p, 1.5) * max(0.0, l99c - l50c)) ** 2)
                    if e.critical:
                        contrib = 1 - (1 - ff) ** p
                        succ *= 1 - contrib
                        if contrib > worst:
                            worst, worst_name = contrib, (nodes[d].name, "timeout" if ff > err[d] + 1e-9 else "5xx")
                    retrans[d] += lam[i] * p * (loss * 8 + 0.0005) * attempts
                if n.parallel and c50:
                    d50 = max(c50) + 0.15 * (sum(c50) - max(c50))
                    dvar = max(cvar) + 0.15 * (sum(cvar) - max(cvar))
                else:
                    d50, dvar = sum(c50), sum(cvar)
                if n.pool:
                    cap = max(1.0, (n.pool - ef.pool_leak[i]) * up[i])
                    u = db_conc / cap
                    pool_active[i] = min(db_conc, cap) + ef.pool_leak[i] * up[i]
                    if u > 0.75:
                        pool_wait = 5.0 * (min(u, 0.999) - 0.75) / max(0.001, 1 - min(u, 0.999)) * 4
                    if u >= 1:
                        pf = min(0.98, 1 - 1 / u)
                        pool_wait += 1000.0 * pf * 3  # acquire timeout ~3 s for those
                        pool_pending[i] = (u - 1) * cap
                    pool_fail[i] = pf
                    conns_db[i] = max(cap * 0.4, pool_active[i])
                p50[i] = o50 + d50 + min(pool_wait, 3000)
                p99[i] = p50[i] + math.sqrt((o99 - o50) ** 2 + dvar) + (3000 * (pf > 0.01))
                if n.kind == "service" and n.lang == "jvm":
                    p99[i] += gcp
                own_err = n.base_err + ef.err_add[i]
                err[i] = 1 - (1 - min(own_err, 1)) * (1 - reject[i]) * succ * (1 - pf)
                if row["restart"][i] > 0:  # restarts kill in-flight requests
                    err[i] = min(1.0, err[i] + 0.3 / R[i])
                parts = {"own": own_err, "reject": reject[i], "pool": pf, "dep": 1 - succ}
                top = max(parts, key=parts.get)
                if crow[i] is None and parts[top] > 0.01:
                    crow[i] = {
                        "own": "own",
                        "reject": "overload",
                        "pool": "pool",
                        "dep": f"dep:{worst_name[0]}:{worst_name[1]}" if worst_name else "dep",
                    }[top]
            # ---- resource and other metrics
            for i, n in enumerate(nodes):
                if up[i] == 0 or ef.down[i]:
                    row["err"][i] = 1.0
                    row["p50"][i] = p50[i]
                    row["p99"][i] = p99[i]
                    continue
                row["up"][i] = upf[i]
                row["ready"][i] = up[i]
                served = lam[i] * (1 - reject[i])
                busy_cost = n.cost * (1 + gc[i] * 1.5) * ef.cost_mult[i] * (1 + 1.5 * warm[i] / max(up[i], 1))
                cpu = min(up[i] * n.cores, served * busy_cost + ef.hog[i] + 0.02 * up[i] * n.cores)
                if ef.lock[i] > 0 and n.kind == "database":
                    cpu *= 1 - 0.4 * ef.lock[i]
                row["cpu"][i] = cpu
                row["rps"][i] = lam[i]
                row["err"][i] = err[i]
                row["p50"][i] = p50[i]
                row["p99"][i] = p99[i]
                row["gc"][i] = gc[i]
                conc = lam[i] * p50[i] / 1000.0
                if n.kind == "service":
                    row["mem"][i] = agg[i][4] + (conc * 2e5 if n.lang != "jvm" else 0.0)
                    row["conns"][i] = conc + 4 * caller_reps[i]
                    row["pool_active"][i] = pool_active[i]
                    row["pool_pending"][i] = pool_pending[i]
                elif n.kind == "database":
                    row["mem"][i] = n.mem_base * (0.97 + 0.01 * math.sin(t / 300.0))
                    row["conns"][i] = sum(conns_db[j] for j in callers_of[i]) + 3 + conc * 0.2
                    row["locks"][i] = ef.lock[i] * conc * 2 + conc * 0.01
                else:
                    cache_fill[i] += (1.0 - cache_fill[i]) * 0.004
                    row["mem"][i] = n.mem_base * (0.3 + 0.7 * cache_fill[i])
                    row["hit"][i] = hit_state[i]
                    row["evict"][i] = lam[i] * miss[i] * 0.05 * (1 + 20 * (1 - ef.hit_mult[i]))
                    row["conns"][i] = 5 + 8 * caller_reps[i]
                row["retrans"][i] = retrans[i] + lam[i] * (ef.loss[i] * 8) + 0.01
                row["net_tx"][i] = lam[i] * (2000 + 6000 * (n.kind != "cache"))
            if t in flushes:  # a flushed cache starts cold and warms up over minutes
                cache_fill[flushes[t]] = 0.02
                hit_state[flushes[t]] = 0.05
            for m in self.METRICS:
                out[m][t] = row[m]
            cause[t] = crow
        out["_cause"] = cause
        return out

    def background_cron(self) -> dict:
        cron = {}
        for f in self.background:
            if f.variant == "cron":
                cron[f.target] = (f.extra["period"], f.extra["dur"], f.extra["amp"], f.extra["phase"])
        return cron

    def apply(self, ef: Effects, t: int, crash_sched, deploys, restart_until, warm_until, new_version) -> None:
        nodes, rng = self.nodes, self.rng
        for f in self.faults + self.background:
            i = f.target
            a = f.level(t)
            if f.variant.startswith("deploy"):
                # rolling update: one replica at a time, surge pod comes up then old one is killed
                k = int((t - f.start) // f.extra["step"]) if t >= f.start else -1
                for j, r in enumerate(f.extra["order"]):
                    if j <= k and not new_version[i][r]:
                        new_version[i][r] = True
                        restart_until[i][r] = t + rng.uniform(3, 10)
                        warm_until[i][r] = restart_until[i][r] + rng.uniform(40, 120)
                        self.dirty[i] = max(self.dirty[i], warm_until[i][r] + 1)
                        self._restarts.append((t, i))
                if a <= 0:
                    continue
                frac = new_version[i].mean()
                v = f.variant
                if v == "deploy-errors":
                    ef.err_add[i] += f.sev * frac
                elif v == "deploy-latency":
                    ef.fanout_mult[i] *= 1 + (f.extra["nplus1"] - 1) * frac
                    ef.lat_add[i] += f.sev * 30 * frac
                elif v == "deploy-cpu":
                    ef.cost_mult[i] *= 1 + f.sev * 1.5 * frac
                continue
            if a <= 0:
                continue
            v = f.variant
            cores = nodes[i].cores * nodes[i].replicas
            if v == "hog":
                ef.hog[i] += a * f.sev * cores
            elif v == "steal":
                ef.steal[i] += a * f.sev * cores
            elif v == "cron":
                pass
            elif v == "leak":
                pass  # handled through leak_rate
            elif v in ("net-delay",):
                ef.net_delay[i] += a * f.sev * f.extra["ms"]
            elif v == "slow-internal":
                ef.lat_add[i] += a * f.sev * f.extra["ms"]
            elif v == "soft-slow":
                ef.lat_add[i] += a * f.extra["ms"]
            elif v == "lock":
                ef.lock[i] += a * min(0.95, f.sev)
            elif v == "loss":
                ef.loss[i] += a * min(0.5, f.sev * f.extra["loss"])
            elif v == "disk-sat":
                ef.io_ext[i] += a * min(0.97, f.sev * f.extra["io"])
            elif v == "slow-query":
                ef.cost_mult[i] *= 1 + a * f.sev * f.extra["x"]
                ef.lat_mult[i] *= 1 + a * f.sev * f.extra["x"] * 0.8
            elif v == "pool-leak":
                ef.pool_leak[i] += min(nodes[i].pool * 0.97, a * f.sev * nodes[i].pool)
            elif v == "pool-shrink":
                ef.pool_leak[i] += nodes[i].pool * min(0.97, f.sev * f.extra["shrink"])
            elif v in ("down",):
                ef.down[i] = True
                ef.down_fast[i] = f.extra.get("fast", True)
            elif v == "crashloop":
                if any(s <= t < e for s, e in crash_sched.get(i, [])):
                    ef.down[i] = True
            elif v == "evict":
                ef.hit_mult[i] *= 1 - a * min(0.98, f.sev * f.extra["drop"])
            elif v == "flush":
                pass
            elif v == "cache-down":
                ef.down[i] = True
            elif v == "batch-db":
                ef.io_ext[i] += a * f.sev
                ef.cost_mult[i] *= 1 + 0.3 * a


# ---------------------------------------------------------------------------------- scenarios

SCENARIOS = [
    # (fault, variant, weight)
    ("cpu", "hog", 4),
    ("cpu", "steal", 1.5),
    ("cpu", "hog-pair", 1.2),
    ("memory", "leak", 5),
    ("latency", "slow-internal", 2.5),
    ("latency", "net-delay", 2),
    ("latency", "lock", 2),
    ("network_errors", "loss", 4),
    ("disk", "disk-sat", 4),
    ("db_slow_query", "slow-query", 3),
    ("db_slow_query", "lock", 1.5),
    ("db_pool_exhausted", "pool-leak", 3),
    ("db_pool_exhausted", "pool-shrink", 1.5),
    ("dependency_down", "down", 2.5),
    ("dependency_down", "crashloop", 2),
    ("cache", "flush", 2),
    ("cache", "evict", 1.5),
    ("cache", "cache-down", 1.5),
    ("bad_deploy", "deploy-errors", 3),
    ("bad_deploy", "deploy-latency", 2),
    ("bad_deploy", "deploy-cpu", 1.5),
    ("bad_deploy", "deploy-pair", 1),
]


def critical_reach(nodes, edges) -> set[int]:
    """Nodes whose failure reaches the entry through critical calls (or db behind a cache)."""
    seen = {0}
    stack = [0]
    while stack:
        i = stack.pop()
        for k in nodes[i].out:
            e = edges[k]
            if (e.critical or e.kind == "db") and e.dst not in seen:
                seen.add(e.dst)
                stack.append(e.dst)
    return seen


def pick_scenarios(rng, n_cases):
    w = np.array([s[2] for s in SCENARIOS], float)
    counts = np.floor(w / w.sum() * n_cases).astype(int)
    while counts.sum() < n_cases:
        k = int(rng.choice(len(SCENARIOS), p=w / w.sum()))
        counts[k] += 1
    items = [SCENARIOS[k][:2] for k in range(len(SCENARIOS)) for _ in range(counts[k])]
    rng.shuffle(items)
    return items


def make_fault(rng, fault, variant, nodes, edges, t_inj, sev_scale):
    """The fault(s) of a scenario; returns (faults, root node indexes)."""
    crit = critical_reach(nodes, edges)
    svcs = sorted(i for i in crit if nodes[i].kind == "service" and i != 0)
    if len(svcs) < 2:
        svcs = [i for i, n in enumerate(nodes) if n.kind == "service" and i != 0]
    svcs_entry_ok = svcs + ([0] if rng.random() < 0.08 else [])
    dbs = sorted(i for i in crit if nodes[i].kind == "database") or [
        i for i, n in enumerate(nodes) if n.kind == "database"
    ]
    caches = [
        i for i, n in enumerate(nodes) if n.kind == "cache" and any(e.cache == i and e.src in crit for e in edges)
    ]
    pooled = [i for i in svcs if nodes[i].pool]
    abrupt = rng.random() < 0.7
    onset = 0.0 if abrupt else float(rng.uniform(90, 600))

    def choose(c):
        return int(rng.choice(c))

    s = sev_scale
    if fault == "cpu":
        if variant == "hog-pair":
            a, b = rng.choice(svcs, size=2, replace=False) if len(svcs) >= 2 else (svcs[0], svcs[0])
            sev = float(min(0.97, rng.uniform(0.55, 0.85) * s))
            return [
                Fault("cpu", "hog", int(a), t_inj, sev, onset),
                Fault("cpu", "hog", int(b), t_inj + rng.uniform(0, 20), sev * rng.uniform(0.6, 0.95), onset),
            ], [int(a), int(b)]
        i = choose(svcs_entry_ok)
        sev = float(min(0.97, rng.uniform(0.45, 0.8) * s))
        return [Fault("cpu", variant, i, t_inj, sev, onset)], [i]
    if fault == "memory":
        i = choose(svcs)
        n = nodes[i]
        # a leak that fills the headroom in 4-15 minutes
        fill = rng.uniform(240, 900) / s
        rate = (n.heap_max - n.live0) / fill
        return [Fault("memory", "leak", i, t_inj, 1.0, 0.0, {"rate": rate})], [i]
    if fault == "latency":
        if variant == "lock":
            i = choose(svcs)
            return [Fault("latency", "lock", i, t_inj, float(min(0.95, rng.uniform(0.4, 0.75) * s)), onset)], [i]
        i = choose(svcs)
        ms = float(rng.uniform(80, 600))
        return [Fault("latency", variant, i, t_inj, float(s), onset, {"ms": ms})], [i]
    if fault == "network_errors":
        i = choose(svcs + dbs)
        return [Fault("network_errors", "loss", i, t_inj, float(s), onset, {"loss": rng.uniform(0.03, 0.15)})], [i]
    if fault == "disk":
        i = choose(dbs)
        return [Fault("disk", "disk-sat", i, t_inj, float(s), onset, {"io": rng.uniform(0.6, 0.9)})], [i]
    if fault == "db_slow_query":
        i = choose(dbs)
        if variant == "lock":
            return [Fault("db_slow_query", "lock", i, t_inj, float(min(0.95, rng.uniform(0.5, 0.85) * s)), onset)], [i]
        return [Fault("db_slow_query", "slow-query", i, t_inj, float(s), onset, {"x": rng.uniform(2, 8)})], [i]
    if fault == "db_pool_exhausted":
        i = choose(pooled) if pooled else choose(svcs)
        if not nodes[i].pool:
            nodes[i].pool = 10
        if variant == "pool-leak":
            return [
                Fault(
                    "db_pool_exhausted", "pool-leak", i, t_inj, float(min(1.0, 0.9 * s)), float(rng.uniform(120, 600))
                )
            ], [i]
        return [
            Fault("db_pool_exhausted", "pool-shrink", i, t_inj, float(s), 0.0, {"shrink": rng.uniform(0.7, 0.92)})
        ], [i]
    if fault == "dependency_down":
        i = choose(svcs + dbs)
        return [Fault("dependency_down", variant, i, t_inj, 1.0, 0.0, {"fast": bool(rng.random() < 0.7)})], [i]
    if fault == "cache":
        if not caches:
            return None, None  # this system has no cache in front of a database: draw another
        i = choose(caches)
        if variant == "evict":
            return [Fault("cache", "evict", i, t_inj, float(s), onset, {"drop": rng.uniform(0.5, 0.9)})], [i]
        return [Fault("cache", variant, i, t_inj, 1.0, 0.0)], [i]
    if fault == "bad_deploy":
        if variant == "deploy-pair":
            a, b = rng.choice(svcs, size=2, replace=False) if len(svcs) >= 2 else (svcs[0], svcs[0])
            return [
                Fault("bad_deploy", "deploy-errors", int(a), t_inj, float(min(0.9, rng.uniform(0.05, 0.4) * s))),
                Fault(
                    "bad_deploy",
                    "deploy-errors",
                    int(b),
                    t_inj + rng.uniform(5, 60),
                    float(min(0.9, rng.uniform(0.03, 0.2) * s)),
                ),
            ], [int(a), int(b)]
        i = choose(svcs_entry_ok)
        if variant == "deploy-errors":
            return [Fault("bad_deploy", variant, i, t_inj, float(min(0.6, rng.uniform(0.04, 0.35) * s)))], [i]
        if variant == "deploy-latency":
            if not any(edges[k].kind == "db" for k in nodes[i].out):
                return [Fault("bad_deploy", "deploy-cpu", i, t_inj, float(rng.uniform(0.6, 1.5) * s))], [i]
            return [Fault("bad_deploy", variant, i, t_inj, float(s), 0.0, {"nplus1": rng.uniform(3, 10) * s})], [i]
        return [Fault("bad_deploy", variant, i, t_inj, float(rng.uniform(0.5, 1.2) * s))], [i]
    raise ValueError(fault)


def make_background(rng, nodes, edges, roots, t_inj, T, hard_distractor):
    """Benign things that happen in real systems, and optionally a loud unrelated degradation."""
    bg = []
    notes = []
    svc = [i for i, n in enumerate(nodes) if n.kind == "service" and i not in roots]
    dbs = [i for i, n in enumerate(nodes) if n.kind == "database" and i not in roots]
    for i in svc:
        if rng.random() < 0.07:
            bg.append(
                Fault(
                    "-",
                    "cron",
                    i,
                    0,
                    0,
                    0,
                    {
                        "period": int(rng.choice([300, 600, 900])),
                        "dur": int(rng.uniform(20, 90)),
                        "amp": float(nodes[i].cores * nodes[i].replicas * rng.uniform(0.1, 0.3)),
                        "phase": int(rng.integers(0, 900)),
                    },
                )
            )
            notes.append(f"cron:{nodes[i].name}")
    if svc and rng.random() < 0.35:
        i = int(rng.choice(svc))
        bg.append(Fault("-", "deploy-benign", i, float(rng.uniform(90, t_inj + 600)), 0.0))
        notes.append(f"benign-deploy:{nodes[i].name}")
    if dbs and rng.random() < 0.2:
        i = int(rng.choice(dbs))
        t0 = float(rng.uniform(30, t_inj))
        bg.append(Fault("-", "batch-db", i, t0, float(rng.uniform(0.2, 0.45)), 30.0))
        bg[-1].extra["end"] = t0 + rng.uniform(120, 400)
        notes.append(f"db-batch:{nodes[i].name}")
    if hard_distractor:
        # an unrelated service degrades loudly near the fault but is masked (soft dependency,
        # off the critical path) or is just a noisy benign event
        soft_targets = [
            e.dst
            for e in edges
            if e.kind == "rpc" and not e.critical and e.dst not in roots and nodes[e.dst].kind == "service"
        ]
        t0 = t_inj + float(rng.uniform(-240, 120))
        choice = rng.random()
        if soft_targets and choice < 0.5:
            i = int(rng.choice(soft_targets))
            bg.append(
                Fault("-", "soft-slow", i, t0, 1.0, float(rng.uniform(0, 60)), {"ms": float(rng.uniform(300, 3000))})
            )
            notes.append(f"distractor-soft-slow:{nodes[i].name}")
        elif svc:
            i = int(rng.choice(svc))
            bg.append(Fault("-", "hog", i, t0, float(np.clip(0.75 - 1.4 * nodes[i].util, 0.15, 0.45)), 20.0))
            bg[-1].extra["end"] = t0 + rng.uniform(120, 600)
            notes.append(f"distractor-cpu:{nodes[i].name}")
    return bg, notes


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
        for ex in exps[i]:
            x = sim_out[ex.source][:, i]
            rps = sim_out["rps"][:, i]
            if ex.mode in ("rate", "quantile", "errrate", "errratio"):
                base = x if ex.mode != "errrate" else x * rps
                if ex.mode == "quantile":
                    wgt = np.maximum(rps, 1e-3)
                    cs = np.concatenate([[0], np.cumsum(base * wgt)])
                    cw = np.concatenate([[0], np.cumsum(wgt)])
                    lo = np.maximum(idx - window, 0)
                    val = (cs[idx] - cs[lo]) / np.maximum(cw[idx] - cw[lo], 1e-9)
                else:
                    cs = np.concatenate([[0], np.cumsum(base)])
                    lo = np.maximum(idx - window, 0)
                    val = (cs[idx] - cs[lo]) / np.maximum(idx - lo, 1)
                cnt = np.maximum(
                    (np.concatenate([[0], np.cumsum(rps)])[idx] - np.concatenate([[0], np.cumsum(rps)])[lo]), 0
                )
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


# ------------------------------------------------------------------------------------ alert


def smooth(x, w):
    cs = np.concatenate([[0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - w, 0)
    return (cs[idx] - cs[lo]) / (idx - lo)


def entry_signals(out, window):
    rps = np.maximum(out["rps"][:, 0], 1e-3)
    p99 = smooth(out["p99"][:, 0] * rps, window) / smooth(rps, window)
    err = smooth(out["err"][:, 0] * rps, window) / smooth(rps, window)
    return p99, err


def alert_rule(rng, out, t_inj, window):
    """Thresholds an on-call team would have set: a multiple of normal p99 that the last
    half hour did not cross, and an error ratio of a few percent."""
    p99, err = entry_signals(out, window)
    pre = slice(60 + window, int(t_inj))
    thr_l = max(np.median(p99[pre]) * rng.uniform(1.6, 2.2), p99[pre].max() * 1.2)
    thr_e = max(float(rng.choice([0.01, 0.02, 0.05])), np.median(err[pre]) * 5, err[pre].max() * 1.3)
    return {"lat_thr_ms": float(thr_l), "err_thr": float(thr_e), "for_s": int(rng.choice([60, 120])), "eval_s": None}


def find_alert(out, rule, t_from, T, window, phase):
    p99, err = entry_signals(out, window)
    since = None
    for tk in np.arange(int(t_from) + phase, T, rule["eval_s"]):
        k = int(tk)
        if p99[k] > rule["lat_thr_ms"] or err[k] > rule["err_thr"]:
            since = tk if since is None else since
            if tk - since >= rule["for_s"]:
                return float(tk), ("latency" if p99[k] > rule["lat_thr_ms"] else "errors")
        else:
            since = None
    return None, None


def healthy_baseline(out, nodes, t_inj, window) -> bool:
    p99, err = entry_signals(out, window)
    pre = slice(60 + window, int(t_inj))
    if err[pre].max() > 0.02 or p99[pre].max() > 3.5 * np.median(p99[pre]):
        return False
    bad = (out["err"][60 : int(t_inj)] > 0.05).mean(axis=0)
    return bool(bad.max() < 0.02)


def end_level(f: Fault) -> None:
    if "end" in f.extra:
        end, orig = f.extra["end"], f.level
        f.level = lambda t: 0.0 if t >= end else orig(t)


def gen_case(rng, case_id, fault, variant, out_dir):
    n_total = int(rng.integers(8, 31))
    for attempt in range(30):  # noqa: B007  # the manifest records the attempt that alerted
        nodes, edges = build_topology(rng, n_total)
        order = topo_order(nodes, edges)
        rps0 = float(np.exp(rng.uniform(np.log(30), np.log(800))))
        calibrate(rng, nodes, edges, order, rps0)
        pre = float(rng.uniform(400, 1260))
        horizon = 2100.0
        T = int(pre + horizon)
        t0_epoch = float(rng.integers(1_700_000_000, 1_760_000_000))
        load, burst_events = load_curve(rng, T, t0_epoch, rps0)
        hard = rng.random() < 0.35
        step = int(rng.choice([15, 30], p=[0.6, 0.4]))
        window = int(rng.choice([60, 60, 120])) if step == 30 else int(rng.choice([30, 60, 60]))
        phase = float(rng.uniform(0, step))
        sev = float(rng.uniform(0.6, 1.0))
        # background (and the counterfactual without the fault) fixed for this system
        fault_seed = int(rng.integers(1 << 62))
        faults0, roots0 = make_fault(np.random.default_rng(fault_seed), fault, variant, nodes, edges, pre, 1.0)
        if faults0 is None:
            continue
        bg, notes = make_background(rng, nodes, edges, roots0, pre, T, hard)
        for b in bg:
            end_level(b)
        base = Sim(np.random.default_rng(1), nodes, edges, order, load, [], bg)
        base._restarts = []
        out0 = base.run()
        if not healthy_baseline(out0, nodes, pre, window):
            continue
        rule = alert_rule(rng, out0, pre, window)
        rule["eval_s"] = step
        # the counterfactual must stay quiet: the alert is the fault's
        if find_alert(out0, rule, pre - 300, T, window, phase)[0] is not None:
            continue
        ok = False
        for _tries in range(6):
            faults, roots = make_fault(np.random.default_rng(fault_seed), fault, variant, nodes, edges, pre, sev)
            faults = [f for f in faults]
            sim = Sim(np.random.default_rng(2), nodes, edges, order, load, faults, bg)
            sim._restarts = []
            out = sim.run()
            alert, by = find_alert(out, rule, pre, T, window, phase)
            onset = max(f.onset for f in faults)
            if variant == "leak":
                onset = max(
                    onset, min((n.heap_max - n.live0) / f.extra["rate"] for f in faults for n in [nodes[f.target]])
                )
            deadline = pre + onset + 420
            if alert is not None and alert <= deadline and alert - pre < horizon - 420:
                ok = True
                break
            sev *= 1.4
        if ok:
            break
    else:
        raise NoUsableCase(f"{case_id}: no usable system/fault after 12 attempts")
    rule["by"] = by
    fault, variant = faults[0].fault, faults[0].variant if variant not in ("hog-pair", "deploy-pair") else variant
    post = float(rng.uniform(180, 600))
    i0 = 60  # the first minute is the model settling
    i1 = int(min(T, max(alert + post, i0 + 660)))
    dialect = str(rng.choice(["short", "prom"]))
    exps = exposures_for(rng, nodes, dialect, roots)
    restarts = list(sim._restarts) + [(t, i) for t, i in zip(*np.nonzero(out["restart"]), strict=False)]
    times, cols = observe(rng, out, nodes, exps, i0, i1, step, window, restarts)
    metrics = pd.DataFrame({"time": np.round(t0_epoch + times, 3), **cols})
    # drop rows whose every metric is missing
    metrics = metrics[metrics.drop(columns="time").notna().any(axis=1)]
    folder = Path(out_dir) / case_id
    folder.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(folder / "metrics.csv", index=False)
    truth = {
        "service": nodes[roots[0]].name,
        "fault": fault,
        "inject_time": round(t0_epoch + pre, 3),
        "alert_time": round(t0_epoch + alert, 3),
        "root_causes": [nodes[r].name for r in dict.fromkeys(roots)],
        "generator": "holdout",
        "id": case_id,
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    ns = str(rng.choice(["shop", "prod", "default", "commerce"]))
    topo = {"services": [], "calls": [[nodes[e.src].name, nodes[e.dst].name] for e in edges]}
    for n in nodes:
        d = {"name": n.name, "kind": n.kind}
        if n.engine:
            d["engine"] = n.engine
        d["namespace"] = ns
        if n.kind == "service":
            d["deployment"] = n.name
            d["replicas"] = int(n.replicas)
        topo["services"].append(d)
    (folder / "topology.yaml").write_text(yaml.safe_dump(topo, sort_keys=False))
    with_logs = rng.random() < 0.5
    if with_logs:
        events = [(t, i, "Started application (new replica)") for t, i in sim._restarts]
        restarted = zip(*np.nonzero(out["restart"]), strict=True)
        events += [(int(t), int(i), "Container restarted after OOMKilled") for t, i in restarted]
        logs = make_logs(rng, out, nodes, i0, i1, t0_epoch, events)
        if len(logs):
            logs["time"] = logs["time"].round(3)
            logs.to_csv(folder / "logs.csv", index=False)
    p99s, errs = entry_signals(out, window)
    a0, a1 = int(alert), int(min(T, alert + 180))
    impact = {
        "entry_err_at_alert": round(float(np.median(errs[a0:a1])), 4),
        "entry_p99_ratio_at_alert": round(float(np.median(p99s[a0:a1]) / np.median(p99s[60 + window : int(pre)])), 2),
        "max_err_any_service": round(float(np.median(out["err"][a0:a1], axis=0).max()), 3),
    }
    meta = {
        "impact": impact,
        "id": case_id,
        "fault": fault,
        "variant": variant,
        "roots": truth["root_causes"],
        "n_nodes": len(nodes),
        "entry": nodes[0].name,
        "root_depth": nodes[roots[0]].depth,
        "root_kind": nodes[roots[0]].kind,
        "onset_s": round(max(f.onset for f in faults), 1),
        "severity_scale": round(sev, 3),
        "attempt": attempt,
        "alert_after_s": round(alert - pre, 1),
        "alert_rule": rule,
        "scrape_s": step,
        "rate_window_s": window,
        "dialect": dialect,
        "logs": with_logs,
        "hard_distractor": hard,
        "background": notes,
        "bursts": len(burst_events),
        "rows": len(metrics),
        "columns": len(cols),
    }
    return meta


class NoUsableCase(RuntimeError):
    """No system drawn for a case both stays healthy without the fault and alerts with it."""


def _one(args):
    seed, k, fault, variant, out = args
    case_id = f"holdout-{seed}-{k:03d}"
    try:
        return gen_case(np.random.default_rng([seed, k]), case_id, fault, variant, out)
    except NoUsableCase as exc:  # this draw gives no case: the others stand
        return {"id": case_id, "fault": fault, "variant": variant, "skipped": str(exc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"error: {out} is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    plan = pick_scenarios(np.random.default_rng(args.seed), args.cases)
    jobs = [(args.seed, k, f, v, str(out)) for k, (f, v) in enumerate(plan)]
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.Pool(args.jobs) as pool:
            metas = []
            for meta in pool.imap(_one, jobs):
                metas.append(meta)
                _report(meta)
    else:
        metas = [_report(_one(j)) for j in jobs]
    Path(str(out).rstrip("/") + ".manifest.json").write_text(json.dumps(metas, indent=1))


def _report(meta):
    if "skipped" in meta:
        print(f"{meta['id']} skipped: {meta['skipped']}", flush=True)
        return meta
    print(
        f"{meta['id']} {meta['fault']:18s} {meta['variant']:14s} root={','.join(meta['roots']):28s} "
        f"alert+{meta['alert_after_s']:6.0f}s by {meta['alert_rule']['by']:7s} n={meta['n_nodes']} "
        f"sev={meta['severity_scale']}",
        flush=True,
    )
    return meta


if __name__ == "__main__":
    main()
