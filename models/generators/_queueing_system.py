"""The system a queueing incident runs on: components, their capacity, and the call graph.

Drawn the way microservice estates are usually built, not from what a ranker looks at: one or two
user-facing entry services, tiers of business services calling deeper tiers (sometimes in
parallel fan-out), databases owned by one service (sometimes shared), caches in front of a
database (cache-aside: reads go to the cache, misses and writes to the database) or holding
sessions, and sometimes a batch job that hits a database on a schedule. Capacity is planned the way
teams plan it: replicas and cores sized so that CPU at the daily peak sits at 25-60 %, worker
pools and connection pools sized with head-room, ``max_connections`` above the sum of the pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.domain._types import ServiceKind

_ENTRY_NAMES = ("frontend", "api-gateway", "web", "mobile-bff", "storefront", "edge-api")
_SERVICE_NAMES = (
    "checkout", "cart", "catalog", "payment", "ledger", "shipping", "inventory", "pricing", "user", "auth",
    "search", "recommendation", "review", "notification", "email", "order", "invoice", "fraud", "tax",
    "currency", "ad", "media", "profile", "wishlist", "coupon", "loyalty", "geo", "quote", "billing",
    "account", "feed", "rating", "warehouse", "delivery", "refund", "subscription", "identity", "image",
    "audit", "promotion", "settlement", "risk", "kyc", "routing", "pickup",
)  # fmt: skip
_BATCH_NAMES = ("report-cron", "etl-job", "billing-batch", "reindex-job", "nightly-export")
_SUFFIXES = ("", "-service", "-svc", "-api")
#: Runtimes: (worker threads per replica, share of cases); "go" and "node" do not queue on workers.
_RUNTIMES = {"jvm": (200, 0.35), "go": (4096, 0.25), "python": (8, 0.2), "node": (4096, 0.2)}
_REDIS_CPU_PER_OP = 12e-6


@dataclass
class Component:
    """One component and its capacity (totals over its replicas)."""

    name: str
    kind: ServiceKind
    engine: str | None = None  # postgres, mysql, redis, memcached
    runtime: str = "go"
    replicas: int = 1
    workers: int = 4096  # per replica; 4096 means "no worker limit" (event loop, goroutines)
    cores: float = 1.0  # CPU limit per replica
    cpu_time: float = 0.005  # s of CPU per request of its own endpoint
    io_time: float = 0.002  # s of non-CPU own time per request
    cv: float = 1.0  # coefficient of variation of the service time
    entry_rate: float = 0.0  # external requests/s at the daily peak (entry services, batch jobs)
    queue_seconds: float = 10.0  # backlog it accepts, in seconds of work, before rejecting
    mem_base_mb: float = 300.0  # RSS of a fresh pod
    mem_limit_mb: float = 1024.0
    alloc_kb: float = 50.0  # heap allocated per request (drives the GC sawtooth)
    disk_gb: float = 20.0
    disk_used: float = 0.4  # fraction at the start of the window
    write_kb: float = 1.0  # disk written per request (logs, WAL, data)
    max_connections: int = 0  # databases
    maxmemory_mb: float = 0.0  # caches
    io_parallel: float = 0.0  # databases: concurrent I/O the disk serves well
    backing_db: int = -1  # caches: the database whose reads it absorbs
    hit_ratio: float = 0.0  # caches: share of reads served from memory in normal operation

    @property
    def is_batch(self) -> bool:
        return self.runtime == "batch"


@dataclass
class Edge:
    """A call edge: what a request of ``caller`` does to ``callee``."""

    caller: int
    callee: int
    p: float  # chance a request of the caller makes this call at all
    calls: int  # sequential calls made when it does (several queries, several reads)
    parallel: bool  # made in parallel with the caller's other parallel calls
    timeout: float  # client timeout per attempt (s)
    retries: int
    cpu_time: float  # the callee's CPU time for this endpoint / query class (s)
    io_time: float  # the callee's non-CPU time for it (s)
    write_share: float = 0.0  # share of these calls that write
    pool: int = 0  # connection pool size over all the caller's replicas (database edges)
    pool_timeout: float = 30.0
    cache_edge: int = -1  # database edges: the caller's edge to the cache in front (misses come here)
    fallback: bool = False  # cache edges: a failed cache call is treated as a miss, not an error
    query: str = ""  # the statement of this query class, for slow-query logs and snapshots


@dataclass
class System:
    components: list[Component]
    edges: list[Edge]
    entries: list[int]
    order: list[int] = field(default_factory=list)  # callers before callees
    #: Derived data kept between calls (adjacency lists, the dynamics' layout); the call graph is
    #: fixed once drawn, capacity once planned.
    cache: dict[str, object] = field(default_factory=dict)

    def out_edges(self, index: int) -> list[int]:
        return self._adjacency()[0][index]

    def in_edges(self, index: int) -> list[int]:
        return self._adjacency()[1][index]

    def _adjacency(self) -> tuple[list[list[int]], list[list[int]]]:
        found = self.cache.get("adjacency")
        if isinstance(found, tuple) and len(found[0]) == len(self.components):
            return found
        out: list[list[int]] = [[] for _ in self.components]
        into: list[list[int]] = [[] for _ in self.components]
        for e, edge in enumerate(self.edges):
            out[edge.caller].append(e)
            into[edge.callee].append(e)
        self.cache["adjacency"] = (out, into)
        return out, into

    def kind_indices(self, kind: ServiceKind) -> list[int]:
        return [i for i, c in enumerate(self.components) if c.kind == kind]


def draw_system(rng: np.random.Generator, n_components: int) -> System:
    """A random call graph with ``n_components`` components, not yet capacity-planned."""
    n_db = max(1, round(n_components * rng.uniform(0.12, 0.2)))
    n_cache = max(1, round(n_components * rng.uniform(0.06, 0.12)))
    has_batch = n_components >= 12 and rng.random() < 0.4
    n_services = n_components - n_db - n_cache - int(has_batch)
    n_entries = 1 if n_services < 14 or rng.random() < 0.6 else 2
    suffix = str(rng.choice(_SUFFIXES))
    entry_names = [str(x) for x in rng.choice(_ENTRY_NAMES, size=n_entries, replace=False)]
    base = [str(x) for x in rng.permutation(_SERVICE_NAMES)]
    while len(base) < n_services - n_entries:
        base.append(f"{base[len(base) % len(_SERVICE_NAMES)]}-v{len(base) // len(_SERVICE_NAMES) + 1}")
    names = entry_names + [name + suffix for name in base[: n_services - n_entries]]
    components = [Component(name=name, kind=ServiceKind.SERVICE) for name in names]
    for c in components:
        c.runtime = str(rng.choice(list(_RUNTIMES), p=[share for _, share in _RUNTIMES.values()]))
    edges: list[Edge] = []
    # Tiers: entries at 0, the rest spread over 1..depth; each calls only deeper tiers (a DAG).
    depth = int(rng.integers(2, 5))
    tier = [0] * n_entries + sorted(int(t) for t in rng.integers(1, depth + 1, size=n_services - n_entries))
    for i in range(n_entries, n_services):
        upper = [j for j in range(n_services) if tier[j] < tier[i]]
        for caller in _pick(rng, upper, 1 + int(rng.random() < 0.35)):
            edges.append(_service_edge(rng, caller, i))
    for i in range(n_services):
        deeper = [j for j in range(n_services) if tier[j] > tier[i] and not _has(edges, i, j)]
        if deeper and rng.random() < 0.3:
            for callee in _pick(rng, deeper, 1):
                edges.append(_service_edge(rng, i, callee))
    if has_batch:
        components.append(Component(name=str(rng.choice(_BATCH_NAMES)), kind=ServiceKind.SERVICE, runtime="batch"))
    # Databases: owned by services of the deeper tiers, sometimes shared with a second one.
    owners_pool = [i for i in range(n_entries, n_services)] or list(range(n_services))
    weights = np.array([1.0 + tier[i] for i in owners_pool])
    db_owner: list[int] = []
    for _ in range(n_db):
        owner = int(rng.choice(owners_pool, p=weights / weights.sum()))
        engine = "postgres" if rng.random() < 0.6 else "mysql"
        style = rng.integers(3)
        stem = components[owner].name.removesuffix(suffix) if suffix else components[owner].name
        name = (f"{stem}-db", f"{stem}-{engine}", f"{stem}db")[style]
        name = _unique(name, components)
        components.append(Component(name=name, kind=ServiceKind.DATABASE, engine=engine, runtime="db"))
        db_index = len(components) - 1
        db_owner.append(owner)
        edges.append(_db_edge(rng, owner, db_index))
        others = [i for i in owners_pool if i != owner]
        if others and rng.random() < 0.3:
            edges.append(_db_edge(rng, int(rng.choice(others)), db_index))
    if has_batch:
        batch = n_services
        db_index = n_services + 1 + int(rng.integers(n_db))
        edges.append(_db_edge(rng, batch, db_index, batch=True))
    # Caches: the first always fronts a database (cache-aside); others front one or hold sessions.
    first_db = n_services + int(has_batch)
    for k in range(n_cache):
        engine = "redis" if rng.random() < 0.8 else "memcached"
        fronts = k == 0 or rng.random() < 0.7
        db_index = first_db + int(rng.integers(n_db))
        owner_edge = next(e for e in edges if e.callee == db_index and e.caller == db_owner[db_index - first_db])
        fronts = fronts and owner_edge.cache_edge < 0
        if fronts:
            owner = db_owner[db_index - first_db]
            stem = components[db_index].name.split("-")[0]
        else:
            db_index = -1
            owner = int(rng.choice(range(n_entries))) if rng.random() < 0.5 else int(rng.choice(owners_pool))
            stem = "session"
        name = _unique((f"{stem}-{engine}", f"{stem}-cache", f"{engine}-{stem}")[int(rng.integers(3))], components)
        components.append(Component(name=name, kind=ServiceKind.CACHE, engine=engine, runtime="cache"))
        cache_index = len(components) - 1
        components[cache_index].backing_db = db_index
        edges.append(_cache_edge(rng, owner, cache_index))
        if db_index >= 0:
            for e, edge in enumerate(edges):
                if edge.caller == owner and edge.callee == db_index:
                    # Cached reads no longer go straight to the database: only writes and misses.
                    # What teams cache is what is expensive to read (joins, aggregations).
                    edge.cache_edge = len(edges) - 1
                    edge.p = max(edge.write_share, 0.1)
                    heavier = float(rng.uniform(3.0, 8.0))
                    edge.cpu_time *= heavier
                    edge.io_time *= heavier
                    edges[e] = edge
    _tune_fan_out(rng, components, edges, n_entries)
    system = System(components=components, edges=edges, entries=list(range(n_entries)))
    system.order = _topological(len(components), edges)
    for i, component in enumerate(components):
        _draw_attributes(rng, component, entry=i < n_entries)
    return system


def _tune_fan_out(rng: np.random.Generator, components: list[Component], edges: list[Edge], n_entries: int) -> None:
    """A request touches a few of the services its caller knows, not all of them: a caller with
    many service edges calls each with a probability that makes 1.5-3.5 calls per request; entries
    (gateways, BFFs) mostly fan out in parallel."""
    for caller in range(len(components)):
        out = [e for e in edges if e.caller == caller and components[e.callee].kind == ServiceKind.SERVICE]
        expected = sum(e.p * e.calls for e in out)
        wanted = float(rng.uniform(1.5, 3.5))
        if expected > wanted:
            for e in out:
                e.p = max(e.p * wanted / expected, 0.05)
        if caller < n_entries:
            for e in out:
                e.parallel = bool(rng.random() < 0.7)


def _draw_attributes(rng: np.random.Generator, c: Component, *, entry: bool) -> None:
    """What a component does per request and what it holds, before capacity is planned."""
    if c.kind == ServiceKind.DATABASE:
        c.cv = float(rng.uniform(0.8, 1.6))
        c.mem_limit_mb = float(rng.choice([4096, 8192, 16384, 32768]))
        c.mem_base_mb = c.mem_limit_mb * rng.uniform(0.6, 0.85)  # shared buffers, warmed up
        c.disk_gb, c.disk_used = float(rng.choice([100, 250, 500, 1000])), float(rng.uniform(0.35, 0.75))
        c.write_kb = float(rng.uniform(2, 12))
        c.queue_seconds = 60.0
    elif c.kind == ServiceKind.CACHE:
        c.cpu_time, c.io_time, c.cv = _REDIS_CPU_PER_OP, 0.0, 0.6
        c.maxmemory_mb = float(rng.choice([512, 1024, 2048, 4096]))
        c.mem_limit_mb, c.mem_base_mb = c.maxmemory_mb * 1.25, c.maxmemory_mb * rng.uniform(0.55, 0.97)
        c.disk_gb, c.disk_used, c.write_kb = 20.0, float(rng.uniform(0.1, 0.4)), 0.0
        c.queue_seconds = 5.0
        c.hit_ratio = float(rng.uniform(0.8, 0.97))
    else:
        c.cpu_time = float(rng.lognormal(np.log(0.004), 0.7))
        c.io_time = float(rng.lognormal(np.log(0.002), 1.0))
        c.cv = float(rng.uniform(0.6, 1.5))
        c.mem_limit_mb = float(rng.choice([512, 1024, 2048]))
        c.mem_base_mb = c.mem_limit_mb * rng.uniform(0.25, 0.45)
        c.alloc_kb = float(rng.lognormal(np.log(60), 0.6))
        c.disk_gb, c.disk_used = float(rng.choice([10, 20, 50])), float(rng.uniform(0.2, 0.6))
        c.write_kb = float(rng.uniform(0.2, 2.0))
        c.queue_seconds = float(rng.uniform(5, 30))
        if entry:
            c.entry_rate = float(rng.lognormal(np.log(250), 0.7))


def _service_edge(rng: np.random.Generator, caller: int, callee: int) -> Edge:
    return Edge(
        caller=caller,
        callee=callee,
        p=float(rng.choice([1.0, 1.0, rng.uniform(0.2, 0.9)])),
        calls=int(rng.choice([1, 1, 1, 1, 1, 1, 2, 3])),
        parallel=bool(rng.random() < 0.3),
        timeout=float(rng.choice([0.5, 1.0, 2.0, 3.0, 5.0, 10.0], p=[0.1, 0.25, 0.25, 0.15, 0.15, 0.1])),
        retries=int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2])),
        cpu_time=float(rng.lognormal(np.log(0.004), 0.7)),
        io_time=float(rng.lognormal(np.log(0.002), 1.0)),
        write_share=float(rng.uniform(0.0, 0.4)),
    )


_TABLES = ("orders", "accounts", "items", "payments", "events", "sessions", "users", "entries", "stock", "invoices")


def _db_edge(rng: np.random.Generator, caller: int, db: int, *, batch: bool = False) -> Edge:
    table = str(rng.choice(_TABLES))
    write_share = float(rng.uniform(0.05, 0.5))
    query = (
        f"SELECT * FROM {table} WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 50"
        if rng.random() < 0.5
        else f"SELECT id, status, amount FROM {table} WHERE account_id = $1 AND status = $2"
    )
    return Edge(
        caller=caller,
        callee=db,
        p=1.0,
        calls=int(rng.integers(1, 5)),
        parallel=False,
        timeout=float(rng.choice([2.0, 5.0, 10.0, 30.0])),
        retries=0,
        # A batch job's aggregation scans much more than an OLTP lookup.
        cpu_time=float(rng.lognormal(np.log(0.08 if batch else 0.0012), 0.6)),
        io_time=float(rng.lognormal(np.log(0.05 if batch else 0.0015), 0.8)),
        write_share=write_share,
        pool=int(rng.choice([5, 10, 10, 20, 30])),  # per replica; multiplied when replicas are known
        pool_timeout=float(rng.choice([0.25, 1.0, 2.0, 5.0, 30.0], p=[0.1, 0.2, 0.25, 0.25, 0.2])),
        query=query,
    )


def _cache_edge(rng: np.random.Generator, caller: int, cache: int) -> Edge:
    return Edge(
        caller=caller,
        callee=cache,
        p=float(rng.uniform(0.7, 1.0)),
        calls=int(rng.integers(1, 5)),
        parallel=False,
        timeout=float(rng.choice([0.05, 0.1, 0.25, 0.5])),
        retries=int(rng.choice([0, 1])),
        cpu_time=_REDIS_CPU_PER_OP,
        io_time=0.0,
        write_share=0.1,
        fallback=bool(rng.random() < 0.75),  # most clients read through on cache errors, some fail
    )


def _pick(rng: np.random.Generator, items: list[int], k: int) -> list[int]:
    if not items:
        return []
    return [int(x) for x in rng.choice(items, size=min(k, len(items)), replace=False)]


def _has(edges: list[Edge], caller: int, callee: int) -> bool:
    return any(e.caller == caller and e.callee == callee for e in edges)


def _unique(name: str, components: list[Component]) -> str:
    taken = {c.name for c in components}
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _topological(n: int, edges: list[Edge]) -> list[int]:
    indegree = [0] * n
    for edge in edges:
        indegree[edge.callee] += 1
    ready = [i for i in range(n) if indegree[i] == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for edge in edges:
            if edge.caller == i:
                indegree[edge.callee] -= 1
                if indegree[edge.callee] == 0:
                    ready.append(edge.callee)
    if len(order) != n:  # cannot happen: edges only go to deeper tiers, databases and caches
        raise AssertionError("the drawn call graph has a cycle")
    return order
