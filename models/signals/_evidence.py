"""The evidence behind a hypothesis, in words a person on call reads in a second."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from models.domain._hypothesis import Evidence
from models.domain._types import FaultType, MetricKind
from models.signals._features import FAULTS, METRIC_KINDS, CaseSignals
from models.signals._frame import ONSET_THRESHOLD, SILENT_SHARE

#: Metric kinds to show first for each fault (the rest of the component's anomalies follow).
_SHOW_FIRST: dict[FaultType, tuple[MetricKind, ...]] = {
    FaultType.CPU: (MetricKind.CPU, MetricKind.LATENCY),
    FaultType.MEMORY: (MetricKind.MEMORY, MetricKind.RESTARTS, MetricKind.LATENCY),
    FaultType.DISK: (MetricKind.DISK, MetricKind.LATENCY),
    FaultType.LATENCY: (MetricKind.LATENCY,),
    FaultType.NETWORK_ERRORS: (MetricKind.ERRORS, MetricKind.NETWORK),
    FaultType.DB_SLOW_QUERY: (MetricKind.SLOW_QUERIES, MetricKind.LATENCY, MetricKind.CPU),
    FaultType.DB_POOL_EXHAUSTED: (MetricKind.CONNECTIONS,),
    FaultType.DEPENDENCY_DOWN: (MetricKind.RESTARTS, MetricKind.TRAFFIC, MetricKind.ERRORS),
    FaultType.CACHE: (MetricKind.CACHE_HITS, MetricKind.EVICTIONS, MetricKind.MEMORY),
    FaultType.BAD_DEPLOY: (MetricKind.ERRORS, MetricKind.RESTARTS, MetricKind.LATENCY),
    FaultType.ERRORS: (MetricKind.ERRORS,),
    FaultType.ANOMALY: (),
}
_MAX_METRICS = 3


def _strength(z: float) -> float:
    return float(1.0 - np.exp(-abs(z) / 8.0))


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M:%S")


#: A fault whose claim rests on one kind of evidence: that evidence comes first, whatever its score
#: (a deploy 100 s before the change scores below the errors it caused, and is why they happened).
_CLAIMED_BY: dict[FaultType, str] = {FaultType.BAD_DEPLOY: "deploy"}


def gather_evidence(signals: CaseSignals, service: str, fault: FaultType) -> list[Evidence]:
    """Evidence for ``service`` having ``fault``: what the claim rests on first, then strongest first."""
    evidence = [
        *_metric_evidence(signals, service, fault),
        *_log_evidence(signals, service, fault),
        *_trace_evidence(signals, service),
        *_observation_evidence(signals, service, fault),
    ]
    claimed_by = _CLAIMED_BY.get(fault)
    evidence.sort(key=lambda item: (item.kind == claimed_by, item.score), reverse=True)
    return evidence


def affected_by(signals: CaseSignals, service: str, limit: int = 10) -> list[str]:
    """Anomalous components that depend on ``service`` (all anomalous ones without a graph)."""
    position = signals.position(service)
    anomalous = signals.anomalous
    dependents = signals.reach[:, position] & anomalous if signals.reach.size else anomalous.copy()
    dependents[position] = False
    peak = np.nan_to_num(signals.table["svc_peak"])
    order = sorted(np.flatnonzero(dependents), key=lambda i: -peak[i])
    return [signals.services[i] for i in order[:limit]]


def _metric_evidence(signals: CaseSignals, service: str, fault: FaultType) -> list[Evidence]:
    frame, found = signals.frame, signals.deviations
    position = signals.position(service)
    columns = np.flatnonzero(signals.column_service == position)
    if not len(columns):
        return (
            []
            if position < len(frame.services)
            else [Evidence(kind="metric", source=service, summary=f"no metrics for {service}", score=0.0)]
        )
    evidence: list[Evidence] = []
    missing = found.missing[columns]
    if missing.max() > SILENT_SHARE:
        evidence.append(
            Evidence(
                kind="metric",
                source=service,
                summary=f"{service} stopped reporting metrics at {_clock(signals.change_point)}",
                score=0.9,
                details={"missing_share": round(float(missing.max()), 3)},
            )
        )
    first = [METRIC_KINDS.index(kind) for kind in _SHOW_FIRST[fault]]
    priority = np.array([0 if k in first else 1 for k in signals.column_kind[columns]])
    strength = np.abs(found.peak[columns])
    order = np.lexsort((-strength, priority))
    shown = 0
    for j in columns[order]:
        z = float(found.peak[j])
        if abs(z) < ONSET_THRESHOLD or shown >= _MAX_METRICS:
            continue
        before = float(found.median[j])
        after_values = frame.values[found.split :, j]
        if np.isnan(after_values).all():
            continue  # it went silent at the change: "stopped reporting metrics" says so
        after = float(np.nanmedian(after_values))
        onset = found.onset[j]
        when = f", {onset:+.0f} s from the change point" if np.isfinite(onset) else ""
        direction = "rose" if z > 0 else "fell"
        quoted = f"rate({frame.columns[j]}[1m])" if frame.counters[j] else frame.columns[j]
        moved = f"{direction} from {before:.3g} to {after:.3g}"
        if found.persistence[j] < 0.5 or (after - before) * z <= 0:
            # It came back (or overshot the other way: a spike, then a dip that lasts): the level
            # since the change does not show the move, its extreme does.
            extreme = float(np.nanmax(after_values) if z > 0 else np.nanmin(after_values))
            moved = f"{direction} from {before:.3g} to {extreme:.3g}, then returned to {after:.3g}"
        evidence.append(
            Evidence(
                kind="metric",
                source=frame.columns[j],
                summary=(
                    f"{quoted} {moved} "
                    f"({abs(z):.1f}x its normal spread{' on a log scale' if found.log_scale[j] else ''}{when})"
                ),
                score=_strength(z),
                details={
                    "column": frame.columns[j],
                    "robust_z": round(z, 2),
                    "log_scale": bool(found.log_scale[j]),
                    "before": before,
                    "after": after,
                    "onset_s": None if not np.isfinite(onset) else round(float(onset), 1),
                    "persistence": round(float(found.persistence[j]), 3),
                },
            )
        )
        shown += 1
    return evidence


def _log_evidence(signals: CaseSignals, service: str, fault: FaultType) -> list[Evidence]:
    lines = signals.log_lines
    if lines is None or not len(lines.code):
        return []
    evidence: list[Evidence] = []
    position = signals.position(service)
    burst = signals.table["log_burst"][position]
    own = lines.service == position
    if own.any() and np.isfinite(burst) and burst > 0.5:
        matching = own & lines.fault_hits[lines.code, FAULTS.index(fault)]
        sample = lines.messages[_most_common(lines.code[matching if matching.any() else own])]
        evidence.append(
            Evidence(
                kind="log",
                source=service,
                summary=f"{service} logged {int(own.sum())} error lines since the change (e.g. {sample[:140]!r})",
                score=float(min(1.0, burst / 4)),
                details={"count": int(own.sum()), "matching_fault": int(matching.sum()), "sample": sample},
            )
        )
    names_me = np.array([position in targets for targets in lines.mentions], dtype=bool)
    named = names_me[lines.code] & ~own
    if named.any():
        sample = lines.messages[_most_common(lines.code[named])]
        callers = sorted({lines.logger_names[i] for i in np.flatnonzero(named)})
        evidence.append(
            Evidence(
                kind="log",
                source=", ".join(callers[:3]),
                summary=(
                    f"{int(named.sum())} error lines of {', '.join(callers[:3])} name {service} (e.g. {sample[:140]!r})"
                ),
                score=float(min(1.0, np.log1p(named.sum()) / 5)),
                details={"count": int(named.sum()), "services": callers, "sample": sample},
            )
        )
    return evidence


def _most_common(codes: np.ndarray) -> int:
    return int(np.argmax(np.bincount(codes)))


def _trace_evidence(signals: CaseSignals, service: str) -> list[Evidence]:
    counts = signals.trace_counts
    if counts is None or service not in counts.index:
        return []
    row = counts.loc[service]
    table = signals.table
    i = signals.position(service)
    evidence = []
    if row["before"] > 0 and row["after"] == 0:
        evidence.append(
            Evidence(
                kind="trace",
                source=service,
                summary=f"no span from {service} since the change",
                score=0.8,
                details=row.to_dict(),
            )
        )
    elif row["errors_after"] > 0:
        delta = table["trace_error_delta"][i]
        origin = row["origin_after"]
        evidence.append(
            Evidence(
                kind="trace",
                source=service,
                summary=f"{int(row['errors_after'])} of {int(row['after'])} spans of {service} failed since the change"
                + (f", {int(origin)} of them with no failing child" if origin else ""),
                score=float(np.clip(np.nan_to_num(delta) * 2, 0, 1)),
                details=row.to_dict(),
            )
        )
    self_delta = table["trace_self_delta"][i]
    if np.isfinite(self_delta) and self_delta > np.log(1.5):
        evidence.append(
            Evidence(
                kind="trace",
                source=service,
                summary=f"{service}'s own time per span grew {np.exp(self_delta):.1f}x",
                score=float(min(1.0, self_delta / 3)),
                details={"self_time_ratio": round(float(np.exp(self_delta)), 2)},
            )
        )
    return evidence


def _observation_evidence(signals: CaseSignals, service: str, fault: FaultType) -> list[Evidence]:
    obs = signals.observations
    evidence: list[Evidence] = []
    for snapshot in obs.db:
        if snapshot.service != service:
            continue
        usage = (
            f"{snapshot.connections}/{snapshot.max_connections}"
            if snapshot.max_connections
            else f"{snapshot.connections}"
        )
        top = snapshot.top_queries[0] if snapshot.top_queries else None
        longest = f", longest {top.seconds:.0f} s ({top.state}): {top.query[:100]}" if top else ""
        relevant = fault in (FaultType.DB_SLOW_QUERY, FaultType.DB_POOL_EXHAUSTED)
        strength = max(snapshot.usage or 0.0, min(1.0, snapshot.long_running / 5))
        evidence.append(
            Evidence(
                kind="db",
                source=service,
                summary=f"{service}: {usage} connections, {snapshot.long_running} statement(s) over 5 s{longest}",
                score=float(strength if relevant else strength / 2),
                details=snapshot.model_dump(mode="json"),
            )
        )
    for check in obs.health:
        if check.service != service:
            continue
        state = "unreachable" if check.unreachable else f"HTTP {check.status_code}"
        latency = f" in {check.latency_ms:.0f} ms" if check.latency_ms is not None else ""
        evidence.append(
            Evidence(
                kind="health",
                source=service,
                summary=f"{service} health check: {state}{latency}",
                score=0.0 if check.ok else 0.9,
                details=check.model_dump(mode="json"),
            )
        )
    for stats in obs.cache:
        if stats.service != service:
            continue
        hit = f"hit ratio {stats.hit_ratio:.0%}" if stats.hit_ratio is not None else "no hits recorded"
        memory = f", memory {stats.memory_usage:.0%} of maxmemory" if stats.memory_usage is not None else ""
        bad = (1 - (stats.hit_ratio or 1.0)) + max((stats.memory_usage or 0.0) - 0.9, 0.0) * 5
        evidence.append(
            Evidence(
                kind="cache",
                source=service,
                summary=f"{service}: {hit}, {stats.evicted_keys} keys evicted{memory}",
                score=float(min(1.0, bad)),
                details=stats.model_dump(mode="json"),
            )
        )
    cp = signals.change_point
    step = signals.frame.step
    for event in obs.deploys:
        if event.service != service or not (-event.late_tolerance(step) <= cp - event.time <= 3600):
            continue
        lead = cp - event.time
        revision = f" revision {event.revision}" if event.revision else ""
        what = (
            f"{service} started{revision} (a start-up line in its logs)"
            if event.from_logs
            else f"{service} deployed{revision}"
        )
        evidence.append(
            Evidence(
                kind="deploy",
                source=service,
                summary=f"{what} {abs(lead):.0f} s {'before' if lead >= 0 else 'after'} the change point",
                score=float(np.exp(-max(lead, 0.0) / 300.0)),
                details=event.model_dump(mode="json"),
            )
        )
    for pod in obs.pods:
        if pod.service != service or (pod.restarts == 0 and pod.ready):
            continue
        reason = f" ({pod.reason})" if pod.reason else ""
        evidence.append(
            Evidence(
                kind="pod",
                source=service,
                summary=f"{service}: {pod.restarts} restart(s){reason}{'' if pod.ready else ', not ready'}",
                score=0.8 if not pod.ready else float(min(1.0, pod.restarts / 5)),
                details=pod.model_dump(mode="json"),
            )
        )
    return evidence
