"""Things that happen in a window and are not the root cause.

A traffic burst at an entry (a campaign, a crawler), a noisy neighbour taking CPU from a service
(node contention: its capacity shrinks though its own usage does not grow), a harmless deploy of
another service (fresh pods, JIT warm-up, memory back to its floor), a batch job hitting a database
on its schedule, and a short periodic blip in some service (a cron inside the pod). Each is kept
mild: strong enough to move metrics, rarely enough to page on its own.
"""

from __future__ import annotations

import numpy as np

from models.domain._types import ServiceKind
from models.generators._queueing_events import Events
from models.generators._queueing_faults import deploy
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import System

KINDS = ("traffic_burst", "noisy_neighbour", "harmless_deploy", "batch_job", "periodic_blip")


def add_confounders(
    rng: np.random.Generator,
    system: System,
    knobs: Knobs,
    events: Events,
    peak: State,
    count: int,
    root: int,
) -> list[str]:
    """Add ``count`` confounders (distinct kinds) away from ``root``; the components they hit."""
    steps = knobs.ext.shape[1]
    kinds = [k for k in KINDS if k != "batch_job" or any(c.is_batch for c in system.components)]
    chosen = [str(k) for k in rng.choice(kinds, size=min(count, len(kinds)), replace=False)]
    services = [
        i for i, c in enumerate(system.components) if c.kind == ServiceKind.SERVICE and i != root and not c.is_batch
    ]
    hit: list[str] = []
    for kind in chosen:
        start = int(rng.uniform(0.05, 0.85) * steps)
        length = int(rng.uniform(30, 180))
        window = (np.arange(steps) >= start) & (np.arange(steps) < start + length)
        if kind == "traffic_burst":
            entry = int(rng.choice(system.entries))
            rise = np.clip((np.arange(steps) - start) / rng.uniform(5, 20), 0, 1) * window
            knobs.ext[entry] *= 1.0 + rng.uniform(0.2, 0.6) * rise
            hit.append(system.components[entry].name)
        elif kind == "noisy_neighbour" and services:
            i = int(rng.choice(services))
            knobs.cpu_cap[i] *= np.where(window, rng.uniform(0.65, 0.85), 1.0)
            hit.append(system.components[i].name)
        elif kind == "harmless_deploy" and services:
            i = int(rng.choice(services))
            deploy(rng, system, knobs, events, i, start)
            hit.append(system.components[i].name)
        elif kind == "batch_job":
            batch = next(i for i, c in enumerate(system.components) if c.is_batch)
            edge = system.edges[system.out_edges(batch)[0]]
            db = system.components[edge.callee]
            # Sized to take 15-35 % of the database's cores while it runs.
            rate = rng.uniform(0.15, 0.35) * db.cores / (edge.cpu_time * edge.p * edge.calls)
            knobs.ext[batch] += rate * window
            hit.append(system.components[batch].name)
        elif kind == "periodic_blip" and services:
            i = int(rng.choice(services))
            period, burst = int(rng.uniform(30, 120)), int(rng.uniform(3, 10))
            blips = ((np.arange(steps) - start) % period < burst) & (np.arange(steps) >= start)
            knobs.io_add[i] += blips * float(rng.uniform(0.5, 2.0) * max(float(peak.resp[i, 0]), 0.005))
            hit.append(system.components[i].name)
    return hit


def history(rng: np.random.Generator, system: System, events: Events) -> None:
    """Restarts from before the window (days ago) that pods still show: an old OOM kill, a crash."""
    for i, c in enumerate(system.components):
        if c.kind == ServiceKind.SERVICE and rng.random() < 0.2:
            reason = str(rng.choice(["OOMKilled", "Error", "Completed"], p=[0.3, 0.5, 0.2]))
            events.history[i] = (int(rng.integers(1, 6)), reason)
