"""What an SRE's tools would have recorded of a simulated incident: logs, traces, executor
observations (database snapshots, health checks, cache stats, deploys, pods) and the alert.

A mixin of ``_Simulation``: it reads the state the simulation built (``self.names``, the fault and
effect arrays) and draws from the same random generator, so a case stays the same for its seed.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from models.domain._observations import (
    CacheStats,
    DbSnapshot,
    DeployEvent,
    HealthCheck,
    Observations,
    PodStatus,
    TopQuery,
)
from models.domain._types import FaultType, ServiceKind
from models.generators._simulator_vocabulary import (
    _ANALYTICS_QUERY,
    _CALLER_ERRORS,
    _GENERIC_ERRORS,
    _NAMESPACE,
    _SLOW_QUERIES,
)


class _Recordings:
    """Logs, traces, observations and the alert of a ``_Simulation`` (see the module docstring)."""

    rng: np.random.Generator

    # -- metrics ------------------------------------------------------------------------------

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


def _revision(rng: np.random.Generator) -> str:
    return f"{rng.integers(0, 16**7):07x}"
