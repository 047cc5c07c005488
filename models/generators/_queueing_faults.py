"""Faults, each injected as the mechanism that produces it; consequences come from the queues.

Nothing here writes a symptom directly (no "latency += x at the root cause's callers"): a fault
changes a capacity, a service time, a hit ratio, a connection limit or a component's liveness, and
``_queueing_dynamics`` works out what callers, pools and retries make of it.

=================== =============================================================================
``cpu``              a runaway thread or a spinning sidecar burns cores in the pod (counted in its
                     CPU): what is left for requests drops to 0.7-1.3x of demand, utilisation
                     climbs, the CFS quota throttles, queueing explodes near saturation.
``memory``           a leak: every pod's live heap grows, GC overhead climbs as ``o / (1 - o)``,
                     pods are OOM-killed at their limit and restart (capacity and error blips).
``disk``             ``fill``: something writes the disk full, then writes fail (ENOSPC); or
                     ``slow``: I/O latency multiplies (a degraded volume, burst credits gone).
``latency``          0.2-2 s added per request: a slow external call or an in-process lock, on all
                     endpoints or on one; threads are held longer, callers time out and retry.
``network_errors``   packet loss on the component's interface: retransmits (RTO >= 200 ms, SYN
                     1 s), resets seen as connection errors by callers, timeouts in the tail.
``db_slow_query``    a query plan regression: one query class costs 8-40x CPU and I/O.
``db_pool_exhausted`` ``leak``: sessions left idle in transaction fill ``max_connections`` and
                     pools lose the slots they need; ``lock``: a long transaction holds a lock and
                     sessions queue behind it, each holding a pooled connection.
``dependency_down``  the component stops answering: it refuses connections (crashed, crash-looping)
                     or hangs (deadlock, partitioned node: callers wait for their timeouts).
``cache``            flushed or restarted (hit ratio falls to 0 and recovers as keys come back), or
                     undersized (``maxmemory`` cut / working set grew: evictions, hit ratio falls).
``bad_deploy``       a rolling update to a version with a bug (500s), a CPU regression, an N+1
                     query or a wrong configuration (connection errors to one dependency).
=================== =============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.domain._types import FaultType, ServiceKind
from models.generators._queueing_events import Events, gc_overhead, leak_timeline, rollout
from models.generators._queueing_state import WRITE_SHARE, Knobs, State
from models.generators._queueing_system import System

#: Which kinds of component each fault can hit. Databases and caches are not deployed by the
#: teams whose services call them, and a query plan or a connection limit belongs to a database.
FAULT_TARGETS: dict[FaultType, tuple[ServiceKind, ...]] = {
    FaultType.CPU: (ServiceKind.SERVICE,),
    FaultType.MEMORY: (ServiceKind.SERVICE,),
    FaultType.DISK: (ServiceKind.SERVICE, ServiceKind.DATABASE),
    FaultType.LATENCY: (ServiceKind.SERVICE,),
    FaultType.NETWORK_ERRORS: (ServiceKind.SERVICE,),
    FaultType.DB_SLOW_QUERY: (ServiceKind.DATABASE,),
    FaultType.DB_POOL_EXHAUSTED: (ServiceKind.DATABASE,),
    FaultType.DEPENDENCY_DOWN: (ServiceKind.SERVICE, ServiceKind.DATABASE, ServiceKind.CACHE),
    FaultType.CACHE: (ServiceKind.CACHE,),
    FaultType.BAD_DEPLOY: (ServiceKind.SERVICE,),
}
#: Faults whose mechanism can come and go (a throttled quota, a flapping link, a crash loop).
_CAN_FLAP = {FaultType.CPU, FaultType.LATENCY, FaultType.NETWORK_ERRORS, FaultType.DB_SLOW_QUERY}


@dataclass(frozen=True)
class _Site:
    """Where and how strongly a fault strikes, and what it may turn."""

    rng: np.random.Generator
    system: System
    knobs: Knobs
    events: Events
    peak: State  # the system at its daily peak, fault-free
    target: int
    onset: int
    on: np.ndarray  # per second: whether the mechanism is active (flapping faults come and go)
    severity: float
    scale: float  # load at the onset relative to the peak


@dataclass(frozen=True)
class Injection:
    fault: FaultType
    target: int
    onset: int
    variant: str
    flapping: bool


def candidates(system: System, fault: FaultType) -> list[int]:
    """Components the fault can hit (batch jobs are left out: nobody pages for them; session
    stores are left out of cache faults: they have no database behind them to send misses to)."""
    kinds = FAULT_TARGETS[fault]
    found = [i for i, c in enumerate(system.components) if c.kind in kinds and not c.is_batch]
    if fault == FaultType.CACHE:  # misses must have somewhere to go: caches in front of a database
        found = [i for i in found if system.components[i].backing_db >= 0]
    return found


def inject(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    events: Events,
    peak: State,
    fault: FaultType,
    target: int,
    onset: int,
    *,
    severity: float,
    p_flapping: float,
) -> Injection:
    """Turn ``knobs`` so that ``fault`` happens at ``target`` from second ``onset`` on."""
    steps = knobs.ext.shape[1]
    flapping = fault in _CAN_FLAP and rng.random() < p_flapping
    on = flap_mask(rng, steps, onset) if flapping else (np.arange(steps) >= onset).astype(float)
    # Load at the onset relative to the peak the system was planned for.
    scale = float(
        knobs.ext[system.entries].sum(axis=0)[onset] / max(sum(c.entry_rate for c in system.components), 1e-9)
    )
    variant = _INJECTORS[fault](_Site(rng, system, knobs, events, peak, target, onset, on, severity, scale))
    return Injection(fault, target, onset, variant, flapping)


def flap_mask(rng: np.random.Generator, steps: int, onset: int) -> np.ndarray:
    """On for 20-90 s, off for 20-90 s, from the onset on."""
    mask = np.zeros(steps)
    t, on = onset, True
    while t < steps:
        length = int(rng.uniform(20, 90))
        if on:
            mask[t : t + length] = 1.0
        t, on = t + length, not on
    return mask


def _ramp(steps: int, onset: int, seconds: float) -> np.ndarray:
    return np.clip((np.arange(steps) - onset) / max(seconds, 1.0), 0.0, 1.0)


def _cpu(site: _Site) -> str:
    rng, system, knobs, peak, i, onset, on, severity, scale = (
        site.rng,
        site.system,
        site.knobs,
        site.peak,
        site.target,
        site.onset,
        site.on,
        site.severity,
        site.scale,
    )
    c = system.components[i]
    limit = c.cores * c.replicas
    demand = float(peak.cpu_used[i, 0]) * scale
    overload = float(np.clip(rng.uniform(0.8, 1.15) * severity**0.5, 0.7, 2.0))  # demand / what is left
    shape = on * _ramp(knobs.ext.shape[1], onset, rng.uniform(5, 30))
    # Counted in the pod's CPU either way; the CFS quota throttles once app and hog reach it.
    hog = max(limit - demand / overload, 0.2 * limit)
    knobs.hog[i] += hog * shape
    return "runaway thread" if rng.random() < 0.6 else "spinning sidecar"


def _memory(site: _Site) -> str:
    rng, system, knobs, events, i, onset, severity = (
        site.rng,
        site.system,
        site.knobs,
        site.events,
        site.target,
        site.onset,
        site.severity,
    )
    c = system.components[i]
    steps = knobs.ext.shape[1]
    first_kill = float(rng.uniform(60, max(90.0, 0.8 * (steps - onset)))) / severity
    live, kills, down = leak_timeline(rng, c, onset, steps, first_kill)
    events.leak[i] = live
    frac, pause, burnt = gc_overhead(c, live)
    knobs.gc_frac[i] = np.maximum(knobs.gc_frac[i], frac)
    knobs.gc_pause[i] = np.maximum(knobs.gc_pause[i], pause)
    knobs.hog[i] += burnt * c.cores * c.replicas
    knobs.up[i] *= 1.0 - down.mean(axis=0)
    events.notes[f"pod_down:{i}"] = down
    pods = live.shape[0]
    heap_bound = c.runtime in ("jvm", "node")
    for _, second in kills:
        # A bounded heap throws (OutOfMemoryError, "heap out of memory") and the process is
        # restarted; an unbounded one is killed by the kernel at the container limit.
        events.restarts.append((i, second, "Error" if heap_bound else "OOMKilled"))
        # Callers see the dying pod's connections reset: requests in flight on it and those sent
        # before the endpoints are updated fail.
        for e in system.in_edges(i):
            knobs.edge_err[e, second : second + 2] = np.maximum(knobs.edge_err[e, second : second + 2], 0.6 / pods)
        if heap_bound:  # allocations fail for the last seconds before the process gives up
            knobs.err[i, max(second - 10, 0) : second] = np.maximum(
                knobs.err[i, max(second - 10, 0) : second], 0.4 / pods
            )
    if heap_bound:
        events.exception[i] = (
            "java.lang.OutOfMemoryError: Java heap space"
            if c.runtime == "jvm"
            else "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
        )
    return "leak"


def _disk(site: _Site) -> str:
    rng, system, knobs, events, i, onset, severity = (
        site.rng,
        site.system,
        site.knobs,
        site.events,
        site.target,
        site.onset,
        site.severity,
    )
    c = system.components[i]
    steps = knobs.ext.shape[1]
    if rng.random() < 0.6:
        full_after = float(rng.uniform(60, 240)) / severity  # a runaway log, a stuck rotation
        fill = np.clip((np.arange(steps) - onset) / full_after, 0.0, 1.0) * (1.0 - c.disk_used)
        events.disk_fill[i] = fill
        full = (c.disk_used + fill) >= 0.999
        knobs.write_err[i] = np.maximum(knobs.write_err[i], full.astype(float))
        if c.kind == ServiceKind.DATABASE and c.engine == "postgres" and rng.random() < 0.3:
            # WAL cannot be written: PostgreSQL PANICs and stops accepting connections.
            knobs.up[i] *= ~full
            events.crashed[i] = "refused"
        return "fill"
    factor = float(rng.uniform(5, 30)) * severity
    slow = 1.0 + (factor - 1.0) * _ramp(steps, onset, rng.uniform(5, 60))
    events.io_slow[i] = slow
    if c.kind == ServiceKind.DATABASE:
        knobs.io_mult[i] *= slow
    else:
        # Writes (logs, spool files) wait for fsync on the slow volume: a few ms become 20-300 ms.
        stall = float(np.exp(rng.uniform(np.log(0.02), np.log(0.3))))
        knobs.io_add[i] += WRITE_SHARE * stall * (slow - 1.0) / (factor - 1.0)
    return "slow"


def _latency(site: _Site) -> str:
    rng, system, knobs, i, on, severity = site.rng, site.system, site.knobs, site.target, site.on, site.severity
    # A slow dependency outside the estate, a lock, a synchronous log flush: 200 ms to 2 s.
    added = float(np.clip(np.exp(rng.uniform(np.log(0.2), np.log(2.0))) * severity, 0.1, 5.0))
    into = [e for e in system.in_edges(i)]
    if into and rng.random() < 0.4:
        e = int(rng.choice(into))
        knobs.edge_wait[e] += added * on
        return "endpoint"
    knobs.io_add[i] += added * on
    return "all"


def _network(site: _Site) -> str:
    rng, knobs, i, on, severity = site.rng, site.knobs, site.target, site.on, site.severity
    loss = float(np.clip(rng.uniform(0.02, 0.12) * severity, 0.01, 0.3))
    knobs.loss[i] = np.maximum(knobs.loss[i], loss * on)
    return "loss"


def _slow_query(site: _Site) -> str:
    rng, system, knobs, events, peak, d, on, severity = (
        site.rng,
        site.system,
        site.knobs,
        site.events,
        site.peak,
        site.target,
        site.on,
        site.severity,
    )
    into = [e for e in system.in_edges(d) if not system.components[system.edges[e].caller].is_batch]
    weights = np.array([peak.edge_rate[e, 0] for e in into]) + 1e-6
    e = int(rng.choice(into, p=weights / weights.sum()))
    factor = float(np.exp(rng.uniform(np.log(3.0), np.log(30.0)))) * severity
    knobs.edge_mult[e] *= 1.0 + (factor - 1.0) * on
    events.slow_class[d] = e
    return "plan"


def _pool_exhausted(site: _Site) -> str:
    rng, system, knobs, events, d, onset, severity = (
        site.rng,
        site.system,
        site.knobs,
        site.events,
        site.target,
        site.onset,
        site.severity,
    )
    c = system.components[d]
    steps = knobs.ext.shape[1]
    pools = sum(system.edges[e].pool for e in system.in_edges(d))
    if rng.random() < 0.5:
        # Free slots go first (nothing visible but the count), then the pools lose theirs.
        headroom = max(c.max_connections - 3 - pools, 0)
        starve_after = float(rng.uniform(30, max(45.0, 0.5 * (steps - onset)))) / severity
        rate = (headroom + pools * rng.uniform(0.5, 0.9)) / starve_after
        leaked = np.clip((np.arange(steps) - onset) * rate, 0.0, c.max_connections - 3)
        events.leaked_sessions[d] = leaked
        knobs.db_slots[d] = np.maximum(c.max_connections - 3 - leaked, 0.0)
        return "leak"
    into = [e for e in system.in_edges(d) if system.edges[e].pool]
    chosen = [int(x) for x in rng.choice(into, size=min(len(into), int(rng.integers(1, 3))), replace=False)]
    wait = float(rng.uniform(3, 30)) * severity
    for e in chosen:
        knobs.edge_wait[e] += wait * _ramp(steps, onset, rng.uniform(5, 30))
    events.lock_holder[d] = (
        onset,
        f"UPDATE {system.edges[chosen[0]].query.split(' FROM ')[1].split()[0]} SET status = $1 WHERE ...",
    )
    return "lock"


def _down(site: _Site) -> str:
    rng, system, knobs, events, i, onset = site.rng, site.system, site.knobs, site.events, site.target, site.onset
    c = system.components[i]
    steps = knobs.ext.shape[1]
    hangs = rng.random() < (0.35 if c.kind == ServiceKind.SERVICE else 0.2)
    off = np.arange(steps) >= onset
    mode = "hang" if hangs else "refused"
    if not hangs and c.kind == ServiceKind.SERVICE and rng.random() < 0.4:
        # CrashLoopBackOff: restarted after 10, 20, 40... s, ready a few seconds later, crashes again.
        t, backoff = onset, 10.0
        while t < steps:
            restart = int(t + backoff)
            ready = restart + int(rng.uniform(3, 10))
            crash = ready + int(rng.uniform(3, 8))
            if restart < steps:
                events.restarts.append((i, restart, "Error"))
            off[ready:crash] = False
            t, backoff = crash, min(backoff * 2, 300.0)
        mode = "crashloop"
    knobs.up[i] *= ~off
    knobs.down_refuses[i] = not hangs
    events.crashed[i] = mode
    return mode


def _cache(site: _Site) -> str:
    rng, system, knobs, events, i, onset, severity = (
        site.rng,
        site.system,
        site.knobs,
        site.events,
        site.target,
        site.onset,
        site.severity,
    )
    c = system.components[i]
    steps = knobs.ext.shape[1]
    since = np.maximum(np.arange(steps) - onset, 0)
    if rng.random() < 0.5:
        # Keys come back as misses repopulate them: the hit ratio recovers over minutes.
        warm = float(rng.uniform(120, 900)) * severity
        knobs.hit[i] = np.where(np.arange(steps) >= onset, c.hit_ratio * (1 - np.exp(-since / warm)), knobs.hit[i])
        events.cache_reset[i] = onset
        if rng.random() < 0.5:
            knobs.up[i, onset : onset + int(rng.uniform(2, 6))] = 0.0  # restarting: connections refused
            events.cache_restarted.add(i)
            return "restart"
        return "flush"
    kept = float(np.clip(rng.uniform(0.3, 0.7) / severity, 0.05, 0.9))
    shape = _ramp(steps, onset, rng.uniform(20, 60))
    knobs.hit[i] = c.hit_ratio * (1.0 - (1.0 - kept) * shape)
    events.notes[f"undersized:{i}"] = kept
    return "undersized"


def _bad_deploy(site: _Site) -> str:
    rng, system, knobs, events, i, onset, severity = (
        site.rng,
        site.system,
        site.knobs,
        site.events,
        site.target,
        site.onset,
        site.severity,
    )
    c = system.components[i]
    steps = knobs.ext.shape[1]
    new, _ = deploy(rng, system, knobs, events, i, onset)
    db_edges = [e for e in system.out_edges(i) if system.edges[e].pool]
    out = system.out_edges(i)
    draw = rng.random()
    if draw < 0.4:
        knobs.err[i] = np.maximum(knobs.err[i], new * float(np.clip(rng.uniform(0.05, 0.5) * severity, 0.02, 1.0)))
        events.exception[i] = str(rng.choice(_EXCEPTIONS[c.runtime if c.runtime in _EXCEPTIONS else "go"]))
        return "bug"
    if draw < 0.6 and db_edges:
        e = int(rng.choice(db_edges))
        knobs.edge_calls[e] *= 1.0 + new * (rng.uniform(3, 15) * severity - 1.0)
        return "n_plus_one"
    if draw < 0.75 and out:
        e = int(rng.choice(out))
        knobs.edge_err[e] = np.maximum(
            knobs.edge_err[e], new * float(np.clip(rng.uniform(0.3, 1.0) * severity, 0.1, 1.0))
        )
        events.notes[f"misconfigured:{i}"] = system.edges[e].callee
        return "config"
    knobs.cpu_mult[i] *= 1.0 + new * (rng.uniform(1.5, 4.0) * severity - 1.0)
    del steps
    return "regression"


def deploy(
    rng: np.random.Generator, system: System, knobs: Knobs, events: Events, i: int, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """A rolling update of ``i`` from ``start``: the deploy event, fresh pods, JIT warm-up.

    Returns the share of new pods over time and when each modelled pod was replaced.
    """
    c = system.components[i]
    steps = knobs.ext.shape[1]
    new, replaced = rollout(rng, c, start, steps)
    events.deploys.append((i, start, _revision(rng)))
    events.fresh_pods[i] = replaced
    if c.runtime == "jvm":
        # Fresh JVMs interpret before the JIT compiles the hot paths: slower for a minute or two.
        warm = np.zeros(steps)
        for second in replaced:
            since = np.arange(steps) - second
            warm += np.where(since >= 0, np.exp(-np.maximum(since, 0) / 60.0), 0.0) / len(replaced)
        knobs.cpu_mult[i] *= 1.0 + 0.8 * warm
    return new, replaced


def _revision(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=7))


_EXCEPTIONS = {
    "jvm": (
        'java.lang.NullPointerException: Cannot invoke "String.length()" because "currency" is null',
        "java.lang.IllegalStateException: Unknown discount type LOYALTY_V2",
        "com.fasterxml.jackson.databind.exc.MismatchedInputException: Cannot deserialize value of type `long`",
    ),
    "python": ("KeyError: 'currency'", "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'"),
    "go": (
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "json: cannot unmarshal string into Go struct field Order.total of type int64",
    ),
    "node": ("TypeError: Cannot read properties of undefined (reading 'price')", "RangeError: Invalid time value"),
}

_INJECTORS = {
    FaultType.CPU: _cpu,
    FaultType.MEMORY: _memory,
    FaultType.DISK: _disk,
    FaultType.LATENCY: _latency,
    FaultType.NETWORK_ERRORS: _network,
    FaultType.DB_SLOW_QUERY: _slow_query,
    FaultType.DB_POOL_EXHAUSTED: _pool_exhausted,
    FaultType.DEPENDENCY_DOWN: _down,
    FaultType.CACHE: _cache,
    FaultType.BAD_DEPLOY: _bad_deploy,
}
