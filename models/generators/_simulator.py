"""Incidents with known root causes over random call graphs: for tests, the demo and training.

What makes it honest (and the statistical baseline's life hard, as in production):

- Faults propagate to callers with per-edge delays: latency adds up along call paths (a caller
  making several calls to a slow dependency slows down *more* than it, in absolute terms),
  errors surface in callers, a component that is down takes traffic away from its callees,
  a cache that stops hitting sends its misses to the database behind it.
- Decoys: an unrelated CPU spike, a noisy service, a batch job with periodic bursts, a slow
  memory drift, harmless deploys, an analytics query running for an hour, chatty error logs,
  old pod restarts.
- Noise (AR(1) with occasional spikes, Poisson counters), missing metric columns, scrape gaps,
  components that export no metrics at all (the root cause may be one), faults that come and
  go, logs/traces/observations present only some of the time.
- The label never reaches the features: observations are produced for every database, cache,
  pod and for the health of the whole blast radius, faulty or not; the alert names the service
  that pages, usually a caller of the root cause.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import lfilter

from models.domain._errors import GeneratorError
from models.domain._observations import (
    PodStatus,
)
from models.domain._telemetry import Telemetry
from models.domain._topology import ServiceNode, Topology
from models.domain._types import FAULTS_BY_KIND, INJECTED_FAULTS, FaultType, ServiceKind
from models.generators._simulator_records import _Recordings
from models.generators._simulator_types import SimulatedIncident, SimulationConfig
from models.generators._simulator_vocabulary import (
    _APP_NAMES,
    _CACHE_NAMES,
    _DB_NAMES,
    _NAMESPACE,
    _OWN_ERRORS,
    _SLOW_QUERIES,
)

#: The three scenarios of the spec: a latency spike from a slow query, an error surge from a
#: dependency that is down, a database whose connection pool is exhausted.
SPEC_SCENARIOS: dict[int, FaultType] = {
    1: FaultType.DB_SLOW_QUERY,
    2: FaultType.DEPENDENCY_DOWN,
    3: FaultType.DB_POOL_EXHAUSTED,
}

#: The faults each kind of component can have here: ``FAULTS_BY_KIND``, except that this simulator's
#: pool exhaustion is a database's connection limit (a service's own pool is not simulated).
_INJECTABLE: dict[ServiceKind, tuple[FaultType, ...]] = {
    kind: tuple(f for f in faults if not (f is FaultType.DB_POOL_EXHAUSTED and kind is ServiceKind.SERVICE))
    for kind, faults in FAULTS_BY_KIND.items()
}

_AR_GRID = np.linspace(0.3, 0.9, 7)
_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z


def simulate_incident(
    seed: int,
    fault: FaultType | str | None = None,
    n_services: int | None = None,
    *,
    config: SimulationConfig | None = None,
    healthy: bool = False,
) -> SimulatedIncident:
    """One simulated incident, the same for the same arguments.

    Args:
        seed: any integer; everything random derives from it.
        fault: the fault type of the root cause (random by ``config.fault_weights`` if ``None``).
        n_services: the number of components (random in ``config.n_services`` if ``None``).
        config: the distribution; the defaults when ``None``.
        healthy: no fault at all, only noise and decoys (to measure false alarms).
    """
    chosen = FaultType(fault) if fault is not None else None
    if chosen is not None and chosen not in INJECTED_FAULTS:
        known = ", ".join(f.value for f in INJECTED_FAULTS)
        raise GeneratorError(f"{chosen.value!r} is a claim, not a fault to inject; inject one of {known}")
    return _Simulation(seed, chosen, n_services, config or SimulationConfig(), healthy).run()


def simulate_cases(
    n: int,
    seed: int,
    *,
    config: SimulationConfig | None = None,
    faults: list[FaultType] | None = None,
    n_services: int | None = None,
) -> list[SimulatedIncident]:
    """``n`` incidents; with ``faults`` they cycle through those fault types (balanced classes).

    Case ``i`` uses the seed derived from ``(seed, i)``, so two different ``seed`` values share
    no case.
    """
    cases = []
    for i in range(n):
        case_seed = case_seed_of(seed, i)
        fault = faults[i % len(faults)] if faults else None
        cases.append(simulate_incident(case_seed, fault, n_services, config=config))
    return cases


def case_seed_of(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, index, 0x5EED]).generate_state(1, dtype=np.uint64)[0] >> 1)


class _Simulation(_Recordings):
    """One run of the simulator; attributes are arrays indexed by component position."""

    def __init__(
        self, seed: int, fault: FaultType | None, n_services: int | None, config: SimulationConfig, healthy: bool
    ) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.config = config
        self.healthy = healthy
        self.requested_fault = fault
        self.requested_n = n_services
        self.decoy_notes: list[str] = []

    # -- topology -------------------------------------------------------------------------------

    def _topology(self) -> None:
        rng, config = self.rng, self.config
        n = self.requested_n or int(rng.integers(config.n_services[0], config.n_services[1] + 1))
        n = max(n, 4)
        n_db = max(1, round(n * config.database_share * rng.uniform(0.7, 1.3)))
        n_cache = max(1, round(n * config.cache_share * rng.uniform(0.7, 1.3))) if config.cache_share > 0 else 0
        fault = self.requested_fault
        if fault in (FaultType.DB_SLOW_QUERY, FaultType.DB_POOL_EXHAUSTED):
            n_db = max(n_db, 1)
        if fault is FaultType.CACHE:
            n_cache = max(n_cache, 1)
        n_app = max(n - n_db - n_cache, 2)
        names = _pick_names(rng, _APP_NAMES, n_app)
        kinds = [ServiceKind.SERVICE] * n_app
        names += _pick_names(rng, _DB_NAMES, n_db)
        kinds += [ServiceKind.DATABASE] * n_db
        names += _pick_names(rng, _CACHE_NAMES, n_cache)
        kinds += [ServiceKind.CACHE] * n_cache
        n = len(names)
        # Application services in layers; entry points first, callees always in deeper layers.
        n_layers = int(rng.integers(2, 6))
        layer = np.empty(n, dtype=int)
        n_entry = 1 if n_app < 15 else 2
        layer[:n_entry] = 0
        layer[n_entry:n_app] = np.sort(rng.integers(1, n_layers, size=n_app - n_entry))
        layer[n_app:] = n_layers
        edges: set[tuple[int, int]] = set()
        for s in range(n_entry, n_app):
            shallower = np.flatnonzero(layer[:n_app] < layer[s])
            for caller in rng.choice(shallower, size=min(len(shallower), int(rng.integers(1, 3))), replace=False):
                edges.add((int(caller), s))
        for s in range(n_app):
            deeper = np.flatnonzero(layer[:n_app] > layer[s])
            extra = int(rng.integers(0, 3))
            if len(deeper) and extra:
                for callee in rng.choice(deeper, size=min(extra, len(deeper)), replace=False):
                    edges.add((s, int(callee)))
        deep_apps = np.flatnonzero(layer[:n_app] >= max(1, n_layers // 2))
        if len(deep_apps) == 0:
            deep_apps = np.arange(n_app)
        for store in range(n_app, n):
            pool = deep_apps if rng.random() < 0.8 else np.arange(n_app)
            for caller in rng.choice(pool, size=min(len(pool), int(rng.integers(1, 4))), replace=False):
                edges.add((int(caller), store))
        self.n, self.names, self.kinds, self.layer = n, names, kinds, layer
        self.edges = sorted(edges)
        self.callees: list[list[int]] = [[] for _ in range(n)]
        self.callers: list[list[int]] = [[] for _ in range(n)]
        for caller, callee in self.edges:
            self.callees[caller].append(callee)
            self.callers[callee].append(caller)
        # Per edge: calls per request (sequential), delay before the caller feels it, and the
        # share of the callee's errors that surface in the caller.
        self.multiplicity = {edge: float(rng.uniform(0.3, 2.0)) for edge in self.edges}
        self.delay = {edge: int(rng.integers(1, 5)) for edge in self.edges}
        self.error_pass = {edge: float(rng.uniform(0.3, 1.0)) for edge in self.edges}
        order: list[int] = []
        seen: set[int] = set()

        def visit(node: int) -> None:
            if node in seen:
                return
            seen.add(node)
            for callee in self.callees[node]:
                visit(callee)
            order.append(node)

        for node in range(n):
            visit(node)
        self.bottom_up = order  # callees before callers
        services = []
        for i, name in enumerate(names):
            kind = kinds[i]
            services.append(
                ServiceNode(
                    name=name,
                    kind=kind,
                    engine=("postgres" if rng.random() < 0.6 else "mysql") if kind is ServiceKind.DATABASE else None,
                    connection=name if kind is not ServiceKind.SERVICE else None,
                    namespace=_NAMESPACE,
                    deployment=name,
                    health_url=f"http://{name}.{_NAMESPACE}.svc:8080/health" if kind is ServiceKind.SERVICE else None,
                    host=name,
                    replicas=int(rng.integers(1, 5)),
                )
            )
        self.topology = Topology(services=services, calls=[(names[a], names[b]) for a, b in self.edges])

    # -- the fault ------------------------------------------------------------------------------

    def _choose_fault(self) -> None:
        rng = self.rng
        self.T = int(self.config.duration / self.config.step)
        self.start = float(_EPOCH + int(rng.integers(0, 300 * 86400)))
        self.times = self.start + np.arange(self.T) * self.config.step
        self.inject = int(rng.integers(int(0.5 * self.T), int(0.7 * self.T)))
        if self.healthy:
            self.fault, self.root = None, None
            return
        possible = {f for i in range(self.n) for f in _INJECTABLE[self.kinds[i]]}
        fault = self.requested_fault
        if fault is None:
            weights = self.config.weights()
            faults = [f for f in INJECTED_FAULTS if weights[f] > 0 and f in possible] or sorted(
                possible & set(INJECTED_FAULTS)
            )
            probabilities = np.array([max(weights[f], 1e-9) for f in faults])
            fault = faults[int(rng.choice(len(faults), p=probabilities / probabilities.sum()))]
        candidates = [i for i in range(self.n) if fault in _INJECTABLE[self.kinds[i]]]
        if not candidates:
            raise ValueError(f"no component of this topology can have the fault {fault}")
        if fault in (FaultType.DB_POOL_EXHAUSTED, FaultType.DB_SLOW_QUERY, FaultType.CACHE):
            # A store nobody calls cannot hurt anyone.
            candidates = [i for i in candidates if self.callers[i]] or candidates
        self.fault = fault
        self.root = int(rng.choice(candidates))

    # -- signals --------------------------------------------------------------------------------

    def _ramp(self, start: int, length: float) -> np.ndarray:
        t = np.arange(self.T, dtype=float)
        return np.clip((t - start) / max(length, 1.0), 0.0, 1.0) * (t >= start)

    def _noise(self, sigma: np.ndarray, spikes: np.ndarray, rows: int) -> np.ndarray:
        """Relative AR(1) noise with occasional spikes, shape ``(len(sigma), rows, T)``: each
        component has its own level and spikiness, each series its own autocorrelation."""
        rng, T = self.rng, self.T
        shape = (len(sigma), rows)
        # Autocorrelations from a small grid, so that one filter call serves many series.
        phi = rng.choice(_AR_GRID, shape)
        scale = (sigma[:, None] * np.sqrt(1 - phi**2))[..., None]
        innovations = rng.normal(0.0, 1.0, (*shape, T)) * scale
        series = np.empty_like(innovations)
        for value in _AR_GRID:
            chosen = phi == value
            if chosen.any():
                series[chosen] = lfilter([1.0], [1.0, -value], innovations[chosen], axis=-1)
        hits = rng.random((*shape, T)) < spikes[:, None, None]
        count = int(hits.sum())
        sizes = np.broadcast_to(sigma[:, None, None], hits.shape)[hits]
        series[hits] += sizes * rng.uniform(3.0, 8.0, count) * rng.choice([-0.5, 1.0], count)
        return series

    def _effects(self) -> None:
        """Per-component additive effects of the fault and the decoys, before propagation."""
        rng, n, T = self.rng, self.n, self.T
        zeros = lambda: np.zeros((n, T))  # noqa: E731
        self.own_latency = zeros()  # ms
        self.own_errors = zeros()  # error ratio
        self.cpu_add, self.mem_add, self.disk_add, self.net_add = zeros(), zeros(), zeros(), zeros()
        self.conn_add, self.slow_add, self.hit_drop, self.evict_add = zeros(), zeros(), zeros(), zeros()
        self.down = np.zeros((n, T), dtype=bool)
        self.pool_full = np.zeros((n, T), dtype=bool)
        self.scrape_lost = np.zeros(n, dtype=bool)
        self.sigma = rng.uniform(*self.config.noise, size=n)
        self.spike_rate = np.full(n, 0.001)
        self.caller_cause: dict[int, str] = {}
        self.own_messages: dict[int, tuple[str, ...]] = {}
        self.deploy_at: dict[int, float] = {}
        self.pod_state: dict[int, PodStatus] = {}
        self.db_state: dict[int, dict[str, Any]] = {}
        self.cache_full: set[int] = set()
        self.base = self._baselines()
        if self.fault is not None and self.root is not None:
            effects = (
                "own_latency",
                "own_errors",
                "cpu_add",
                "mem_add",
                "disk_add",
                "net_add",
                "conn_add",
                "slow_add",
                "hit_drop",
                "evict_add",
            )
            before = {name: getattr(self, name).copy() for name in effects}
            self._inject(self.fault, self.root)
            # A leak accumulates and a deploy stays deployed; other faults may come and go.
            flapping = self.fault not in (FaultType.MEMORY, FaultType.BAD_DEPLOY)
            if flapping and rng.random() < self.config.p_intermittent:
                period = int(rng.integers(30, 91))
                duty = rng.uniform(0.4, 0.7)
                t = np.arange(T) - self.inject
                on = np.where(t < 0, 0.0, ((t % period) < duty * period).astype(float))
                for name in effects:
                    setattr(self, name, before[name] + (getattr(self, name) - before[name]) * on)
                self.down &= on > 0
                self.pool_full &= on > 0
                self.decoy_notes.append(f"intermittent fault (period {period} s)")
        self._decoys()

    def _baselines(self) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.n
        kinds = np.array([k.value for k in self.kinds])
        own = np.where(kinds == "service", rng.lognormal(np.log(15), 0.5, n), 0.0)
        own = np.where(kinds == "database", rng.uniform(2, 10, n), own)
        own = np.where(kinds == "cache", rng.uniform(0.3, 2, n), own)
        return {
            "own_latency": own,
            "cpu": rng.uniform(10, 50, n),
            "mem": rng.uniform(200, 3000, n),
            "disk": np.where(kinds == "database", rng.uniform(10, 60, n), rng.uniform(0.5, 20, n)),
            "errors": rng.uniform(0.0005, 0.01, n),
            "net": rng.uniform(0.1, 2.0, n),
            "max_conn": rng.choice([100, 150, 200, 300, 500], n).astype(float),
            "conn_share": rng.uniform(0.1, 0.45, n),
            "slow": rng.uniform(0.0, 0.3, n),
            "hit": rng.uniform(0.85, 0.99, n),
            "evict": rng.uniform(0.0, 2.0, n),
            "entry_rps": rng.uniform(50, 400, n),
            "p90": rng.uniform(1.5, 3.0, n),
        }

    def _inject(self, fault: FaultType, r: int) -> None:
        rng, base, T = self.rng, self.base, self.T
        g = self.config.severity * rng.uniform(0.4, 1.4)
        start = self.inject
        ramp = self._ramp(start, rng.uniform(2, 10))
        own = base["own_latency"][r]
        if fault in (FaultType.CPU, FaultType.LATENCY):
            self._mark_callers(r, "slow")
        if fault is FaultType.CPU:
            self.cpu_add[r] += ramp * (min(95.0, base["cpu"][r] + 45 * g) - base["cpu"][r])
            self.own_latency[r] += ramp * own * rng.uniform(1.0, 4.0) * g
            if rng.random() < 0.3:  # requests time out under saturation
                self.own_errors[r] += ramp * rng.uniform(0.01, 0.05) * g
        elif fault is FaultType.MEMORY:
            leak = self._ramp(start, rng.uniform(60, 240))
            self.mem_add[r] += leak * base["mem"][r] * rng.uniform(0.8, 2.0) * g
            self.own_latency[r] += leak * own * rng.uniform(0.3, 1.5) * g
            if rng.random() < 0.4:  # garbage collection burns CPU
                self.cpu_add[r] += leak * rng.uniform(10, 30) * g
            if rng.random() < 0.5:  # OOM kills: the sawtooth resets and a burst of errors
                kill = start + int(rng.integers(90, max(91, T - start - 5))) if T - start > 100 else T - 2
                if kill < T - 1:
                    self.mem_add[r, kill:] = 0.3 * self.mem_add[r, kill:]
                    self.own_errors[r, kill : kill + 15] += 0.3
                self.pod_state[r] = PodStatus(
                    service=self.names[r], restarts=int(rng.integers(1, 4)), ready=True, reason="OOMKilled"
                )
            elif rng.random() < 0.5:
                self.pod_state[r] = PodStatus(service=self.names[r], restarts=1, ready=True, reason="OOMKilled")
        elif fault is FaultType.DISK:
            self.disk_add[r] += ramp * base["disk"][r] * rng.uniform(3, 10) * g
            self.own_latency[r] += ramp * own * rng.uniform(1.0, 3.0) * g
            if rng.random() < 0.4:
                self.own_errors[r] += ramp * 0.02 * g
        elif fault is FaultType.LATENCY:
            self.own_latency[r] += ramp * rng.uniform(100, 1000) * g
            if rng.random() < 0.3:  # some callers give up
                self.own_errors[r] += ramp * rng.uniform(0.005, 0.03) * g
        elif fault is FaultType.NETWORK_ERRORS:
            self.own_errors[r] += ramp * rng.uniform(0.05, 0.3) * g
            self.net_add[r] += ramp * base["net"][r] * rng.uniform(5, 20) * g
            self.own_latency[r] += ramp * rng.uniform(20, 200) * g
            self._mark_callers(r, "network")
        elif fault is FaultType.DB_SLOW_QUERY:
            self.own_latency[r] += ramp * rng.uniform(200, 2000) * g
            self.slow_add[r] += ramp * rng.uniform(2, 10) * g
            self.cpu_add[r] += ramp * rng.uniform(15, 40) * g
            self.conn_add[r] += ramp * base["max_conn"][r] * rng.uniform(0.15, 0.35)
            self._mark_callers(r, "slow")
            self.db_state[r] = {
                "long_running": int(rng.integers(3, 21)),
                "longest": float(rng.uniform(30, 300)),
                "query": str(rng.choice(_SLOW_QUERIES)),
                "state": "active",
            }
        elif fault is FaultType.DB_POOL_EXHAUSTED:
            fill = self._ramp(start, rng.uniform(10, 30))
            self.conn_add[r] += fill * base["max_conn"][r]
            self.pool_full[r] = fill >= 1.0
            self.own_latency[r] += ramp * rng.uniform(2, 20)
            for caller in self.callers[r]:
                self.own_errors[caller] += ramp * rng.uniform(0.05, 0.4) * g
                self.own_latency[caller] += ramp * rng.uniform(150, 900) * g
            self._mark_callers(r, "pool")
            self.db_state[r] = {
                "long_running": int(rng.integers(0, 6)),
                "longest": float(rng.uniform(60, 900)),
                "query": "COMMIT" if rng.random() < 0.5 else str(rng.choice(_SLOW_QUERIES)),
                "state": "idle in transaction",
            }
        elif fault is FaultType.DEPENDENCY_DOWN:
            self.down[r] = self._ramp(start, 1) >= 1.0
            self.scrape_lost[r] = rng.random() < 0.6
            self._mark_callers(r, "down")
            if rng.random() < 0.6:
                self.pod_state[r] = PodStatus(
                    service=self.names[r], restarts=int(rng.integers(2, 9)), ready=False, reason="CrashLoopBackOff"
                )
        elif fault is FaultType.CACHE:
            self.hit_drop[r] += ramp * rng.uniform(0.3, 0.7) * g
            self.evict_add[r] += ramp * rng.uniform(50, 500) * g
            self.mem_add[r] += ramp * base["mem"][r] * rng.uniform(0.2, 0.5)
            self.cache_full.add(r)
        elif fault is FaultType.BAD_DEPLOY:
            self.deploy_at[r] = float(self.times[start] - rng.uniform(0, 30))
            effects = rng.random(4) < np.array([0.7, 0.5, 0.3, 0.3])
            if not effects[:2].any():
                effects[int(rng.integers(0, 2))] = True
            if effects[0]:
                self.own_errors[r] += ramp * rng.uniform(0.05, 0.5) * g
            if effects[1]:
                self.own_latency[r] += ramp * own * rng.uniform(0.5, 3.0) * g
            if effects[2]:
                self.cpu_add[r] += ramp * rng.uniform(-10, 30) * g
            if effects[3]:
                self.mem_add[r] += ramp * base["mem"][r] * rng.uniform(0.1, 0.6) * g
            if rng.random() < 0.3:
                self.pod_state[r] = PodStatus(
                    service=self.names[r], restarts=int(rng.integers(1, 4)), ready=True, reason="Error"
                )
        if _OWN_ERRORS.get(fault):
            self.own_messages[r] = _OWN_ERRORS[fault]

    def _mark_callers(self, r: int, cause: str) -> None:
        for caller in self.callers[r]:
            self.caller_cause.setdefault(caller, cause)

    def _decoys(self) -> None:
        rng, config = self.rng, self.config
        # Decoys land anywhere, the root cause included: a noisy or freshly deployed component can
        # still be the one that broke.
        others = list(range(self.n))
        kinds = ["cpu_spike", "noisy", "batch", "drift", "deploys", "analytics", "chatty_logs", "old_restarts"]
        count = int(rng.integers(config.decoys[0], config.decoys[1] + 1))
        chosen = rng.choice(kinds, size=min(count, len(kinds)), replace=False)
        self.chatty: int | None = None
        self.analytics: int | None = None
        self.decoy_deploys: list[tuple[int, float]] = []
        for kind in chosen:
            victim = int(rng.choice(others))
            name = self.names[victim]
            if kind == "cpu_spike":
                at = self.inject + int(rng.integers(-60, 120))
                length = int(rng.integers(20, 120))
                bump = self._ramp(at, 3) - self._ramp(at + length, 3)
                self.cpu_add[victim] += bump * rng.uniform(30, 50)
                self.decoy_notes.append(f"cpu spike on {name}")
            elif kind == "noisy":
                self.sigma[victim] *= rng.uniform(3, 5)
                self.spike_rate[victim] = 0.02
                self.decoy_notes.append(f"noisy {name}")
            elif kind == "batch":
                period = int(rng.integers(60, 180))
                width = int(rng.integers(10, 30))
                phase = int(rng.integers(0, period))
                t = np.arange(self.T)
                on = ((t + phase) % period) < width
                self.disk_add[victim] += on * self.base["disk"][victim] * rng.uniform(3, 8)
                self.cpu_add[victim] += on * rng.uniform(10, 30)
                self.decoy_notes.append(f"batch job on {name}")
            elif kind == "drift":
                self.mem_add[victim] += np.linspace(0, rng.uniform(0.3, 0.8), self.T) * self.base["mem"][victim]
                self.decoy_notes.append(f"memory drift on {name}")
            elif kind == "deploys":
                for target in rng.choice(others, size=min(len(others), int(rng.integers(1, 4))), replace=False):
                    when = float(self.times[self.inject] + rng.uniform(-400, 60))
                    self.decoy_deploys.append((int(target), when))
                self.decoy_notes.append("harmless deploys")
            elif kind == "analytics":
                dbs = [i for i in others if self.kinds[i] is ServiceKind.DATABASE]
                if dbs:
                    self.analytics = int(rng.choice(dbs))
                    self.decoy_notes.append(f"analytics query on {self.names[self.analytics]}")
            elif kind == "chatty_logs":
                self.chatty = victim
                self.decoy_notes.append(f"chatty error logs on {name}")
            elif kind == "old_restarts" and victim not in self.pod_state:
                reason = str(rng.choice(["Error", "Completed", "OOMKilled"]))
                self.pod_state[victim] = PodStatus(
                    service=name, restarts=int(rng.integers(1, 6)), ready=True, reason=reason
                )
                self.decoy_notes.append(f"old restarts on {name}")

    def _propagate(self) -> None:
        """Latency, errors and traffic through the call graph, callees first."""
        rng, n, T, base = self.rng, self.n, self.T, self.base
        self.latency = np.zeros((n, T))
        self.errors = np.zeros((n, T))
        self.rps = np.zeros((n, T))
        # Traffic flows top-down: entry points first.
        entry_shape = 1 + 0.1 * np.sin(np.arange(T) / T * 2 * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
        for s in reversed(self.bottom_up):
            if not self.callers[s]:
                self.rps[s] = base["entry_rps"][s] * entry_shape
            for callee in self.callees[s]:
                m = self.multiplicity[(s, callee)]
                served = np.where(self.down[s], 0.0, 1.0)
                self.rps[callee] += self.rps[s] * m * served
        own_noise = self._noise(self.sigma, self.spike_rate, 1)[:, 0]
        for s in self.bottom_up:
            own = base["own_latency"][s] * (1 + own_noise[s]) + self.own_latency[s]
            total = own.copy()
            errors = base["errors"][s] * (1 + 0.5 * own_noise[s]) + self.own_errors[s]
            for callee in self.callees[s]:
                edge = (s, callee)
                d = self.delay[edge]
                m = self.multiplicity[edge]
                callee_latency = _shift(self.latency[callee], d)
                callee_down = _shift(self.down[callee].astype(float), d)
                # Calls to a component that is down fail fast or time out: both hurt the caller.
                timeout_cost = callee_down * rng.uniform(100, 800) * min(m, 1.0)
                total += m * callee_latency * (1 - callee_down) + timeout_cost
                errors += self.error_pass[edge] * (_shift(self.errors[callee], d) + callee_down * min(m, 1.0) * 0.6)
            if self.kinds[s] is ServiceKind.CACHE:
                # Misses go to the databases this cache's callers also call; callers come later in
                # ``bottom_up``, so the extra latency set here is in their totals.
                drop = self.hit_drop[s]
                if drop.any():
                    for caller in self.callers[s]:
                        dbs = [c for c in self.callees[caller] if self.kinds[c] is ServiceKind.DATABASE]
                        for db in dbs:
                            extra = self.rps[caller] * self.multiplicity[(caller, s)] * drop
                            self.rps[db] += extra
                            self.cpu_add[db] += 30 * extra / (self.rps[db] + extra + 1e-9)
                            self.own_latency[caller] += drop * base["own_latency"][db] * rng.uniform(2, 6)
            self.latency[s] = np.maximum(total, 0.05)
            self.errors[s] = np.clip(errors, 0.0, 1.0)
        self.own_noise = own_noise

    def run(self) -> SimulatedIncident:
        self._topology()
        self._choose_fault()
        self._effects()
        self._propagate()
        self._blast_radius()
        metrics = self._metrics()
        logs = self._logs()
        traces = self._traces()
        observations = self._observations()
        alert_time, alert = self._alert()
        root = None if self.root is None or self.fault is None else (self.names[self.root], self.fault)
        return SimulatedIncident(
            id=f"sim-{self.seed:x}",
            seed=self.seed,
            telemetry=Telemetry(metrics=metrics, logs=logs, traces=traces),
            topology=self.topology,
            observations=observations,
            root_cause=root,
            inject_time=float(self.times[self.inject]) if root else None,
            alert_time=alert_time,
            alert=alert,
            decoys=self.decoy_notes,
        )


def _pick_names(rng: np.random.Generator, pool: tuple[str, ...], count: int) -> list[str]:
    order = rng.permutation(len(pool))
    names = []
    for k in range(count):
        name = pool[order[k % len(pool)]]
        names.append(name if k < len(pool) else f"{name}-{k // len(pool) + 1}")
    return names


def _shift(values: np.ndarray, delay: int) -> np.ndarray:
    if delay <= 0:
        return values
    return np.concatenate([np.repeat(values[:1], delay), values[:-delay]])
