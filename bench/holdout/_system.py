"""The judge's system: service names, the call graph (services, databases, caches) and the
capacities that keep its baseline healthy (see ``generate``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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


def request_rates(
    nodes: list[Node], edges: list[Edge], order: list[int], rps0: float, miss_ratio: Callable[[int], float]
) -> np.ndarray:
    """Requests per second reaching each node from ``rps0`` at the entry, in call order; a database
    behind a cache gets the cache's misses (``miss_ratio`` of the cache's index) and the writes."""
    lam = np.zeros(len(nodes))
    lam[0] = rps0
    for i in order:
        for k in nodes[i].out:
            e = edges[k]
            p = e.p
            if e.kind == "db" and e.cache >= 0:
                p = e.p * miss_ratio(e.cache) + e.p_write
            lam[e.dst] += lam[i] * p
    return lam


def calibrate(
    rng: np.random.Generator, nodes: list[Node], edges: list[Edge], order: list[int], rps0: float
) -> np.ndarray:
    """Baseline rates, then sizes (cores, replicas, pools) so that the system is healthy."""
    lam = request_rates(nodes, edges, order, rps0, lambda cache: 0.1)
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
    lam = request_rates(nodes, edges, order, rps0, lambda cache: 1 - nodes[cache].hit0)
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
