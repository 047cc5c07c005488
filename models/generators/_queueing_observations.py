"""What the executors would have observed shortly after the alert, for every component.

Every database gets a snapshot (sessions per client application, long-running statements, lock
waits), every cache its ``INFO`` counters (since the server started: days of history, unless it
restarted), every service a health probe and a pod status, and the deploy history covers the
last day. The faulty component is only different because of what its fault did: a database that
is down yields no snapshot (the query could not connect), a crashed service answers no probe.
"""

from __future__ import annotations

import numpy as np

from models.domain._observations import (
    CacheStats,
    ClientSessions,
    DbSnapshot,
    DeployEvent,
    HealthCheck,
    Observations,
    PodStatus,
    TopQuery,
)
from models.domain._types import ServiceKind
from models.generators._queueing_events import Events
from models.generators._queueing_exporters import Measured
from models.generators._queueing_math import lognormal_tail
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import System

#: Seconds a statement runs before ``DbSnapshot`` counts it as long-running (the parser's rule).
_LONG = 5.0


def observe(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    st: State,
    m: Measured,
    events: Events,
    *,
    second: int,
    start: int,
    in_cluster: bool,
) -> Observations:
    """Observations collected at ``second`` of the window (epoch ``start + second``)."""
    t = min(second, st.arrivals.shape[1] - 1)
    db = [_snapshot(rng, system, knobs, st, m, events, d, t) for d in system.kind_indices(ServiceKind.DATABASE)]
    cache = [_cache_stats(rng, system, knobs, st, events, k, t) for k in system.kind_indices(ServiceKind.CACHE)]
    health = [
        _probe(rng, system, knobs, st, i, t) for i, c in enumerate(system.components) if c.kind == ServiceKind.SERVICE
    ]
    deploys = [
        DeployEvent(service=system.components[i].name, time=float(start + s), revision=r)
        for i, s, r in events.deploys
        if s <= t
    ]
    for c in system.components:
        if c.kind == ServiceKind.SERVICE and rng.random() < 0.15:  # routine deploys earlier that day
            deploys.append(
                DeployEvent(service=c.name, time=float(start - rng.uniform(1800, 86400)), revision=_hex(rng))
            )
    kinds = (ServiceKind.SERVICE, ServiceKind.DATABASE, ServiceKind.CACHE) if in_cluster else (ServiceKind.SERVICE,)
    pods = [_pod(system, knobs, events, i, t) for i, c in enumerate(system.components) if c.kind in kinds]
    return Observations(
        db=[s for s in db if s is not None],
        health=health,
        cache=[s for s in cache if s is not None],
        deploys=sorted(deploys, key=lambda d: d.time),
        pods=pods,
    )


def _snapshot(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, m: Measured, events: Events, d: int, t: int
) -> DbSnapshot | None:
    c = system.components[d]
    if knobs.up[d, t] <= 0:
        return None  # the collection query could not connect
    clients: list[ClientSessions] = []
    tops: list[TopQuery] = []
    waiting = 0
    locked = events.lock_holder.get(d)
    for e in system.in_edges(d):
        edge = system.edges[e]
        caller = system.components[edge.caller].name
        active = (
            round(st.pool_in_use[e, t]) if edge.pool else int(rng.poisson(st.edge_rate[e, t] * st.edge_attempt[e, t]))
        )
        long_share = float(lognormal_tail(st.edge_attempt[e, t], st.scv[d, t], _LONG))
        long_running = int(rng.binomial(active, min(long_share, 1.0)))
        if locked is not None and knobs.edge_wait[e, t] > 0:
            waiting += active
        connections = round(st.pool_size[e, t]) if edge.pool else active
        clients.append(
            ClientSessions(
                client=caller, connections=max(connections, active), active=active, long_running=long_running
            )
        )
        for _ in range(min(active, 5)):
            seconds = float(rng.exponential(st.edge_attempt[e, t]))
            if long_running:
                seconds = max(seconds, _LONG + rng.exponential(st.edge_attempt[e, t]))
            state = "active" if not (locked and knobs.edge_wait[e, t] > 0) else "active (waiting: Lock)"
            tops.append(
                TopQuery(id=str(int(rng.integers(1000, 60000))), seconds=seconds, state=state, query=edge.query)
            )
    leaked = int(events.leaked_sessions.get(d, np.zeros(t + 1))[t])
    if leaked:
        clients.append(
            ClientSessions(client="reporting@10.4.7.12/app", connections=leaked, active=leaked, long_running=leaked)
        )
        for _ in range(min(leaked, 10)):
            pid = str(int(rng.integers(1000, 60000)))
            query = "SELECT * FROM accounts WHERE id = $1 FOR UPDATE"
            tops.append(
                TopQuery(id=pid, seconds=float(rng.uniform(30, t + 30)), state="idle in transaction", query=query)
            )
    if locked is not None:
        since, statement = locked
        tops.append(
            TopQuery(
                id=str(int(rng.integers(1000, 60000))),
                seconds=float(t - since + 5),
                state="idle in transaction",
                query=statement,
            )
        )
    tops.sort(key=lambda q: q.seconds, reverse=True)
    clients.sort(key=lambda client: (client.long_running, client.connections), reverse=True)
    return DbSnapshot(
        service=c.name,
        engine="mysql" if c.engine == "mysql" else "postgres",
        connections=int(m.connections[d, t]),
        max_connections=c.max_connections,
        active=sum(client.active for client in clients),
        long_running=sum(1 for q in tops if q.seconds > _LONG),
        longest_seconds=tops[0].seconds if tops else 0.0,
        waiting_on_locks=waiting,
        top_queries=tops[:50],
        clients=clients[:10],
    )


def _cache_stats(
    rng: np.random.Generator, system: System, knobs: Knobs, st: State, events: Events, k: int, t: int
) -> CacheStats | None:
    c = system.components[k]
    if knobs.up[k, t] <= 0:
        return None
    restarted = k in events.cache_restarted and events.cache_reset[k] <= t
    since = events.cache_reset[k] if restarted else 0
    reads = st.served[k, since : t + 1] * 0.9
    hits = float((reads * knobs.hit[k, since : t + 1]).sum())
    misses = float(reads.sum()) - hits
    history = 0.0 if restarted else float(rng.uniform(2, 40)) * 86400  # seconds of uptime before the window
    mean_reads = float(st.served[k, 0] * 0.9)
    hits += history * mean_reads * c.hit_ratio
    misses += history * mean_reads * (1 - c.hit_ratio)
    kept = events.notes.get(f"undersized:{k}")
    evicted = (misses * 0.05 if c.mem_base_mb / c.maxmemory_mb > 0.9 else 0.0) + (
        float(((1 - knobs.hit[k, : t + 1]) * st.served[k, : t + 1]).sum()) * 0.9 if kept is not None else 0.0
    )
    maxmemory = c.maxmemory_mb * (0.5 + 0.5 * float(kept) if isinstance(kept, float) else 1.0)
    used = min(c.mem_base_mb * (float(knobs.hit[k, t]) / max(c.hit_ratio, 1e-9)), maxmemory)
    clients = sum(system.components[system.edges[e].caller].replicas * 4 for e in system.in_edges(k))
    return CacheStats(
        service=c.name,
        evicted_keys=int(evicted),
        keyspace_hits=int(hits),
        keyspace_misses=int(misses),
        used_memory=int(used * 1024 * 1024),
        maxmemory=int(maxmemory * 1024 * 1024),
        connected_clients=int(clients),
        rejected_connections=0,
    )


def _probe(rng: np.random.Generator, system: System, knobs: Knobs, st: State, i: int, t: int) -> HealthCheck:
    c = system.components[i]
    if knobs.up[i, t] <= 0:
        if knobs.down_refuses[i]:
            return HealthCheck(service=c.name, ok=False, error="unreachable: connection refused")
        return HealthCheck(service=c.name, ok=False, error="timed_out: no response within 5s")
    # The probe waits in the same queue as requests; a rejecting server answers 503.
    latency = float(st.wait[i, t] + 0.001 + rng.exponential(0.002))
    if latency > 5.0:
        return HealthCheck(service=c.name, ok=False, error="timed_out: no response within 5s")
    if rng.random() < st.causes["rejected"][i, t]:
        return HealthCheck(service=c.name, status_code=503, ok=False, latency_ms=latency * 1000)
    return HealthCheck(service=c.name, status_code=200, ok=True, latency_ms=latency * 1000)


def _pod(system: System, knobs: Knobs, events: Events, i: int, t: int) -> PodStatus:
    c = system.components[i]
    restarts = [reason for comp, second, reason in events.restarts if comp == i and second <= t]
    before, old_reason = events.history.get(i, (0, None))
    reason = restarts[-1] if restarts else old_reason
    crash_looping = events.crashed.get(i) == "crashloop" and knobs.up[i, t] <= 0
    ready = bool(knobs.up[i, t] >= 1.0)
    return PodStatus(
        service=c.name,
        restarts=before + len(restarts),
        ready=ready,
        reason="CrashLoopBackOff" if crash_looping else reason,
    )


def _hex(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=7))
