"""Capacity planning: size a drawn system for its daily peak, as its operators would have.

CPU: replicas of a service so that its CPU at the peak sits at 25-60 % of its limit; database cores
(an even count) for 30-60 %; disks for 15-35 % of their I/O parallelism. Thread pools from
Little's law (peak concurrency = rate x holding time) with 2-5x head-room; client timeouts at
least 3-8x the callee's normal p99. Connection pools keep
their default size per replica unless the peak needs more (in use at 30-60 %), and a database's
``max_connections`` stays above the sum of its clients' pools (or at the engine's default).
"""

from __future__ import annotations

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_dynamics import calls_per_request_all, simulate
from models.generators._queueing_math import UNLIMITED
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import System

#: Client timeouts people configure (s).
_TIMEOUTS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
#: Worker threads per replica of each runtime (Tomcat's default, gunicorn's sync workers).
_THREADS = {"jvm": 200, "python": 8}


def plan_capacity(rng: np.random.Generator, system: System) -> State:
    """Set cores, replicas, workers, pools, timeouts and ``max_connections`` of every component in
    place; the system at its peak (as planned: thread pools not yet a limit) is returned."""
    knobs = peak_knobs(system, 1)
    rates = _peak_rates(system, knobs)
    for i, c in enumerate(system.components):
        into = system.in_edges(i)
        cpu = c.entry_rate * c.cpu_time + sum(rates[e] * system.edges[e].cpu_time for e in into)
        if c.kind == ServiceKind.DATABASE:
            c.cores = float(max(2.0, 2 * np.ceil(cpu / rng.uniform(0.3, 0.6) / 2)))  # instance sizes
            io = sum(rates[e] * system.edges[e].io_time for e in into)
            c.io_parallel = float(max(8.0, io / rng.uniform(0.15, 0.35)))
        elif c.kind == ServiceKind.CACHE:
            c.cores, c.replicas = 1.0, 1  # Redis serves commands on one thread
        else:
            c.cores = float(rng.choice([0.5, 1.0, 2.0, 4.0]))
            low = 2 if i in system.entries else 1
            c.replicas = int(np.clip(np.ceil(cpu / (c.cores * rng.uniform(0.25, 0.6))), low, 60))
    for e, edge in enumerate(system.edges):
        if edge.pool:
            # A default per replica (HikariCP's 10, 20...), raised where the peak needs more.
            replicas = system.components[edge.caller].replicas
            hold = edge.cpu_time + edge.io_time + 0.002
            needed = rates[e] * hold / rng.uniform(0.3, 0.6)
            edge.pool = int(max(edge.pool * replicas, np.ceil(needed)))
    for d in system.kind_indices(ServiceKind.DATABASE):
        c = system.components[d]
        pools = sum(system.edges[e].pool for e in system.in_edges(d))
        default = 151 if c.engine == "mysql" else 100
        c.max_connections = int(max(default, np.ceil(pools * rng.uniform(1.15, 2.0) / 10) * 10))
    # Holding times with no worker limit say how many threads each service needs at the peak.
    limited = [i for i, c in enumerate(system.components) if c.runtime in _THREADS]
    for i in limited:
        system.components[i].workers = UNLIMITED
    system.cache.pop("layout", None)
    state = simulate(system, peak_knobs(system, 1), rounds=1)
    for i in limited:
        c = system.components[i]
        concurrency = float(state.busy[i, 0]) / c.replicas
        needed = int(np.ceil(concurrency / rng.uniform(0.2, 0.5)))
        c.workers = int(np.clip(needed, 4, 64)) if c.runtime == "python" else max(_THREADS[c.runtime], needed)
    system.cache.pop("layout", None)
    # Client timeouts sit well above what the callee normally takes (a few times its p99).
    for e, edge in enumerate(system.edges):
        sigma = np.sqrt(np.log1p(float(state.scv[edge.callee, 0])))
        p99 = float(state.edge_attempt[e, 0]) * np.exp(2.326 * sigma - sigma**2 / 2)
        floor = p99 * rng.uniform(3.0, 8.0)
        edge.timeout = max(edge.timeout, next((t for t in _TIMEOUTS if t >= floor), _TIMEOUTS[-1]))
    return state


def peak_knobs(system: System, steps: int) -> Knobs:
    """Baseline knobs with every entry at its daily peak and caches at their normal hit ratio."""
    knobs = Knobs.baseline(system, steps)
    for i, c in enumerate(system.components):
        knobs.ext[i] = c.entry_rate
    return knobs


def _peak_rates(system: System, knobs: Knobs) -> np.ndarray:
    """Calls/s along each edge at the peak, with nothing failing."""
    arrivals = np.zeros(len(system.components))
    rates = np.zeros(len(system.edges))
    per_request = calls_per_request_all(system, knobs, np.zeros((len(system.edges), 1)))
    for j in system.order:
        total = float(knobs.ext[j, 0])
        for e in system.in_edges(j):
            caller = system.edges[e].caller
            rates[e] = arrivals[caller] * float(per_request[e, 0])
            total += rates[e]
        arrivals[j] = total
    return rates
