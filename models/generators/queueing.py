"""Incidents from a queueing model of a microservice estate: latency and errors follow from load.

A generator built on a different principle from ``models._simulator``: nothing writes a symptom.
Each component is a multi-server queue (CPU cores, worker threads, connection pools), requests
flow through a call graph with timeouts and retries, caches absorb reads and send misses to the
database behind them, and load follows the day. A fault changes a mechanism (a capacity, a service
time, a hit ratio, a connection limit, liveness); the queues produce the consequences, and
exporters measure them as real ones do (rates over windows, histogram percentiles, RSS, scrape
gaps). See the module docstrings of the package's private modules for each part:

=========================== =====================================================================
``_queueing_system``         components, call graph, what each request does
``_queueing_capacity``       replicas, cores, threads, pools, ``max_connections`` for the peak
``_queueing_math``           Erlang C, Allen-Cunneen, the bounded Lindley backlog, lognormal tails
``_queueing_state``          the knobs faults turn and the state each second
``_queueing_layout``         the system as arrays and levels for the vectorised passes
``_queueing_dynamics``       traffic top-down, delay bottom-up, to a fixed point, per second
``_queueing_load``           daily curve and noise
``_queueing_events``         deploys, restarts, leaks, flushes, locks (what logs and pods show)
``_queueing_faults``         the ten faults as mechanisms
``_queueing_confounders``    bursts, noisy neighbours, harmless deploys, batch jobs, periodic blips
``_queueing_samples``        individual response times for percentiles
``_queueing_measure`` /      how exporters measure and name what happened
``_queueing_exporters``
``_queueing_alerts``         rules, ``for:``, evaluation interval, the paging alert
``_queueing_logs``           log lines and spans
``_queueing_observations``   DB snapshots, cache stats, probes, deploys, pods
=========================== =====================================================================

    from models.generators import queueing_cases, QueueingConfig
    cases = queueing_cases(100, seed=7, config=QueueingConfig(mode="metrics"))
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.domain._errors import GeneratorError
from models.domain._observations import Observations
from models.domain._telemetry import Telemetry
from models.domain._topology import ServiceNode, Topology
from models.domain._types import INJECTED_FAULTS, FaultType, ServiceKind
from models.generators._queueing_alerts import RuleBook, alert_payload, could_page, first_alert, rules
from models.generators._queueing_capacity import peak_knobs, plan_capacity
from models.generators._queueing_confounders import add_confounders, history
from models.generators._queueing_dynamics import simulate, simulate_if
from models.generators._queueing_events import Events, baseline_gc
from models.generators._queueing_exporters import Measured, export, measure
from models.generators._queueing_faults import candidates, inject
from models.generators._queueing_load import external_load, window_start
from models.generators._queueing_logs import service_logs, traces
from models.generators._queueing_observations import observe
from models.generators._queueing_samples import Randomness, draw
from models.generators._queueing_state import Knobs, State
from models.generators._queueing_system import System, draw_system
from models.generators._simulator import SimulatedIncident

#: Draws of target, onset and magnitude before settling for an incident users reported.
ATTEMPTS = 4


class QueueingConfig(BaseModel):
    """How queueing incidents are drawn. ``None`` fields are drawn per case from the seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Components (services, databases, caches); ``None``: 10-50 per case.
    n_services: int | None = Field(default=None, ge=10, le=50)
    #: Window length (s); the fault starts 30-60 % into it.
    duration: int = Field(default=600, ge=120, le=7200)
    #: Seconds between metric rows: 1 (RCAEval-like) or a scrape interval such as 15.
    step: int = Field(default=1, ge=1, le=60)
    #: ``metrics``: the RCAEval metrics frame only; ``full``: also logs, traces and observations.
    mode: Literal["metrics", "full"] = "full"
    #: Multiplier on fault magnitude (1 is typical); ``None``: drawn per case around 1.
    severity: float | None = Field(default=None, gt=0.0, le=4.0)
    #: Confounders per case (bursts, noisy neighbours, harmless deploys...); ``None``: 0-3.
    decoys: int | None = Field(default=None, ge=0, le=5)
    #: Chance that a fault which can come and go does (on and off every 20-90 s).
    p_flapping: float = Field(default=0.2, ge=0.0, le=1.0)
    #: Chance that a case has 5-15 % of its components exporting no metrics at all.
    p_uninstrumented: float = Field(default=0.15, ge=0.0, le=1.0)
    #: The ``env`` label of the alert.
    env: str = "production"


def queueing_incident(
    seed: int, fault: FaultType | None = None, *, config: QueueingConfig | None = None
) -> SimulatedIncident:
    """One incident, the same for the same arguments.

    Args:
        seed: everything random in the case derives from it.
        fault: the fault to inject; ``None`` draws one from the seed.
        config: see ``QueueingConfig``.
    """
    config = config or QueueingConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), 0x51E7]).spawn(8)]
    pick, build, load, faults, decoy, sampling, exporting, evidence = streams
    fault = FaultType(fault) if fault is not None else INJECTED_FAULTS[int(pick.integers(len(INJECTED_FAULTS)))]
    if fault not in INJECTED_FAULTS:
        raise GeneratorError(f"{fault.value!r} is a claim, not a fault to inject; faults: {', '.join(INJECTED_FAULTS)}")
    n = config.n_services or int(pick.integers(10, 51))
    for _ in range(5):
        system = draw_system(build, n)
        peak = plan_capacity(build, system)
        if fault != FaultType.CACHE:
            break
        # Cache incidents happen in estates whose databases lean on their caches.
        cold = _cold_cache_load(system)
        if cold.max() >= 0.8:
            break
    steps = config.duration
    baseline = Knobs.baseline(system, steps)
    for i, c in enumerate(system.components):
        baseline.gc_frac[i], baseline.gc_pause[i] = baseline_gc(c.runtime)
    past = Events()
    history(evidence, system, past)
    rate_window = int(exporting.choice([15, 30, 60])) if config.step < 15 else max(30, 2 * config.step)
    latency_window = max(int(exporting.choice([15, 30, 60])), config.step)
    book = RuleBook.draw(evidence)
    weights = _impact(system, peak, fault)
    randomness = Randomness.of(sampling, len(system.components), steps)
    if fault == FaultType.CACHE:
        weights = weights * (np.minimum(cold, 1.5) + 0.05)
        weights = weights / weights.sum()
    for attempt in range(ATTEMPTS):
        # An incident is a fault that paged: one that no rule noticed is drawn again, stronger.
        knobs = baseline.copy()
        start = window_start(load)
        knobs.ext = external_load(load, np.array([c.entry_rate for c in system.components]), start, steps)
        events = Events(history=dict(past.history))
        onset = int(faults.uniform(0.3, 0.6) * steps)
        target = int(faults.choice(len(weights), p=weights))
        severity = (config.severity or float(np.clip(faults.lognormal(0.0, 0.35), 0.5, 2.5))) * 1.4**attempt
        inject(
            faults, system, knobs, events, peak, fault, target, onset, severity=severity, p_flapping=config.p_flapping
        )
        count = config.decoys if config.decoys is not None else int(decoy.integers(0, 4))
        decoys = add_confounders(decoy, system, knobs, events, peak, count, target)
        last = attempt == ATTEMPTS - 1
        judge = _always if last else partial(could_page, book, system, knobs, events, onset)
        found = simulate_if(system, knobs, judge)
        if found is None:
            continue
        state = found
        samples = draw(randomness, system, knobs, state)
        measured = measure(
            exporting, system, knobs, state, samples, events, rate_window=rate_window, latency_window=latency_window
        )
        fired = first_alert(book, rules(book, system, measured, onset), onset, steps, paging_only=not last)
        if fired is not None:
            break
    alert, alert_time = alert_payload(fired, system, start, config.env, _noticed(system, measured, onset))
    export(
        exporting, system, knobs, state, events, measured,
        rate_window=rate_window, p_uninstrumented=config.p_uninstrumented,
    )  # fmt: skip
    rows = np.arange(0, steps, config.step)
    names = list(measured.columns)
    values = np.column_stack([start + rows] + [measured.columns[name][rows] for name in names]).astype(float)
    metrics = pd.DataFrame(values, columns=["time", *names])
    logs = spans = None
    observations = Observations()
    if config.mode == "full":
        logs = service_logs(evidence, system, knobs, state, measured, events, start)
        spans = traces(evidence, system, knobs, state, start)
        collected = int(alert_time - start + evidence.uniform(10, 40))
        observations = observe(
            evidence, system, knobs, state, measured, events, second=collected, start=start,
            in_cluster=bool(evidence.random() < 0.5),
        )  # fmt: skip
    return SimulatedIncident(
        id=f"queueing-{seed}-{fault.value}",
        seed=int(seed),
        telemetry=Telemetry(metrics=metrics, logs=logs, traces=spans),
        topology=topology_of(system),
        observations=observations,
        root_cause=(system.components[target].name, fault),
        inject_time=float(start + onset),
        alert_time=alert_time,
        alert=alert,
        decoys=decoys,
    )


def queueing_cases(
    n: int, seed: int, *, faults: list[FaultType] | None = None, config: QueueingConfig | None = None
) -> list[SimulatedIncident]:
    """``n`` incidents, fault types balanced over ``faults`` (every injectable one when ``None``).

    The same arguments give the same cases; case ``i`` has its own seed derived from ``seed``.
    """
    kinds = [FaultType(f) for f in (faults or INJECTED_FAULTS)]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xCA5E]))
    order = [kinds[i % len(kinds)] for i in range(n)]
    order = [order[i] for i in rng.permutation(n)]
    seeds = np.random.SeedSequence([int(seed), 0x5EED]).generate_state(n, dtype=np.uint32)
    return [queueing_incident(int(s), fault, config=config) for s, fault in zip(seeds, order, strict=True)]


def topology_of(system: System) -> Topology:
    """The ``Topology`` of a drawn system: kinds, engines, how executors reach each component."""
    nodes = []
    for c in system.components:
        if c.kind == ServiceKind.SERVICE:
            health = f"http://{c.name}.production.svc:8080/health"
            node = ServiceNode(name=c.name, kind=c.kind, namespace="production", deployment=c.name, health_url=health)
            nodes.append(node.model_copy(update={"replicas": c.replicas}))
        else:
            engine: Literal["postgres", "mysql"] | None = "mysql" if c.engine == "mysql" else None
            if c.engine == "postgres":
                engine = "postgres"
            nodes.append(ServiceNode(name=c.name, kind=c.kind, engine=engine, connection="default"))
    calls = [(system.components[e.caller].name, system.components[e.callee].name) for e in system.edges]
    return Topology(services=nodes, calls=calls)


def _always(state: State, step: int) -> bool:
    return True


def _impact(system: System, peak: State, fault: FaultType) -> np.ndarray:
    """How likely each component is to be the root cause of a recorded incident: among those the
    fault can hit, in proportion to the square root of their traffic (a failure nobody notices
    is not an incident, and busier components are noticed more)."""
    weights = np.zeros(len(system.components))
    for i in candidates(system, fault):
        weights[i] = np.sqrt(max(float(peak.arrivals[i, 0]), 0.1))
    return weights / weights.sum()


def _cold_cache_load(system: System) -> np.ndarray:
    """For each cache in front of a database, that database's CPU at the peak with the cache cold."""
    knobs = peak_knobs(system, 1)
    knobs.hit[:] = 0.0
    cold = simulate(system, knobs, rounds=1)
    load = np.zeros(len(system.components))
    for i, c in enumerate(system.components):
        if c.kind == ServiceKind.CACHE and c.backing_db >= 0:
            load[i] = float(cold.cpu_used[c.backing_db, 0] / cold.cpu_limit[c.backing_db, 0])
    return load


def _noticed(system: System, m: Measured, onset: int) -> tuple[int, int]:
    """Where and when users would complain if no rule fired: the entry whose p99 rose most."""
    best, second, rise = system.entries[0], onset, -np.inf
    for i in system.entries:
        before = np.nanmedian(m.p99[i, :onset]) if np.isfinite(m.p99[i, :onset]).any() else np.nan
        after = m.p99[i, onset:]
        if not np.isfinite(after).any() or not np.isfinite(before):
            continue
        peak = int(np.nanargmax(after))
        if after[peak] / before > rise:
            best, second, rise = i, onset + peak, float(after[peak] / before)
    return best, max(second, onset + 60) if second + 60 < m.p99.shape[1] else second
