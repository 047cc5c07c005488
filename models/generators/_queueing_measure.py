"""How exporters turn what happened into numbers, per second (scrapes pick rows later).

- Counters: requests of a second are Poisson, errors Binomial among them; a dashboard shows
  ``rate(counter[W])``, the increase over the last ``W`` seconds divided by ``W``.
- Latency: each request lands in a histogram bucket; percentiles are ``histogram_quantile`` over
  the buckets' increase in the last ``W`` seconds, linearly interpolated inside a bucket and capped
  at the last finite bound, exactly as Prometheus computes them (hence the steps and plateaus).
- CPU: CPU seconds used per second (cAdvisor's counter as a rate), with scheduler jitter.
- Memory: RSS of representative pods, the runtime's garbage sawtooth on top of a floor (and a
  leak, when there is one); a restarted pod starts low and warms up.
"""

from __future__ import annotations

import numpy as np

from models.generators._queueing_events import PODS, Events
from models.generators._queueing_system import Component

#: Prometheus client defaults (seconds), and a finer layout some teams configure.
DEFAULT_BUCKETS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
FINE_BUCKETS = np.geomspace(0.001, 30.0, 24)


def windowed_rate(per_second: np.ndarray, window: int, axis: int = -1) -> np.ndarray:
    """``rate(x[window])`` along ``axis`` from per-second increases (the start uses what exists)."""
    total = np.cumsum(per_second, axis=axis)
    moved = np.moveaxis(total, axis, -1)
    result = moved.copy()
    if window < moved.shape[-1]:
        result[..., window:] -= moved[..., :-window]
    span = np.minimum(np.arange(1, moved.shape[-1] + 1), window)
    return np.moveaxis(result / span, -1, axis)


def counts(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Events counted in each second at this mean rate."""
    return rng.poisson(np.maximum(np.nan_to_num(rate), 0.0)).astype(float)


def bucket_counts(latency: np.ndarray, requests: np.ndarray, bounds: np.ndarray, window: int) -> np.ndarray:
    """Requests per histogram bucket over the last ``window`` seconds, ``(components, buckets + 1, T)``.

    The ``K`` drawn requests of a second stand for all of that second's requests.
    """
    n, steps, k = latency.shape
    width = len(bounds) + 1
    # A bucket index by counting the bounds a value exceeds: cheaper than a binary search here.
    which = np.zeros(latency.shape, dtype=np.int32)
    for bound in bounds.astype(np.float32):
        which += latency > bound
    seconds = np.arange(steps, dtype=np.int32)[:, None]
    rows = (np.arange(n, dtype=np.int32)[:, None, None] * width + which) * steps + seconds
    tally = np.bincount(rows.ravel(), minlength=n * width * steps).reshape(n, width, steps)
    return windowed_sum(tally * (requests / k)[:, None, :], window)


def windowed_sum(per_second: np.ndarray, window: int) -> np.ndarray:
    """``increase(x[window])`` along the last axis."""
    total = np.cumsum(per_second, axis=-1)
    if window < total.shape[-1]:
        total[..., window:] -= total[..., :-window].copy()
    return total


def histogram_quantiles(qs: tuple[float, ...], buckets: np.ndarray, bounds: np.ndarray) -> dict[float, np.ndarray]:
    """Prometheus's ``histogram_quantile`` for each ``q``, buckets along axis 1 of ``(n, buckets, T)``
    (NaN where nothing was counted): the bucket where the rank falls, linear inside it, the last
    finite bound for ranks in ``+Inf``."""
    cumulative = np.cumsum(buckets, axis=1)
    total = cumulative[:, -1, :]
    lows = np.append(0.0, bounds)
    highs = np.append(bounds, bounds[-1])
    result = {}
    for q in qs:
        rank = q * total
        index = np.minimum((cumulative < rank[:, None, :] - 1e-12).sum(axis=1), len(bounds))
        below = np.take_along_axis(cumulative, np.maximum(index - 1, 0)[:, None, :], axis=1)[:, 0, :] * (index > 0)
        inside = np.take_along_axis(buckets, index[:, None, :], axis=1)[:, 0, :]
        share = np.clip((rank - below) / np.maximum(inside, 1e-12), 0.0, 1.0)
        value = lows[index] + (highs[index] - lows[index]) * share
        result[q] = np.where(total > 0, value, np.nan)
    return result


def rss(
    rng: np.random.Generator, c: Component, index: int, served: np.ndarray, events: Events, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean RSS (MB) of a service's pods and the share of pods running, per second.

    Between collections garbage accumulates at the allocation rate (requests x bytes each);
    Go, Node and Python return freed memory so RSS saws, a JVM keeps its committed heap so its
    RSS is flatter. A pod killed or replaced starts again at 60 % of its floor and warms up.
    """
    pods = min(c.replicas, PODS)
    floor = c.mem_base_mb * rng.uniform(0.92, 1.08, pods)[:, None]
    young = c.mem_limit_mb * rng.uniform(0.06, 0.14)
    allocated = np.cumsum(served / c.replicas * c.alloc_kb / 1024.0)
    phase = rng.uniform(0, 1, pods)[:, None]
    garbage = young * ((allocated[None, :] / young + phase) % 1.0)
    if c.runtime == "jvm":
        garbage = 0.7 * young + 0.3 * garbage
    live = events.leak.get(index)
    running = np.ones((pods, steps))
    warm = np.ones((pods, steps))
    down = events.notes.get(f"pod_down:{index}")
    if isinstance(down, np.ndarray):
        running = 1.0 - down
    fresh = events.fresh_pods.get(index)
    # Without a leak model, a restart (a crash loop) restarts every pod.
    restarts = [second for comp, second, _ in events.restarts if comp == index] if live is None else []
    for p in range(pods):
        marks = [int(fresh[p])] if fresh is not None and p < len(fresh) else []
        for mark in marks + restarts:
            since = np.arange(steps) - mark
            warm[p] = np.where(since >= 0, 0.6 + 0.4 * (1 - np.exp(-np.maximum(since, 0) / 60.0)), warm[p])
    total = floor * warm + garbage + (live if live is not None else 0.0)
    total = total * (1 + 0.005 * rng.standard_normal((pods, steps)))
    alive = running > 0
    mean = np.where(alive.any(axis=0), (total * alive).sum(axis=0) / np.maximum(alive.sum(axis=0), 1), np.nan)
    return mean, running.mean(axis=0)


def throttled(cpu_used: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Share of CFS periods throttled: bursts within 100 ms periods hit the quota well before the
    average does, more often the closer the average gets."""
    u = np.where(limit > 0, cpu_used / np.maximum(limit, 1e-9), 0.0)
    return np.clip((u - 0.45) / 0.55, 0.0, 1.0) ** 1.5
