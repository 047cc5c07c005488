"""What happened during a window, beyond the knobs: deploys, pod restarts, leaks, flushes, locks.

Faults and confounders write these; exporters, logs and the executors' observations read them, so
that an OOM kill shows as an RSS drop, a restart count, a log line and a traffic blip at the same
second. Also the two mechanisms several faults share: a rolling deploy and a leaking heap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.generators._queueing_system import Component


@dataclass
class Events:
    """Everything a window's faults and confounders did, by component index and second."""

    deploys: list[tuple[int, int, str]] = field(default_factory=list)  # (component, second, revision)
    restarts: list[tuple[int, int, str]] = field(default_factory=list)  # (component, second, reason)
    leak: dict[int, np.ndarray] = field(default_factory=dict)  # live heap grown by a leak, MB (pods, T)
    fresh_pods: dict[int, np.ndarray] = field(default_factory=dict)  # second each pod (of 6) last started
    disk_fill: dict[int, np.ndarray] = field(default_factory=dict)  # extra disk used, fraction (T,)
    io_slow: dict[int, np.ndarray] = field(default_factory=dict)  # I/O latency multiplier (T,)
    cache_reset: dict[int, int] = field(default_factory=dict)  # cache restarted or flushed at this second
    cache_restarted: set[int] = field(default_factory=set)  # ... by a restart (counters reset too)
    evictions: dict[int, np.ndarray] = field(default_factory=dict)  # evicted keys/s (T,)
    leaked_sessions: dict[int, np.ndarray] = field(default_factory=dict)  # idle-in-transaction sessions (T,)
    lock_holder: dict[int, tuple[int, str]] = field(default_factory=dict)  # database: (since, statement)
    slow_class: dict[int, int] = field(default_factory=dict)  # database: the edge whose plan regressed
    crashed: dict[int, str] = field(default_factory=dict)  # component: "refused", "hang" or "crashloop"
    exception: dict[int, str] = field(default_factory=dict)  # component: what its new version throws
    scrape_gaps: list[tuple[int, int, int]] = field(default_factory=list)  # (component, from, to)
    history: dict[int, tuple[int, str]] = field(default_factory=dict)  # restarts before the window
    notes: dict[str, object] = field(default_factory=dict)


#: Representative pods modelled per service (a service with more replicas shares them out).
PODS = 6


def rollout(rng: np.random.Generator, c: Component, start: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """A rolling update: the share of new pods over time, and when each modelled pod was replaced.

    Pods are replaced one (``maxSurge``) at a time, each after the previous one became ready.
    """
    per_pod = float(rng.uniform(5.0, 15.0))
    pods = min(c.replicas, PODS)
    replaced = start + np.round(np.arange(1, pods + 1) * per_pod * c.replicas / pods).astype(int)
    share = np.zeros(steps)
    for k, second in enumerate(replaced):
        share[min(max(second, 0), steps) :] = (k + 1) / pods
    return share, replaced


def leak_timeline(
    rng: np.random.Generator, c: Component, onset: int, steps: int, first_kill_after: float
) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """A leaking heap in every pod: live MB, restarts ``(pod, second)``, which pod is down when.

    Each pod starts leaking at ``onset`` (a code path the traffic started to take); the fastest pod
    reaches its ceiling ``first_kill_after`` seconds later: the container limit (OOMKilled) for Go
    and CPython, the runtime's heap maximum for a JVM or Node (``-Xmx``, ``--max-old-space-size``:
    the process fails and is restarted). A pod restarts empty after 8-40 s (image on the node, the
    runtime starting, readiness probes) and leaks again.
    """
    pods = min(c.replicas, PODS)
    base = c.mem_base_mb * rng.uniform(0.9, 1.1, pods)
    room = heap_ceiling(c) - base
    speed = rng.uniform(0.75, 1.0, pods)
    speed = speed / speed.max()
    rate = float(room.min()) / max(first_kill_after, 1.0) * speed  # MB/s
    live = np.zeros((pods, steps))
    down = np.zeros((pods, steps))
    kills: list[tuple[int, int]] = []
    for p in range(pods):
        t = onset
        while t < steps:
            kill = int(t + room[p] / rate[p])
            end = min(kill, steps)
            live[p, t:end] = rate[p] * np.arange(end - t)
            if kill >= steps:
                break
            kills.append((p, kill))
            restart = int(rng.uniform(8, 40))
            down[p, kill : min(kill + restart, steps)] = 1.0
            t = kill + restart
    return live, sorted(kills, key=lambda pair: pair[1]), down


def heap_ceiling(c: Component) -> float:
    """MB at which a leaking process dies: the heap maximum of runtimes that have one (about 75 %
    of the container limit), else the container limit less the garbage between collections."""
    return 0.75 * c.mem_limit_mb if c.runtime in ("jvm", "node") else 0.9 * c.mem_limit_mb


def gc_overhead(c: Component, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of time in stop-the-world collection and the pause length, from heap occupancy (mean
    over pods), and the share of the CPU limit concurrent collection burns.

    Collection frequency grows with the allocation rate over the free heap and each collection's
    marking work with the live set, so the overhead climbs as ``o / (1 - o)`` towards the limit.
    Past ~85 % a JVM runs full collections back to back, seconds each ("GC overhead limit
    exceeded"), Node and CPython shorter ones; Go collects concurrently: it burns CPU instead.
    """
    base = _BASE_GC.get(c.runtime, (0.005, 0.005))
    ceiling = heap_ceiling(c)
    occupancy = np.clip((c.mem_base_mb + live) / ceiling, 0.01, 0.97)
    o0 = c.mem_base_mb / ceiling
    ratio = (occupancy / (1 - occupancy)) / (o0 / (1 - o0))
    thrash = np.clip((occupancy - 0.85) / 0.12, 0.0, 1.0) ** 2
    if c.runtime == "go":
        return (
            np.full(live.shape[1], base[0]),
            np.full(live.shape[1], base[1]),
            np.minimum(0.02 * ratio, 0.4).mean(axis=0),
        )
    frac = np.minimum(base[0] * ratio + 0.6 * thrash, 0.8).mean(axis=0)
    pause = (base[1] * occupancy / o0 + _FULL_GC.get(c.runtime, 0.3) * thrash).mean(axis=0)
    return frac, pause, np.zeros(live.shape[1])


#: A full collection of a nearly full heap (s).
_FULL_GC = {"jvm": 2.0, "node": 0.8, "python": 0.3}
#: Normal share of time in stop-the-world collection, and a typical pause (s), per runtime.
_BASE_GC = {"jvm": (0.02, 0.03), "go": (0.01, 0.001), "python": (0.005, 0.01), "node": (0.01, 0.008)}


def baseline_gc(runtime: str) -> tuple[float, float]:
    return _BASE_GC.get(runtime, (0.0, 0.0))
