"""Individual response times, so that percentiles are measured, not computed.

For every second and component, ``K`` requests are drawn (callees before callers): a queueing delay
(waits with the probability Erlang C gives, exponentially long given that it waits, plus any
backlog), a service time (lognormal with the component's CV), a stop-the-world pause for the
unlucky, and one drawn call per downstream edge taken from the callee's own drawn requests of that
second, cut off at the caller's timeout and retried. Sums for sequential calls, the longest for a
fan-out. What exporters then see is the mixture that real latency histograms show: a fast mode, a
queueing tail, retries after timeouts at ``timeout + something``, fast failures near zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.generators._queueing_dynamics import endpoint_own
from models.generators._queueing_layout import Layout, layout
from models.generators._queueing_state import REFUSED_SECONDS, RTO_MIN, SYN_RTO, Knobs, State
from models.generators._queueing_system import System

#: Requests drawn per component and second.
K = 12


@dataclass
class Samples:
    """Drawn requests, ``(components, T, K)`` float32."""

    latency: np.ndarray  # response time of each drawn request (s)
    failed: np.ndarray  # whether it failed


@dataclass
class Randomness:
    """The random numbers one case's draws use. Drawn once and reused by every attempt at a case:
    only the accepted attempt is kept, so its numbers are as random as fresh ones."""

    normals: np.ndarray  # (n, T, K)
    uniforms: np.ndarray  # (3, n, T, K)
    rng: np.random.Generator  # for what depends on the attempt (retries, shifts)

    @classmethod
    def of(cls, rng: np.random.Generator, n: int, steps: int) -> Randomness:
        normals = rng.standard_normal((n, steps, K), dtype=np.float32)
        return cls(normals=normals, uniforms=rng.random((3, n, steps, K), dtype=np.float32), rng=rng)


def draw(randomness: Randomness, system: System, knobs: Knobs, st: State) -> Samples:
    """Draw ``K`` requests per component and second, consistent with the dynamics ``st``."""
    lay = layout(system)
    rng = randomness.rng
    n, steps = st.arrivals.shape
    common = np.zeros((n, steps, K), dtype=np.float32)  # everything but the endpoint's own work
    failed = np.zeros((n, steps, K), dtype=bool)
    latency = np.zeros((n, steps, K), dtype=np.float32)
    per_request = st.extras["per_request"]
    uniforms = randomness.uniforms
    sigma = np.sqrt(np.log1p(np.array([c.cv for c in system.components]) ** 2)).astype(np.float32)[:, None, None]
    shape = np.exp(sigma * randomness.normals - sigma * sigma / 2)  # service-time multiplier (mean 1)
    own_all = endpoint_own(lay, knobs, st, np.arange(len(system.edges))).astype(np.float32)
    lossy = (knobs.loss.max(axis=1) > 0)[lay.caller] | (knobs.loss.max(axis=1) > 0)[lay.callee]
    for j in reversed(system.order):
        u, u2, u3 = uniforms[0, j], uniforms[1, j], uniforms[2, j]
        z = shape[j]
        delay = np.zeros((steps, K), dtype=np.float32)
        if st.p_wait[j].max() > 1e-4:
            # Waits with probability p; given that, exponentially: -log(U/p) is Exp(1) when U < p.
            p_wait = _column(st.p_wait[j])
            given = _column((st.wait[j] - st.backlog_delay[j]) / np.maximum(st.p_wait[j], 1e-6))
            ratio = u / np.maximum(p_wait, np.float32(1e-6))
            delay = -np.log(np.clip(ratio, np.float32(1e-7), np.float32(1.0))) * given
        if st.backlog_delay[j].max() > 0:
            delay += _column(st.backlog_delay[j])
        if knobs.gc_frac[j].max() > 0:
            delay += (u2 < _column(knobs.gc_frac[j])) * u3 * _column(knobs.gc_pause[j])
        parallel = None
        broken = None
        for e in system.out_edges(j):
            edge = system.edges[e]
            k = edge.callee
            calls = per_request[e]
            spent, bad = _call(rng, lay, knobs, st, e, k, common, shape, failed, own_all[e][:, None], bool(lossy[e]))
            if calls.min() >= 1 and (calls == calls[0]).all() and float(calls[0]).is_integer():
                made = None if calls[0] == 1 else np.float32(calls[0])
            else:
                low = np.floor(calls)
                made = _column(low) + (u3 < _column(calls - low))
            cost = spent if made is None else spent * made
            if edge.parallel:
                parallel = cost if parallel is None else np.maximum(parallel, cost)
            else:
                delay += cost
            if lay.fatal[e] and bad.any():
                bad = bad if made is None else bad & (made > 0)
                broken = bad if broken is None else broken | bad
        if parallel is not None:
            delay += parallel
        inner = knobs.err[j] + knobs.write_err[j] * 0.3
        fails = broken if broken is not None else np.zeros((steps, K), dtype=bool)
        if inner.max() > 0:
            fails = fails | (u3 < _column(inner))
        if st.causes["rejected"][j].max() > 0:
            rejected = u2 < _column(st.causes["rejected"][j])
            delay = np.where(rejected, np.float32(REFUSED_SECONDS), delay)
            z = z * ~rejected
            fails = fails | rejected
        common[j], shape[j], failed[j] = delay, z, fails  # callers draw from these
        latency[j] = delay + _column(st.own[j]) * z
    return Samples(latency=latency, failed=failed)


def _column(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32)[:, None]


def _call(
    rng: np.random.Generator,
    lay: Layout,
    knobs: Knobs,
    st: State,
    e: int,
    k: int,
    common: np.ndarray,
    shape: np.ndarray,
    failed: np.ndarray,
    own: np.ndarray,
    lossy: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Time one call along ``e`` costs its caller, and whether it failed after retries."""
    steps = common.shape[1]
    timeout = np.float32(lay.edge["timeout"][e, 0])
    retries = int(lay.edge["retries"][e, 0])
    down = knobs.up[k] <= 0
    refuses = bool(knobs.down_refuses[k])
    shifts = rng.permutation(K)[: retries + 1]  # distinct, so that a retry meets another request
    for attempt in range(retries + 1):
        # The callee's drawn requests of a second are exchangeable: a column shift pairs each of
        # the caller's requests with an independent one of the callee's.
        shift = int(shifts[attempt])
        response = np.roll(common[k], shift, axis=1) + own * np.roll(shape[k], shift, axis=1)
        error = np.roll(failed[k], shift, axis=1)
        if lossy:
            share = _column(st.retransmit_share[e])
            draw = rng.random((steps, K), dtype=np.float32)
            # A lost segment costs an RTO (200 ms and up); a lost SYN, the first in 8, a whole second.
            response = response + (draw < share) * np.where(
                draw < share / 8, np.float32(SYN_RTO), RTO_MIN * (1 + draw * 4)
            )
            error = error | (draw > 1.0 - 0.5 * st.retransmit_share[e][:, None] / 8.0)
        if down.any():
            response = np.where(down[:, None], REFUSED_SECONDS if refuses else timeout, response)
            error = error | down[:, None]
        cut = response > timeout
        if attempt == 0:
            spent = np.minimum(response, timeout)
            pending = cut | error
        else:
            spent += pending * np.minimum(response, timeout)
            pending = pending & (cut | error)
        if attempt == retries or not pending.any():
            break
    if st.pool_size[e].any() and st.pool_p_wait[e].max() > 1e-4:
        p = _column(st.pool_p_wait[e])
        draw = rng.random((steps, K), dtype=np.float32)
        given = _column(st.pool_wait[e] / np.maximum(st.pool_p_wait[e], 1e-6))
        ratio = draw / np.maximum(p, np.float32(1e-6))
        wait = -np.log(np.clip(ratio, np.float32(1e-7), np.float32(1.0))) * given
        limit = np.float32(lay.edge["pool_timeout"][e, 0])
        gave_up = draw < _column(st.pool_fail[e])
        spent = np.where(gave_up, limit, spent + np.minimum(wait, limit))
        pending = pending | gave_up
    return spent, pending
