"""Load and delay through the call graph, one second at a time, vectorised over the window.

Every component is a multi-server queue twice over: its CPU (``cores`` servers, processor sharing
stretched by Erlang C) and, for thread-per-request runtimes, its worker pool (``workers`` servers
held for the whole request, downstream calls included, so a slow dependency fills the caller's
threads). Waiting follows Allen-Cunneen while ``rho < 1`` and a bounded fluid backlog beyond
(see ``_queueing_math``). A database edge adds a connection pool, a queue of its own whose waiters
give up at the pool timeout. A caller's attempt along an edge is cut off at the edge's timeout
(the lognormal tail of the callee's response time), failed attempts are retried, and the retries are
offered load the callee has to serve.

Traffic runs top-down (callers before callees) and delay bottom-up (callees before callers); the
two meet in a fixed point reached by repeating both passes (``ROUNDS``): retries and failures of
one round shape the load of the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_layout import Groups, Layout, layout
from models.generators._queueing_math import (
    allen_cunneen,
    capped_backlog,
    erlang_c,
    lognormal_cut,
)
from models.generators._queueing_state import (
    CAUSES,
    NETWORK_RTT,
    PACKETS_PER_CALL,
    REFUSED_SECONDS,
    RTO_MIN,
    SYN_RTO,
    WRITE_SHARE,
    Knobs,
    State,
    block_mean,
)
from models.generators._queueing_system import System

ROUNDS = 3
#: Seconds per step of the coarse passes.
COARSE = 5


def simulate(system: System, knobs: Knobs, rounds: int = ROUNDS, coarse: int = COARSE) -> State:
    """The system's response to ``knobs``: the fixed point of traffic and delay.

    The first ``rounds - 1`` passes run on a grid ``coarse`` times coarser (cheap), their feedback
    (retries, pool and queue rejections, cache failures) damped between passes so that a
    bottleneck does not swing between overloaded and idle; the last pass runs every second.
    """
    state = simulate_if(system, knobs, lambda _state, _step: True, rounds, coarse)
    assert state is not None
    return state


def simulate_if(
    system: System,
    knobs: Knobs,
    worth_finishing: Callable[[State, int], bool],
    rounds: int = ROUNDS,
    coarse: int = COARSE,
) -> State | None:
    """``simulate``, stopping after the coarse passes (``None``) unless ``worth_finishing(state,
    coarse)`` says the full-resolution pass is worth its cost."""
    lay = layout(system)
    e_count, steps = knobs.edge_mult.shape
    feedback = _Feedback(
        attempts=np.ones((e_count, steps)), passing=np.ones((e_count, steps)),
        served_share=(knobs.up > 0).astype(float), edge_fail=np.zeros((e_count, steps)),
    )  # fmt: skip
    if rounds > 1 and steps >= 8 * coarse:
        rough = knobs.blocks(coarse)
        guess = feedback.blocks(coarse)
        for _ in range(rounds - 1):
            state = _round(system, lay, rough, guess, dt=float(coarse))
            guess = guess.damped(state)
        if not worth_finishing(state, coarse):
            return None
        feedback = guess.expanded(coarse, steps)
    elif rounds > 1:
        for _ in range(rounds - 1):
            feedback = feedback.damped(_round(system, lay, knobs, feedback, dt=1.0))
    return _round(system, lay, knobs, feedback, dt=1.0)


@dataclass
class _Feedback:
    """What one pass tells the next: retries per call, the share passing pools, the share of a
    component's arrivals it serves, and failures of cache calls (their reads fall back)."""

    attempts: np.ndarray
    passing: np.ndarray
    served_share: np.ndarray
    edge_fail: np.ndarray

    def damped(self, state: State) -> _Feedback:
        served = np.where(state.arrivals > 0, state.served / np.maximum(state.arrivals, 1e-12), self.served_share)
        return _Feedback(
            attempts=0.5 * (self.attempts + state.extras["attempts"]),
            passing=0.5 * (self.passing + 1.0 - state.pool_fail),
            served_share=0.5 * (self.served_share + served),
            edge_fail=0.5 * (self.edge_fail + state.edge_fail),
        )

    def blocks(self, size: int) -> _Feedback:
        return _Feedback(
            *(block_mean(x, size) for x in (self.attempts, self.passing, self.served_share, self.edge_fail))
        )

    def expanded(self, size: int, steps: int) -> _Feedback:
        return _Feedback(
            *(
                np.repeat(x, size, axis=1)[:, :steps]
                for x in (self.attempts, self.passing, self.served_share, self.edge_fail)
            )
        )


def _round(system: System, lay: Layout, knobs: Knobs, feedback: _Feedback, dt: float) -> State:
    per_request = calls_per_request_all(system, knobs, feedback.edge_fail)
    arrivals, rates, offered = _traffic(
        lay, knobs, per_request, feedback.attempts, feedback.passing, feedback.served_share
    )
    return _delays(system, lay, knobs, arrivals, rates, offered, per_request, dt)


def calls_per_request_all(system: System, knobs: Knobs, edge_fail: np.ndarray) -> np.ndarray:
    """Calls along every edge per request its caller serves; a database edge behind a cache also
    gets the cache's misses and, from callers that fall back, the reads whose cache call failed
    (callers that do not fall back fail those requests instead)."""
    per = np.empty_like(knobs.edge_mult)
    for e, edge in enumerate(system.edges):
        per[e] = edge.p * edge.calls * knobs.edge_calls[e]
    for e, edge in enumerate(system.edges):
        if edge.cache_edge >= 0:
            cache = system.edges[edge.cache_edge]
            hit = knobs.hit[cache.callee]
            through = hit * edge_fail[edge.cache_edge] if cache.fallback else 0.0
            per[e] += per[edge.cache_edge] * (1.0 - hit + through)
    return per


def _traffic(
    lay: Layout,
    knobs: Knobs,
    per_request: np.ndarray,
    attempts: np.ndarray,
    passing: np.ndarray,
    served_share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrivals = knobs.ext.copy()
    offered = np.zeros_like(per_request)
    rates = np.zeros_like(per_request)
    for into in lay.up_levels:
        callers = lay.caller[into]
        offered[into] = arrivals[callers] * served_share[callers] * per_request[into] * attempts[into]
        rates[into] = offered[into] * passing[into]
        np.add.at(arrivals, lay.callee[into], rates[into])
    return arrivals, rates, offered


def _delays(
    system: System,
    lay: Layout,
    knobs: Knobs,
    arrivals: np.ndarray,
    rates: np.ndarray,
    offered: np.ndarray,
    per_request: np.ndarray,
    dt: float,
) -> State:
    n, steps = arrivals.shape
    e_count = rates.shape[0]
    z = lambda rows: np.zeros((rows, steps))  # noqa: E731
    st = State(
        arrivals=arrivals, served=z(n), err=z(n), causes={c: z(n) for c in CAUSES}, resp=z(n),
        scv=np.ones((n, steps)), own=z(n), wait=z(n), p_wait=z(n), backlog_delay=z(n),
        common=z(n), cpu_stretch=np.ones((n, steps)), io_stretch=np.ones((n, steps)), cpu_used=z(n),
        cpu_limit=z(n), busy=z(n), edge_rate=rates, edge_timeouts=z(e_count), edge_fail=z(e_count),
        edge_time=z(e_count), edge_attempt=z(e_count), pool_size=z(e_count), pool_in_use=z(e_count),
        pool_wait=z(e_count), pool_p_wait=z(e_count), pool_fail=z(e_count),
        retransmit_share=z(e_count),
        extras={"attempts": np.ones((e_count, steps)), "per_request": per_request, "reset": z(e_count)},
    )  # fmt: skip
    # Work each component is asked for, summed over its endpoints (external and per caller).
    pools = _pool_sizes(system, knobs)
    _settle_pools(system, lay, knobs, arrivals, rates, offered, pools)
    scaled = rates * knobs.edge_mult
    cpu_work = knobs.ext * lay.comp["cpu_time"] + lay.into.sum(scaled * lay.edge["cpu_time"])
    io_work = knobs.ext * lay.comp["io_time"] + lay.into.sum(scaled * lay.edge["io_time"])
    lock_work = lay.into.sum(rates * knobs.edge_wait)
    for members, out, by_caller in lay.down_levels:
        down = _edges(lay, knobs, st, out, offered, pools, dt) if len(out) else None
        _components(lay, knobs, st, members, out, by_caller, down, cpu_work, io_work, lock_work, dt)
    return st


def endpoint_own(lay: Layout, knobs: Knobs, st: State, edges: np.ndarray) -> np.ndarray:
    """The callee's own time for calls along ``edges`` (their endpoint or query class)."""
    k = lay.callee[edges]
    cpu = lay.edge["cpu_time"][edges] * knobs.edge_mult[edges] * knobs.cpu_mult[k] * st.cpu_stretch[k]
    io = lay.edge["io_time"][edges] * knobs.edge_mult[edges] * knobs.io_mult[k] * st.io_stretch[k] + knobs.io_add[k]
    return (cpu + io + knobs.edge_wait[edges]) / (1.0 - knobs.gc_frac[k])


def _edges(
    lay: Layout, knobs: Knobs, st: State, out: np.ndarray, offered: np.ndarray, pools: np.ndarray, dt: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What calls along ``out`` cost their callers: time, variance and failure shares."""
    j, k = lay.caller[out], lay.callee[out]
    timeout, retries = lay.edge["timeout"][out], lay.edge["retries"][out]
    attempt_mean = st.common[k] + endpoint_own(lay, knobs, st, out) + NETWORK_RTT
    st.edge_attempt[out] = attempt_mean
    loss = 1.0 - (1.0 - knobs.loss[j]) * (1.0 - knobs.loss[k])
    lost = 1.0 - (1.0 - loss) ** PACKETS_PER_CALL
    st.retransmit_share[out] = lost
    mean = attempt_mean + lost * RTO_MIN + loss * SYN_RTO  # a lost segment waits an RTO, a lost SYN a second
    scv = st.scv[k] + (loss > 0)
    down = knobs.up[k] <= 0
    refuses = knobs.down_refuses[k][:, None]
    cut, t_attempt = lognormal_cut(mean, scv, timeout)
    if down.any():
        cut = np.where(down, np.where(refuses, 0.0, 1.0), cut)
        t_attempt = np.where(down, np.where(refuses, REFUSED_SECONDS, timeout), t_attempt)
    conn = np.where(down & refuses, 1.0, np.minimum(1.0, loss * 0.5 + knobs.edge_err[out]))  # resets
    other = np.minimum(1.0, conn + np.where(down, 0.0, st.err[k]))
    f = cut + (1.0 - cut) * other
    attempts = 1.0 + f * (retries >= 1) + f**2 * (retries >= 2)
    fail = f ** (retries + 1)
    st.extras["attempts"][out] = attempts
    st.extras["reset"][out] = np.where(down, 0.0, conn)  # attempts broken by resets (not refusals)
    st.edge_timeouts[out] = cut
    pool_wait = np.zeros_like(f)
    pool_fail = np.zeros_like(f)
    with_pool = lay.edge["pool"][out, 0] > 0
    if with_pool.any():
        chosen = out[with_pool]
        pool_wait[with_pool], pool_fail[with_pool] = _pool(lay, st, chosen, t_attempt[with_pool], offered, pools, dt)
    st.edge_time[out] = attempts * t_attempt + pool_wait
    var = attempts * np.minimum(mean**2 * scv, timeout**2)
    st.edge_fail[out] = 1.0 - (1.0 - fail) * (1.0 - pool_fail)
    safe = np.maximum(f, 1e-12)
    parts = {
        "timeout": fail * cut / safe,
        "connection": fail * (1.0 - cut) * conn / safe,
        "upstream": fail * (1.0 - cut) * np.maximum(other - conn, 0.0) / safe,
        "pool": pool_fail,
    }
    return var, parts


def _pool(
    lay: Layout, st: State, edges: np.ndarray, t_attempt: np.ndarray, offered: np.ndarray, pools: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Connection pools: M/M/P queues whose waiters give up at the pool timeout."""
    size = pools[edges]
    hold = t_attempt + 0.0005  # the application keeps the connection a little beyond the query
    demand = offered[edges]
    capacity = size / hold
    rho = demand * hold / np.maximum(size, 1e-9)
    servers = _rows(np.maximum(size, 1.0))
    p_wait, wait = allen_cunneen(servers, rho, hold, 1.0)
    limit = lay.edge["pool_timeout"][edges]
    backlog, overflow = capped_backlog((demand - capacity) * dt, capacity * limit)
    overflow = overflow / dt
    fail = np.minimum(overflow / np.maximum(demand, 1e-9), 1.0)
    empty = size < 1
    fail = np.where(empty, (demand > 0).astype(float), fail)
    wait = np.minimum(np.where(empty, limit, wait + backlog / np.maximum(capacity, 1e-9)), limit)
    st.pool_size[edges], st.pool_wait[edges], st.pool_fail[edges] = size, wait, fail
    st.pool_p_wait[edges] = np.where((backlog > 0.5) | empty, 1.0, p_wait)
    st.pool_in_use[edges] = np.minimum(demand * hold, size)
    return wait, fail


def _components(
    lay: Layout,
    knobs: Knobs,
    st: State,
    members: np.ndarray,
    out: np.ndarray,
    by_caller: Groups,
    down: tuple[np.ndarray, dict[str, np.ndarray]] | None,
    cpu_work: np.ndarray,
    io_work: np.ndarray,
    lock_work: np.ndarray,
    dt: float,
) -> None:
    p = {name: values[members] for name, values in lay.comp.items()}
    lam = st.arrivals[members]
    up = knobs.up[members]
    alive = up > 0
    safe_lam = np.maximum(lam, 1e-9)
    idle = lam < 1e-9
    cpu_req = np.where(idle, p["cpu_time"], cpu_work[members] / safe_lam) * knobs.cpu_mult[members]
    io_req = np.where(idle, p["io_time"], io_work[members] / safe_lam) * knobs.io_mult[members]
    limit = p["cores"] * p["replicas"] * up * knobs.cpu_cap[members]
    cores = np.maximum(limit - knobs.hog[members], 0.02 * p["cores"])
    servers = _rows(np.maximum(cores, 1.0))
    u = np.minimum(lam * cpu_req / cores, 0.97)
    cpu_stretch = 1.0 + erlang_c(servers, u) / (servers * (1.0 - u))
    io_stretch = np.where(
        p["io_parallel"] > 0, 1.0 / (1.0 - np.minimum(lam * io_req / np.maximum(p["io_parallel"], 1e-9), 0.95)), 1.0
    )
    st.cpu_stretch[members], st.io_stretch[members] = cpu_stretch, io_stretch
    gc = knobs.gc_frac[members]
    io_total = io_req * io_stretch + knobs.io_add[members] + np.where(idle, 0.0, lock_work[members] / safe_lam)
    own = (cpu_req * cpu_stretch + io_total) / (1.0 - gc) + gc * knobs.gc_pause[members] / 2
    downstream = np.zeros_like(lam)
    var_calls = np.zeros_like(lam)
    survive = {cause: np.zeros_like(lam) for cause in ("timeout", "connection", "pool", "upstream")}
    if down is not None:
        var, parts = down
        per = st.extras["per_request"][out]
        cost = per * st.edge_time[out]
        parallel = lay.edge["parallel"][out] > 0
        downstream = by_caller.sum(np.where(parallel, 0.0, cost))
        if parallel.any():
            longest = by_caller.max(np.where(parallel, cost, 0.0))
            total = by_caller.sum(np.where(parallel, cost, 0.0))
            downstream += longest + 0.25 * (total - longest)  # fan-out waits for the slowest
        var_calls = by_caller.sum(per * var)
        fatal = lay.fatal[out][:, None]
        for cause, share in parts.items():
            survive[cause] = by_caller.sum(np.where(fatal, per * share, 0.0))
    hold = own + downstream
    var_hold = (own * p["cv"]) ** 2 + var_calls
    scv_hold = var_hold / np.maximum(hold, 1e-9) ** 2
    workers = p["workers"] * p["replicas"] * up
    wq, p_wait = np.zeros_like(lam), np.zeros_like(lam)
    mu = np.where(alive, cores / cpu_req, 0.0)
    busy = lam * hold
    bounded = np.flatnonzero(~p["unlimited"][:, 0])
    if len(bounded):  # thread-per-request runtimes: the worker pool is a queue of its own
        w = workers[bounded]
        rho = busy[bounded] / np.maximum(w, 1e-9)
        servers = _rows(np.maximum(w, 1.0))
        live = alive[bounded]
        waits, queued = allen_cunneen(servers, rho, hold[bounded], scv_hold[bounded])
        wq[bounded] = np.where(live, queued, 0.0)
        p_wait[bounded] = np.where(live, waits, 0.0)
        mu[bounded] = np.where(live, np.minimum(mu[bounded], w / np.maximum(hold[bounded], 1e-9)), 0.0)
        busy[bounded] = np.minimum(busy[bounded], w)
    st.busy[members] = busy
    backlog, overflow = capped_backlog((lam - mu) * dt, np.maximum(mu * p["queue_seconds"], 0.0))
    overflow = overflow / dt
    backlog = np.where(alive, backlog, 0.0)
    rejected = np.where(alive, np.minimum(overflow / safe_lam, 1.0), 1.0)
    backlog_delay = np.where(mu > 0, backlog / np.maximum(mu, 1e-9), 0.0)
    wait = wq + backlog_delay
    causes = st.causes
    causes["internal"][members] = knobs.err[members]
    causes["disk"][members] = knobs.write_err[members] * WRITE_SHARE
    causes["rejected"][members] = rejected
    ok = (1.0 - rejected) * (1.0 - knobs.err[members]) * (1.0 - causes["disk"][members])
    for cause, exposure in survive.items():
        causes[cause][members] = 1.0 - np.exp(-exposure)
        ok = ok * np.exp(-exposure)
    st.err[members] = np.where(lam > 0, 1.0 - ok, 0.0)
    st.served[members] = lam * (1.0 - rejected)
    st.own[members], st.wait[members], st.backlog_delay[members] = own, wait, backlog_delay
    st.p_wait[members] = np.where(backlog > 0.5, 1.0, p_wait)
    st.common[members] = wait + downstream + gc * knobs.gc_pause[members] / 2
    st.resp[members] = wait + hold
    var_wait = np.where(p_wait > 1e-6, wq**2 * (2.0 / np.maximum(p_wait, 1e-6) - 1.0), 0.0)
    st.scv[members] = np.clip((var_hold + var_wait) / np.maximum(wait + hold, 1e-9) ** 2, 0.05, 25.0)
    st.cpu_limit[members] = limit
    gc_cpu = gc * cores * 0.5  # concurrent marking threads burn CPU too
    st.cpu_used[members] = np.minimum(
        st.served[members] * cpu_req + knobs.hog[members] + gc_cpu, np.maximum(limit, 0.0)
    )


def _settle_pools(
    system: System,
    lay: Layout,
    knobs: Knobs,
    arrivals: np.ndarray,
    rates: np.ndarray,
    offered: np.ndarray,
    pools: np.ndarray,
) -> None:
    """What databases receive through their callers' pools, settled within the pass.

    A pool of ``P`` connections passes at most ``P / hold`` queries a second, and the hold is the
    database's response, which grows with what the pools pass: a closed loop (a finite population
    cycling through the database, as in mean value analysis). Solved per second by damped
    iteration of ``x = min(offered, P / hold(x))``, for all databases' pools at once; skipped when
    no pool binds even at full load.
    """
    edges, dbs = lay.pool_edges, lay.pool_db
    if not len(edges):
        return
    want = offered[edges]
    cpu = lay.edge["cpu_time"][edges] * knobs.edge_mult[edges] * knobs.cpu_mult[dbs]
    io = lay.edge["io_time"][edges] * knobs.edge_mult[edges] * knobs.io_mult[dbs]
    fixed = knobs.edge_wait[edges] + knobs.io_add[dbs] + NETWORK_RTT + 0.0005
    members = lay.pool_members
    p = {name: lay.comp[name][members] for name in ("cores", "io_parallel")}
    cores = np.maximum(p["cores"] * knobs.up[members] * knobs.cpu_cap[members] - knobs.hog[members], 0.02 * p["cores"])
    servers = _rows(np.maximum(cores, 1.0))
    spread = lay.pool_groups
    gc = 1.0 - knobs.gc_frac[dbs]
    size = pools[edges]

    def hold(passed: np.ndarray) -> np.ndarray:
        u = np.minimum(spread.sum(passed * cpu) / cores, 0.97)
        stretch = 1.0 + erlang_c(servers, u) / (servers * (1.0 - u))
        u_io = np.minimum(spread.sum(passed * io) / np.maximum(p["io_parallel"], 1e-9), 0.95)
        position = lay.pool_position
        return (cpu * stretch[position] + io / (1.0 - u_io[position])) / gc + fixed

    if (want * hold(want) <= size).all():
        passed = want
    else:
        passed = rates[edges].copy()
        for _ in range(8):
            passed = 0.5 * (passed + np.minimum(want, size / hold(passed)))
    np.add.at(arrivals, dbs, passed - rates[edges])
    rates[edges] = passed


def _rows(values: np.ndarray) -> np.ndarray:
    """``values`` as one column when every row is constant over time (Erlang C's fast path)."""
    first = values[:, :1]
    return first if (values == first).all() else values


def _pool_sizes(system: System, knobs: Knobs) -> np.ndarray:
    """Connections each pool may hold: its size, or its share of a database's free slots."""
    sizes = np.zeros_like(knobs.edge_mult)
    for d in system.kind_indices(ServiceKind.DATABASE):
        edges = [e for e in system.in_edges(d) if system.edges[e].pool]
        total = sum(system.edges[e].pool for e in edges)
        for e in edges:
            size = system.edges[e].pool
            sizes[e] = np.minimum(size, np.maximum(knobs.db_slots[d] * size / max(total, 1), 0.0))
    return sizes
