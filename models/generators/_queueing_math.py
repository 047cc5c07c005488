"""Queueing formulas, vectorised over time.

- Erlang C (the probability that an arrival waits in an M/M/c queue), from the Erlang B recursion
  ``B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))`` and ``C = B / (1 - rho (1 - B))``
  (Kleinrock, *Queueing Systems* vol. 1, 1975, §3.5). Tabulated once over servers and load and
  interpolated, because the recursion costs ``c`` steps for ``c`` servers.
- The Allen-Cunneen approximation for M/G/c / G/G/c waiting times,
  ``Wq ~ C(c, rho) / (c mu (1 - rho)) * (ca^2 + cs^2) / 2`` (Allen, *Probability, Statistics and
  Queueing Theory*, 1990; for c = 1 it is Kingman's formula).
- A fluid backlog for overload (``rho >= 1``), the Lindley recursion
  ``Q(t) = min(L, max(0, Q(t-1) + (lambda - mu) dt))``: what exceeds the bound ``L`` is rejected
  (a full accept queue) or abandons (a pool wait that reached its timeout).
- Two-moment matching for tail probabilities of response times (``P(R > timeout)``), as in the
  two-moment approximations of queueing networks (Whitt, *The Queueing Network Analyzer*, 1983);
  the distribution fitted to mean and SCV is a lognormal, the usual shape of measured latencies.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.special import ndtr

#: Beyond this many servers, a pool behaves as if it had no limit for our purposes.
UNLIMITED = 4096
_RHO_GRID = np.linspace(0.0, 0.995, 400)
#: Up to this many servers Erlang C is tabulated; beyond, the Halfin-Whitt limit is accurate.
_TABULATED = 512


@cache
def _server_grid() -> np.ndarray:
    small = np.arange(1, 65, dtype=float)
    large = np.unique(np.round(64 * 2 ** (np.arange(1, 13) / 4)))
    return np.concatenate([small, large[large <= _TABULATED]])


@cache
def _erlang_c_table() -> np.ndarray:
    """``C(c, rho)`` for every ``c`` of the server grid (rows) and ``rho`` of the load grid."""
    servers = _server_grid()
    table = np.zeros((len(servers), len(_RHO_GRID)))
    blocking = np.ones((len(servers), len(_RHO_GRID)))
    offered = servers[:, None] * _RHO_GRID[None, :]
    first = 0  # rows before this one are done (their c is below the current k)
    for k in range(1, int(servers[-1]) + 1):
        rows = slice(first, None)
        # Clamped away from zero: denormal floats make the recursion a hundred times slower.
        blocking[rows] = np.maximum(offered[rows] * blocking[rows] / (k + offered[rows] * blocking[rows]), 1e-200)
        while first < len(servers) and servers[first] == k:
            b = blocking[first]
            table[first] = b / (1.0 - _RHO_GRID * (1.0 - b))
            first += 1
    table[table < 1e-100] = 0.0
    return table


def erlang_c(servers: np.ndarray | float, rho: np.ndarray) -> np.ndarray:
    """The probability of waiting in an M/M/c queue with ``servers`` servers at utilisation ``rho``.

    Args:
        servers: number of servers (may vary over time; interpolated between grid values, at least 1).
        rho: utilisation per server; values at or above the grid's end are treated as 0.995.
    """
    grid, table = _server_grid(), _erlang_c_table()
    r = np.clip(np.asarray(rho, dtype=float), 0.0, _RHO_GRID[-1])
    column = r * ((len(_RHO_GRID) - 1) / _RHO_GRID[-1])
    left = np.minimum(column.astype(int), len(_RHO_GRID) - 2)
    frac = column - left
    c = np.asarray(servers, dtype=float)
    if c.ndim == 0 and c > _TABULATED:
        return _halfin_whitt(float(c), r)
    if c.ndim == 0:
        position = float(np.interp(np.log(max(float(c), 1.0)), np.log(grid), np.arange(len(grid))))
        low = min(int(position), len(grid) - 2)
        row = table[low] * (1 - (position - low)) + table[low + 1] * (position - low)
        return row[left] * (1 - frac) + row[left + 1] * frac
    if c.ndim == 2 and r.ndim == 2 and not (c > _TABULATED).any():
        # Most rows (components) keep one server count over the window: interpolate whole rows of
        # the table for those, point by point only for rows whose capacity changes.
        first = c[:, :1]
        steady = (c == first).all(axis=1) if c.shape[1] > 1 else np.ones(len(c), dtype=bool)
        position = np.interp(np.log(np.maximum(first[:, 0], 1.0)), np.log(grid), np.arange(len(grid)))
        low = np.minimum(position.astype(int), len(grid) - 2)
        weight = (position - low)[:, None]
        rows = table[low] * (1 - weight) + table[low + 1] * weight
        value = np.take_along_axis(rows, left, axis=1) * (1 - frac) + np.take_along_axis(rows, left + 1, axis=1) * frac
        if not steady.all():
            moving = ~steady
            value[moving] = _pointwise(np.broadcast_to(c, r.shape)[moving], left[moving], frac[moving])
        return value
    c = np.broadcast_to(c, r.shape)
    value = _pointwise(c, left, frac)
    large = c > _TABULATED
    if large.any():
        value[large] = _halfin_whitt(c[large], r[large])
    return value


def _pointwise(c: np.ndarray, left: np.ndarray, frac: np.ndarray) -> np.ndarray:
    grid, table = _server_grid(), _erlang_c_table()
    position = np.interp(np.log(np.clip(c, 1.0, grid[-1])), np.log(grid), np.arange(len(grid)))
    low = np.minimum(position.astype(int), len(grid) - 2)
    weight = position - low
    low_value = table[low, left] * (1 - frac) + table[low, left + 1] * frac
    high_value = table[low + 1, left] * (1 - frac) + table[low + 1, left + 1] * frac
    return low_value * (1 - weight) + high_value * weight


def _halfin_whitt(servers: np.ndarray | float, rho: np.ndarray) -> np.ndarray:
    """Erlang C for many servers: ``1 / (1 + beta Phi(beta) / phi(beta))``, ``beta = (1 - rho) sqrt(c)``
    (Halfin and Whitt, *Heavy-traffic limits for queues with many exponential servers*, 1981)."""
    beta = np.minimum((1.0 - rho) * np.sqrt(servers), 30.0)  # C is 0 to double precision beyond
    return 1.0 / (1.0 + beta * ndtr(beta) / (np.exp(-0.5 * beta**2) / np.sqrt(2 * np.pi)))


def allen_cunneen(
    servers: np.ndarray, rho: np.ndarray, holding: np.ndarray, scv: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """The probability of waiting and the mean wait in queue (s) of a G/G/c queue with Poisson
    arrivals (``ca^2 = 1``).

    Args:
        servers: servers over time (one column when constant: Erlang C's fast path).
        rho: utilisation per server, capped below 1 (the fluid backlog takes over beyond).
        holding: mean holding (service) time per request (s).
        scv: squared coefficient of variation of the holding time.
    """
    r = np.minimum(rho, 0.97)
    waits = erlang_c(servers, r)
    return waits, waits * holding / (np.maximum(servers, 1.0) * (1.0 - r)) * (1.0 + scv) / 2.0


def capped_backlog(excess: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Lindley recursion with a bound, along the last axis: backlog after each step and what
    overflowed in it.

    Args:
        excess: arrivals minus capacity in each step (requests); rows are independent queues.
        cap: the most the queue holds in each step (requests).
    """
    excess = np.asarray(excess, dtype=float)
    cap = np.broadcast_to(cap, excess.shape)
    # Unbounded, the recursion has a closed form: Q(t) = S(t) - min(0, min_{k<=t} S(k)).
    walk = np.cumsum(excess, axis=-1)
    backlog = walk - np.minimum(np.minimum.accumulate(walk, axis=-1), 0.0)
    overflow = np.zeros_like(backlog)
    over = backlog > cap
    if not over.any():
        return backlog, overflow
    flat_backlog, flat_overflow = backlog.reshape(-1, excess.shape[-1]), overflow.reshape(-1, excess.shape[-1])
    flat_excess, flat_cap = excess.reshape(flat_backlog.shape), cap.reshape(flat_backlog.shape)
    for row in np.flatnonzero(over.reshape(flat_backlog.shape).any(axis=-1)):
        level = 0.0
        queue, spilled = flat_backlog[row], flat_overflow[row]
        for t, (x, bound) in enumerate(zip(flat_excess[row].tolist(), flat_cap[row].tolist(), strict=True)):
            level = max(0.0, level + x)
            spill = level - bound
            if spill > 0:
                spilled[t] = spill
                level = bound
            queue[t] = level
    return backlog, overflow


def lognormal_cut(mean: np.ndarray, scv: np.ndarray, threshold: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``P(R > threshold)`` and ``E[min(R, threshold)]`` for lognormal ``R`` (see the two below)."""
    sigma2 = np.log1p(np.maximum(scv, 1e-4))
    sigma = np.sqrt(sigma2)
    z = (np.log(threshold) - np.log(np.maximum(mean, 1e-9)) + sigma2 / 2) / sigma
    above = ndtr(-z)
    return above, mean * ndtr(z - sigma) + threshold * above


def lognormal_tail(mean: np.ndarray, scv: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """``P(R > threshold)`` for ``R`` lognormal with this mean and squared CV."""
    sigma2 = np.log1p(np.maximum(scv, 1e-4))
    sigma = np.sqrt(sigma2)
    mu = np.log(np.maximum(mean, 1e-9)) - sigma2 / 2
    return ndtr((mu - np.log(threshold)) / sigma)
