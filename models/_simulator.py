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

import hashlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.signal import lfilter

from models._observations import CacheStats, DbSnapshot, DeployEvent, HealthCheck, Observations, PodStatus, TopQuery
from models._telemetry import Telemetry
from models._topology import ServiceNode, Topology
from models._types import FAULTS_BY_KIND, FaultType, ServiceKind

#: The three scenarios of the spec: a latency spike from a slow query, an error surge from a
#: dependency that is down, a database whose connection pool is exhausted.
SPEC_SCENARIOS: dict[int, FaultType] = {
    1: FaultType.DB_SLOW_QUERY,
    2: FaultType.DEPENDENCY_DOWN,
    3: FaultType.DB_POOL_EXHAUSTED,
}

_APP_NAMES = (
    "frontend",
    "api-gateway",
    "checkout",
    "cart",
    "payment",
    "shipping",
    "catalog",
    "recommendation",
    "ad",
    "email",
    "currency",
    "user",
    "auth",
    "order",
    "inventory",
    "search",
    "review",
    "notification",
    "pricing",
    "billing",
    "profile",
    "media",
    "analytics",
    "loyalty",
    "coupon",
    "wishlist",
    "tax",
    "fraud",
    "ledger",
    "geo",
    "quote",
    "invoice",
    "returns",
    "rating",
    "feed",
    "chat",
    "upload",
    "report",
    "audit",
    "scheduler",
    "webhook",
    "export",
    "import",
    "promo",
    "gift",
    "stock",
    "vendor",
)
_DB_NAMES = (
    "orders-db",
    "users-db",
    "inventory-db",
    "payments-db",
    "catalog-db",
    "events-db",
    "ledger-db",
    "billing-db",
)
_CACHE_NAMES = ("session-cache", "catalog-cache", "redis-main", "price-cache", "token-cache")
_NAMESPACE = "production"
_AR_GRID = np.linspace(0.3, 0.9, 7)
_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z

_SLOW_QUERIES = (
    "SELECT o.* FROM orders o WHERE o.customer_id = $1 ORDER BY o.created_at DESC",
    "SELECT * FROM order_items WHERE order_id = $1",
    "UPDATE inventory SET reserved = reserved + 1 WHERE sku = $1",
    "SELECT count(*) FROM payments WHERE status = 'pending' AND merchant_id = $1",
)
_ANALYTICS_QUERY = "SELECT date_trunc('day', created_at), count(*) FROM events GROUP BY 1 ORDER BY 1"
_GENERIC_ERRORS = (
    "request failed: internal error",
    "unexpected EOF while reading request body",
    "validation failed for request: missing field 'id'",
    "handler returned 500: context canceled",
)
_OWN_ERRORS: dict[FaultType, tuple[str, ...]] = {
    FaultType.CPU: ("request timed out after 5000ms: worker pool saturated", "event loop blocked for 1200ms"),
    FaultType.MEMORY: ("java.lang.OutOfMemoryError: Java heap space", "GC overhead limit exceeded"),
    FaultType.DISK: ("write failed: No space left on device", "fsync took 4.2s on /var/lib/data"),
    FaultType.LATENCY: ("slow response served in 1450ms",),
    FaultType.NETWORK_ERRORS: ("read tcp: connection reset by peer", "i/o timeout on outbound connection"),
    FaultType.DB_SLOW_QUERY: ("duration: 12873 ms statement: " + _SLOW_QUERIES[0],),
    FaultType.DB_POOL_EXHAUSTED: ("FATAL: sorry, too many clients already", "Too many connections"),
    FaultType.DEPENDENCY_DOWN: (),
    FaultType.CACHE: ("OOM command not allowed when used memory > 'maxmemory'",),
    FaultType.BAD_DEPLOY: (
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "NullPointerException at OrderHandler.handle(OrderHandler.java:42)",
        "unknown field 'currency_code' in response from config",
    ),
}
_CALLER_ERRORS: dict[str, tuple[str, ...]] = {
    "generic": ("upstream {callee} returned 503", "call to {callee} failed: status 500"),
    "down": ("call to {callee} failed: connection refused", "dial tcp {callee}:8080: no route to host"),
    "slow": ("timeout waiting for {callee} after 3000ms", "deadline exceeded calling {callee}"),
    "pool": (
        "could not obtain connection from pool for {callee} within 30000ms",
        "connection pool exhausted ({callee})",
    ),
    "network": ("connection reset by peer while calling {callee}", "{callee}: broken pipe"),
}


class SimulationConfig(BaseModel):
    """The distribution incidents are drawn from. Shift it to test learning on new ground."""

    model_config = ConfigDict(frozen=True)

    n_services: tuple[int, int] = (10, 50)
    #: Seconds of data and seconds between samples.
    duration: int = Field(default=600, ge=120)
    step: float = Field(default=1.0, gt=0)
    #: Relative weights of fault types (those not listed weigh 0; empty means uniform).
    fault_weights: dict[FaultType, float] = Field(default_factory=dict)
    database_share: float = Field(default=0.15, ge=0, le=0.5)
    cache_share: float = Field(default=0.08, ge=0, le=0.5)
    #: Range of each service's relative noise level.
    noise: tuple[float, float] = (0.02, 0.12)
    #: Multiplies every fault's magnitude (below 1: subtler incidents).
    severity: float = Field(default=1.0, gt=0)
    #: How many decoys per case (min, max).
    decoys: tuple[int, int] = (1, 4)
    p_missing_metrics: float = Field(default=0.3, ge=0, le=1)
    p_logs: float = Field(default=0.8, ge=0, le=1)
    p_traces: float = Field(default=0.5, ge=0, le=1)
    p_db: float = Field(default=0.7, ge=0, le=1)
    p_health: float = Field(default=0.7, ge=0, le=1)
    p_cache: float = Field(default=0.7, ge=0, le=1)
    p_deploys: float = Field(default=0.8, ge=0, le=1)
    p_pods: float = Field(default=0.6, ge=0, le=1)
    #: Chance that the fault flaps (on and off every 30-90 s) instead of staying on.
    p_intermittent: float = Field(default=0.2, ge=0, le=1)
    #: Chance that some components (5-15 %, the root cause among them or not) export no metrics.
    p_uninstrumented: float = Field(default=0.15, ge=0, le=1)

    def weights(self) -> dict[FaultType, float]:
        if not self.fault_weights:
            return dict.fromkeys(FaultType, 1.0)
        return {fault: float(self.fault_weights.get(fault, 0.0)) for fault in FaultType}


class SimulatedIncident(BaseModel):
    """One incident and its ground truth (``root_cause`` is ``None`` for a healthy case)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    id: str
    seed: int
    telemetry: Telemetry
    topology: Topology
    observations: Observations
    root_cause: tuple[str, FaultType] | None
    #: When the fault began (ground truth, for evaluation only).
    inject_time: float | None
    alert_time: float
    alert: dict[str, Any]
    decoys: list[str] = Field(default_factory=list)


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
    return _Simulation(
        seed, FaultType(fault) if fault is not None else None, n_services, config or SimulationConfig(), healthy
    ).run()


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


class _Simulation:
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
        possible = {f for i in range(self.n) for f in FAULTS_BY_KIND[self.kinds[i]]}
        fault = self.requested_fault
        if fault is None:
            weights = self.config.weights()
            faults = [f for f in FaultType if weights[f] > 0 and f in possible] or sorted(possible)
            probabilities = np.array([max(weights[f], 1e-9) for f in faults])
            fault = faults[int(rng.choice(len(faults), p=probabilities / probabilities.sum()))]
        candidates = [i for i in range(self.n) if fault in FAULTS_BY_KIND[self.kinds[i]]]
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

    # -- telemetry ------------------------------------------------------------------------------

    def _metrics(self) -> pd.DataFrame:
        rng, base, T = self.rng, self.base, self.T
        names: list[str] = []
        owners: list[int] = []
        blocks: list[np.ndarray] = []
        noises = self._noise(self.sigma, self.spike_rate, 9)
        for s in range(self.n):
            name, kind = self.names[s], self.kinds[s]
            rps_base = max(float(np.median(self.rps[s][: self.inject])), 1e-3)
            load = np.clip(self.rps[s] / rps_base, 0.0, 10.0)
            noise = noises[s]
            cpu = np.clip(base["cpu"][s] * load**0.7 * (1 + noise[0]) + self.cpu_add[s], 0.5, 100.0)
            mem = np.maximum(base["mem"][s] * (1 + 0.2 * noise[1]) + self.mem_add[s], 10.0)
            disk = np.maximum(base["disk"][s] * load**0.5 * (1 + noise[2]) + self.disk_add[s], 0.0)
            latency = self.latency[s] * (1 + 0.5 * noise[3])
            p90 = latency * base["p90"][s] * (1 + 0.5 * np.abs(noise[4]))
            rps = np.maximum(self.rps[s] * (1 + 0.5 * noise[5]), 0.0)
            errors = rng.poisson(np.clip(self.errors[s] * self.rps[s], 0, 1e6)).astype(float)
            net = np.maximum(base["net"][s] * load * (1 + noise[6]) + self.net_add[s], 0.0)
            down = self.down[s]
            if down.any():
                rps[down] = 0.0
                cpu[down] = rng.uniform(0.5, 2.0, down.sum())
                errors[down] = 0.0
                latency[down] = np.nan
                p90[down] = np.nan
            series = {"cpu": cpu, "mem": mem}
            if kind is ServiceKind.SERVICE:
                series.update(
                    {"diskio": disk, "latency-50": latency, "latency-90": p90, "error": errors, "rps": rps, "net": net}
                )
            elif kind is ServiceKind.DATABASE:
                conn = base["max_conn"][s] * base["conn_share"][s] * load**0.5 * (1 + 0.3 * noise[7])
                conn = np.clip(conn + self.conn_add[s], 0, base["max_conn"][s])
                conn = np.where(self.pool_full[s], base["max_conn"][s] - rng.integers(0, 2, T), conn)
                slow = rng.poisson(np.clip(base["slow"][s] + self.slow_add[s], 0, None)).astype(float)
                series.update(
                    {
                        "diskio": disk,
                        "latency-50": latency,
                        "error": errors,
                        "rps": rps,
                        "connections": conn,
                        "slow-queries": slow,
                    }
                )
            else:
                hit = np.clip(base["hit"][s] - self.hit_drop[s] + 0.01 * noise[8], 0.0, 1.0)
                evictions = rng.poisson(np.clip(base["evict"][s] + self.evict_add[s], 0, None)).astype(float)
                series.update({"latency-50": latency, "rps": rps, "hit-rate": hit, "evictions": evictions})
            for metric, values in series.items():
                if self.scrape_lost[s]:
                    values[down] = np.nan
                names.append(f"{name}_{metric}")
                owners.append(s)
                blocks.append(values)
        matrix = np.stack(blocks, axis=1)
        # Missing metrics: whole columns never scraped, and gaps where scrapes failed.
        keep = np.ones(len(names), dtype=bool)
        if rng.random() < self.config.p_uninstrumented:
            # Managed or third-party components: in the call graph, absent from the metrics.
            count = max(1, round(rng.uniform(0.05, 0.15) * self.n))
            dark = rng.choice(self.n, size=count, replace=False)
            keep &= ~np.isin(np.array(owners), dark)
            self.decoy_notes.append("no metrics from " + ", ".join(self.names[int(s)] for s in sorted(dark)))
        if rng.random() < self.config.p_missing_metrics:
            share = rng.uniform(0.05, 0.15)
            keep[rng.choice(len(names), size=max(1, int(share * len(names))), replace=False)] = False
        for column in rng.choice(len(names), size=max(1, len(names) // 10), replace=False):
            at = int(rng.integers(0, T - 10))
            matrix[at : at + int(rng.integers(1, 10)), column] = np.nan
        frame = pd.DataFrame(matrix[:, keep], columns=[name for name, kept in zip(names, keep, strict=True) if kept])
        frame.insert(0, "time", self.times)
        return frame

    def _logs(self) -> pd.DataFrame | None:
        if self.rng.random() >= self.config.p_logs:
            return None
        rng = self.rng
        times, services, levels, messages = [], [], [], []
        sample = 0.01
        for s in range(self.n):
            if self.kinds[s] is ServiceKind.SERVICE or s in self.own_messages:
                rate = np.clip(self.errors[s] * self.rps[s] * sample, 0, 3.0)
                rate = np.where(self.down[s], 0.0, rate)
                counts = rng.poisson(rate)
            else:
                counts = np.zeros(self.T, dtype=int)
            background = rng.poisson(0.01, self.T)
            if s == self.chatty:
                background += rng.poisson(0.5, self.T)
            if counts.sum() + background.sum() == 0:
                continue
            at = np.concatenate([np.repeat(np.arange(self.T), counts), np.repeat(np.arange(self.T), background)])
            from_fault = np.concatenate(
                [np.repeat(np.arange(self.T) >= self.inject, counts), np.zeros(int(background.sum()), dtype=bool)]
            )
            texts = self._log_texts(s, at, from_fault)
            times.append(self.times[at] + rng.uniform(0, self.config.step, len(at)))
            services.append(np.full(len(at), self.names[s], dtype=object))
            levels.append(np.where(rng.random(len(at)) < 0.85, "ERROR", "WARN"))
            messages.append(texts)
        if not times:
            return pd.DataFrame({"time": [], "service": [], "level": [], "message": []})
        frame = pd.DataFrame(
            {
                "time": np.concatenate(times),
                "service": np.concatenate(services),
                "level": np.concatenate(levels),
                "message": np.concatenate(messages),
            }
        )
        return frame.sort_values("time", kind="stable").reset_index(drop=True)

    def _log_texts(self, s: int, at: np.ndarray, from_fault: np.ndarray) -> np.ndarray:
        rng = self.rng
        texts = np.array([_GENERIC_ERRORS[i] for i in rng.integers(0, len(_GENERIC_ERRORS), len(at))], dtype=object)
        if s == self.chatty and self.callees[s]:
            callee = self.names[int(rng.choice(self.callees[s]))]
            chatter = rng.random(len(at)) < 0.5
            texts[chatter] = _CALLER_ERRORS["generic"][0].format(callee=callee)
        picks = np.flatnonzero(from_fault)
        if not len(picks):
            return texts
        own = self.own_messages.get(s, ())
        failing = [c for c in self.callees[s] if self.failing[c]]
        blamed: list[str] = []
        for failing_callee in failing:
            cause = self.caller_cause.get(s, "generic") if failing_callee == self.root else "generic"
            blamed += [template.format(callee=self.names[failing_callee]) for template in _CALLER_ERRORS[cause]]
        if not own and not blamed:
            return texts
        use_own = rng.random(len(picks)) < (0.6 if blamed else 1.0) if own else np.zeros(len(picks), dtype=bool)
        own_pool = np.array(own or ("",), dtype=object)
        blame_pool = np.array(blamed or own, dtype=object)
        texts[picks] = np.where(
            use_own,
            own_pool[rng.integers(0, len(own_pool), len(picks))],
            blame_pool[rng.integers(0, len(blame_pool), len(picks))],
        )
        return texts

    def _traces(self) -> pd.DataFrame | None:
        if self.rng.random() >= self.config.p_traces:
            return None
        rng = self.rng
        rows: list[tuple[str, str, str, str, float, str, float]] = []
        entries = [s for s in range(self.n) if not self.callers[s]]
        every = max(1, int(5 / self.config.step))
        counter = 0
        for t in range(0, self.T, every):
            entry = entries[int(rng.integers(0, len(entries)))]
            trace_id = f"{rng.integers(0, 2**62):016x}"
            budget = [20]

            def span(
                s: int, parent: str, t: int = t, trace_id: str = trace_id, budget: list[int] = budget
            ) -> tuple[float, bool]:
                nonlocal counter
                budget[0] -= 1
                counter += 1
                span_id = f"{counter:x}"
                own = self.base["own_latency"][s] * (1 + self.own_noise[s, t]) + self.own_latency[s, t]
                duration = max(own * rng.lognormal(0, 0.2), 0.05)
                failed = rng.random() < self.own_errors[s, t] + self.base["errors"][s]
                for callee in self.callees[s]:
                    if budget[0] <= 0 or rng.random() > 0.6 * min(1.0, self.multiplicity[(s, callee)]):
                        continue
                    if self.down[callee, t]:
                        duration += rng.uniform(100, 800)
                        failed = failed or rng.random() < 0.8
                        continue
                    child_duration, child_failed = span(callee, span_id)
                    duration += child_duration * max(1.0, self.multiplicity[(s, callee)])
                    failed = failed or (child_failed and rng.random() < self.error_pass[(s, callee)])
                rows.append(
                    (
                        trace_id,
                        span_id,
                        parent,
                        self.names[s],
                        float(duration),
                        "error" if failed else "ok",
                        float(self.times[t]),
                    )
                )
                return duration, failed

            span(entry, "")
        if not rows:
            return None
        return pd.DataFrame(rows, columns=["trace_id", "span_id", "parent", "service", "duration", "status", "time"])

    # -- observations ---------------------------------------------------------------------------

    def _observations(self) -> Observations:
        rng, config = self.rng, self.config
        at = min(self.inject + int(rng.integers(20, 90)), self.T - 1)
        db, health, cache, deploys, pods = [], [], [], [], []
        if rng.random() < config.p_db:
            for s in range(self.n):
                if self.kinds[s] is ServiceKind.DATABASE:
                    db.append(self._db_snapshot(s, at))
        if rng.random() < config.p_health:
            affected = [s for s in range(self.n) if self._affected(s)]
            extra = rng.choice(self.n, size=min(3, self.n), replace=False)
            for s in sorted(set(affected) | {int(e) for e in extra}):
                if self.kinds[s] is ServiceKind.SERVICE or self.down[s].any():
                    health.append(self._health(s, at))
        if rng.random() < config.p_cache:
            for s in range(self.n):
                if self.kinds[s] is ServiceKind.CACHE:
                    cache.append(self._cache_stats(s, at))
        if rng.random() < config.p_deploys:
            for s, when in self.deploy_at.items():
                if rng.random() < 0.9:
                    deploys.append(DeployEvent(service=self.names[s], time=when, revision=_revision(rng)))
            for s, when in self.decoy_deploys:
                deploys.append(DeployEvent(service=self.names[s], time=when, revision=_revision(rng)))
            for s in rng.choice(self.n, size=int(rng.poisson(1.0)), replace=True):
                if self.kinds[int(s)] is ServiceKind.SERVICE:
                    when = float(self.times[0] - rng.uniform(600, 86400))
                    deploys.append(DeployEvent(service=self.names[int(s)], time=when, revision=_revision(rng)))
        if rng.random() < config.p_pods:
            for s in range(self.n):
                pods.append(self.pod_state.get(s, PodStatus(service=self.names[s], restarts=0, ready=True)))
        deploys.sort(key=lambda event: event.time)
        return Observations(db=db, health=health, cache=cache, deploys=deploys, pods=pods)

    def _affected(self, s: int) -> bool:
        return bool(self.affected[s])

    def _blast_radius(self) -> None:
        """Which components the fault visibly hurt, and which have failing calls (computed once)."""
        before, after = slice(0, self.inject), slice(self.inject, None)
        latency_up = self.latency[:, after].mean(axis=1) > 1.3 * self.latency[:, before].mean(axis=1)
        errors_before = self.errors[:, before].mean(axis=1)
        errors_after = self.errors[:, after].mean(axis=1)
        down = self.down.any(axis=1)
        self.affected = latency_up | (errors_after > 2 * errors_before + 0.005) | down
        self.failing = (errors_after > 2 * self.base["errors"] + 0.01) | down | self.pool_full.any(axis=1)
        if self.root is not None:
            self.failing[self.root] = True

    def _db_snapshot(self, s: int, at: int) -> DbSnapshot:
        rng, base = self.rng, self.base
        engine = self.topology.services[s].engine or "postgres"
        max_conn = int(base["max_conn"][s])
        share = base["conn_share"][s] + self.conn_add[s, at] / max_conn
        connections = int(np.clip(max_conn * share * rng.uniform(0.9, 1.1), 1, max_conn))
        if self.pool_full[s, at]:
            connections = max_conn
        state = self.db_state.get(s)
        tops: list[TopQuery] = []
        long_running = 0
        if state:
            long_running = state["long_running"]
            for k in range(max(long_running, 1)):
                seconds = state["longest"] * (0.5 ** (k / 3)) if k else state["longest"]
                tops.append(
                    TopQuery(id=str(1000 + k), seconds=round(seconds, 1), state=state["state"], query=state["query"])
                )
        elif rng.random() < 0.3:
            long_running = 1
            tops.append(
                TopQuery(id="77", seconds=round(float(rng.uniform(5, 12)), 1), state="active", query=_SLOW_QUERIES[1])
            )
        if s == self.analytics:
            long_running += 1
            tops.append(
                TopQuery(
                    id="4242", seconds=round(float(rng.uniform(300, 3000)), 1), state="active", query=_ANALYTICS_QUERY
                )
            )
        tops.sort(key=lambda top: top.seconds, reverse=True)
        return DbSnapshot(
            service=self.names[s],
            engine=engine,
            connections=connections,
            max_connections=max_conn,
            active=min(connections, long_running + int(rng.integers(1, 10))),
            long_running=long_running,
            longest_seconds=tops[0].seconds if tops else 0.0,
            waiting_on_locks=int(rng.integers(0, 3)) if state else int(rng.random() < 0.1),
            top_queries=tops[:10],
        )

    def _health(self, s: int, at: int) -> HealthCheck:
        rng = self.rng
        name = self.names[s]
        if self.down[s, at]:
            if rng.random() < 0.8:
                return HealthCheck(service=name, status_code=None, ok=False, error="unreachable: connection refused")
            return HealthCheck(service=name, status_code=503, ok=False, latency_ms=float(rng.uniform(1, 5)))
        failing_deep = self.errors[s, at] > 0.2 and rng.random() < 0.3
        if failing_deep:  # deep health checks fail when a dependency fails
            return HealthCheck(service=name, status_code=503, ok=False, latency_ms=float(rng.uniform(5, 50)))
        latency = float(self.base["own_latency"][s] * rng.uniform(0.5, 1.5) + 0.1 * self.own_latency[s, at])
        return HealthCheck(service=name, status_code=200, ok=True, latency_ms=round(latency, 2))

    def _cache_stats(self, s: int, at: int) -> CacheStats:
        rng = self.rng
        window = slice(max(0, at - 300), at + 1)
        requests = float(self.rps[s][window].sum()) + 1.0
        hit = float(np.clip(self.base["hit"][s] - self.hit_drop[s][window].mean(), 0, 1))
        maxmemory = int(rng.choice([256, 512, 1024, 2048])) * 2**20
        usage = rng.uniform(0.97, 1.0) if s in self.cache_full else rng.uniform(0.3, 0.9)
        evicted = int(self.base["evict"][s] * 300 + self.evict_add[s][window].sum())
        return CacheStats(
            service=self.names[s],
            evicted_keys=evicted,
            keyspace_hits=int(requests * hit),
            keyspace_misses=int(requests * (1 - hit)),
            used_memory=int(maxmemory * usage),
            maxmemory=maxmemory,
            connected_clients=int(rng.integers(5, 200)),
            rejected_connections=int(rng.integers(1, 50)) if s in self.cache_full and rng.random() < 0.3 else 0,
        )

    # -- the alert ------------------------------------------------------------------------------

    def _alert(self) -> tuple[float, dict[str, Any]]:
        rng = self.rng
        if self.root is None:
            pager = int(rng.integers(0, self.n))
            delay = 0.0
            alertname = "HighLatencyP99"
        else:
            affected = [s for s in range(self.n) if self._affected(s) and self.kinds[s] is ServiceKind.SERVICE]
            if self.fault is FaultType.DB_POOL_EXHAUSTED and rng.random() < 0.5:
                pager, alertname = self.root, "DatabaseConnectionsHigh"
            elif affected:
                # The service that pages is the most upstream one affected.
                pager = min(affected, key=lambda s: (self.layer[s], s))
                errors_up = self.errors[pager][self.inject :].mean() > 3 * self.errors[pager][: self.inject].mean()
                alertname = "HighErrorRate" if errors_up else "HighLatencyP99"
            else:
                pager, alertname = self.root, "ServiceAnomaly"
            slow_onset = self.fault is FaultType.MEMORY
            delay = float(rng.uniform(60, 240) if slow_onset else rng.uniform(20, 90))
        base_index = self.inject if self.root is not None else int(rng.integers(int(0.5 * self.T), self.T - 5))
        alert_time = float(min(self.times[base_index] + delay, self.times[-1]))
        name = self.names[pager]
        starts = datetime.fromtimestamp(alert_time, tz=UTC).isoformat().replace("+00:00", "Z")
        fingerprint = hashlib.sha256(f"{self.seed}:{name}:{alertname}".encode()).hexdigest()[:16]
        alert = {
            "status": "firing",
            "labels": {"alertname": alertname, "service": name, "namespace": _NAMESPACE, "severity": "critical"},
            "annotations": {"summary": f"{alertname} on {name}", "description": f"{alertname} fired for {name}"},
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus:9090/graph?g0.expr={alertname}",
            "fingerprint": fingerprint,
        }
        return alert_time, alert

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


def _revision(rng: np.random.Generator) -> str:
    return f"{rng.integers(0, 16**7):07x}"
