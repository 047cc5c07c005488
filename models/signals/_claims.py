"""Which fault types the evidence supports for a component, and what is missing for the others.

A fault type is claimed only from signals that measure it. ``cpu`` needs a CPU metric of the
component that moved (or CPU words in its own logs); ``db_pool_exhausted`` needs a connection
count that moved (of a service: one that names its pool), a database snapshot near its limit or
pool errors in logs; ``bad_deploy`` needs a deploy of the component just before the change. A
component whose only moved metrics are of no known kind can be claimed as ``anomaly`` of that
metric, and nothing more: the data cannot tell a slow query from a full pool when neither a
connection count nor a query time is there.

Latency and errors are what every fault of a component shows, and what its callers show too: they
are *symptoms*. Where a cause of the same component is *decisive* (its CPU, memory, disk, network,
query, pool or cache metric clearly moved, its own logs name the fault, or it was deployed just
before the change), the diagnosis is that cause and the symptoms are its effects (``decisive``);
a component that went down while its own logs name a decisive cause went down of it (``overruling``).
A typer trained on one system's incidents learns how large that system's resource signals run
beside its latencies; this rule does not depend on it.

The fault table gives the fault typer one row per (component, fault) it may choose between.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from models.domain._types import FAULTS_BY_KIND, FaultType, MetricKind, ServiceKind
from models.signals._features import FAULTS, CaseSignals
from models.signals._frame import ONSET_THRESHOLD, SILENT_SHARE, slog

#: What would support each fault type, in the words the report uses when it is missing.
EVIDENCE_NEEDED: dict[FaultType, str] = {
    FaultType.CPU: "a CPU metric that moved, or CPU saturation in its logs",
    FaultType.MEMORY: "a memory metric that moved, an OOM-killed pod, or memory errors in its logs",
    FaultType.DISK: "a disk metric that moved, or disk errors in its logs",
    FaultType.LATENCY: "a latency metric that moved, or slower spans in its traces",
    FaultType.ERRORS: "an error-rate metric that moved, or spans failing in it",
    FaultType.NETWORK_ERRORS: "a network metric (retransmits, drops, resets) that moved, or network errors in logs",
    FaultType.DB_SLOW_QUERY: "a slow-query or query-time metric, long-running statements in a database snapshot, "
    "or slow-query log lines",
    FaultType.DB_POOL_EXHAUSTED: "a connection count that moved, a database snapshot near max_connections, "
    "or pool errors in logs",
    FaultType.DEPENDENCY_DOWN: "its metrics or spans stopping, its traffic collapsing, a failed health check, "
    "its containers restarting, or callers' logs saying it refuses connections",
    FaultType.CACHE: "a hit-ratio or eviction metric that moved, cache stats, or cache errors in logs",
    FaultType.BAD_DEPLOY: "a deploy of it shortly before the change",
    FaultType.ANOMALY: "a metric of it that moved",
}

#: The metric kinds whose movement supports each fault type by itself.
_KINDS: dict[FaultType, tuple[MetricKind, ...]] = {
    FaultType.CPU: (MetricKind.CPU,),
    FaultType.MEMORY: (MetricKind.MEMORY,),
    FaultType.DISK: (MetricKind.DISK,),
    FaultType.LATENCY: (MetricKind.LATENCY,),
    FaultType.ERRORS: (MetricKind.ERRORS,),
    FaultType.NETWORK_ERRORS: (MetricKind.NETWORK,),
    FaultType.DB_SLOW_QUERY: (MetricKind.SLOW_QUERIES,),
    FaultType.DB_POOL_EXHAUSTED: (MetricKind.CONNECTIONS,),
    FaultType.CACHE: (MetricKind.CACHE_HITS, MetricKind.EVICTIONS),
}
#: Faults whose own log words are specific enough to support them (latency's "timeout" is not).
_LOGGED = frozenset(
    {
        FaultType.CPU,
        FaultType.MEMORY,
        FaultType.DISK,
        FaultType.NETWORK_ERRORS,
        FaultType.DB_SLOW_QUERY,
        FaultType.DB_POOL_EXHAUSTED,
        FaultType.CACHE,
    }
)
#: Faults every cause shows: claimed only when no cause of the component is decisive.
SYMPTOMS = frozenset({FaultType.LATENCY, FaultType.ERRORS})
#: A cause's own metric moved at least this far (robust z: five times the detection threshold) is
#: decisive. A busier CPU or a larger heap beside a slow dependency is what every caller shows; on
#: the project's queueing model such co-movement reaches z of about 10, a saturated CPU mostly 20 to 120.
DECISIVE_Z = 20.0
#: A service's connection metrics speak for its own pool only when they are the pool's (HikariCP's
#: pending and active connections, a client's pool gauges): its TCP connections follow its traffic.
_POOL_METRIC = re.compile(r"pool|hikari|pending|acquire|checkout.?wait")
#: Restarts as its memory grew: the kernel's OOM killer at the container's limit (kube-state-metrics'
#: last-terminated reason says so where it is scraped; a restart count alone does not).
OOM_RESTARTS = "restarts as its memory grew"
#: Memory this many times its median in the ``OOM_LOOKBACK`` samples before a restart grew until the
#: container was killed; a crash loop restarts at its usual level, and a garbage-collected heap's
#: sawtooth (the JVM's used heap) peaks at about 1.5 times its median or less.
OOM_GROWTH = 1.5
OOM_LOOKBACK = 30
#: A database snapshot this full supports an exhausted pool.
POOL_USAGE = 0.8
#: A cache hit ratio below this supports a cache fault.
POOR_HIT_RATIO = 0.8

FAULT_FEATURES: tuple[str, ...] = (
    *(f"fault_{fault.value}" for fault in FAULTS),
    "supported",
    "support_sources",
    "moved_z",
    "moved_z_gap",
    "moved_share",
    "strongest_kind",
    "fault_observed",
    "fault_log_own",
    "fault_log_mention",
    "kind_service",
    "kind_database",
    "kind_cache",
)


def moved_kinds(signals: CaseSignals, position: int) -> dict[MetricKind, float]:
    """The metric kinds of a component that moved at the change, with their largest |z|."""
    return _kinds_of(signals, _moved_columns(signals, position))


def _kinds_of(signals: CaseSignals, columns: list[tuple[int, float]]) -> dict[MetricKind, float]:
    moved: dict[MetricKind, float] = {}
    for j, z in columns:
        kind = MetricKind(signals.frame.kinds[j])
        moved[kind] = max(moved.get(kind, 0.0), z)
    return moved


def _moved_columns(signals: CaseSignals, position: int) -> list[tuple[int, float]]:
    """The metric columns of a component that moved at the change, with their |z|."""
    found = signals.deviations
    moved = []
    for j in np.flatnonzero(signals.column_service == position):
        z = abs(float(found.peak[j]))
        # A metric that went silent at the change did not move: its last samples before the
        # silence say little of what broke, and the silence itself is the evidence (svc_missing).
        if z > ONSET_THRESHOLD and found.persistence[j] > 0.05 and found.missing[j] <= SILENT_SHARE:
            moved.append((int(j), z))
    return moved


def _names_a_pool(signals: CaseSignals, columns: list[tuple[int, float]]) -> bool:
    """Whether one of these (moved) columns is a connection metric that names a pool."""
    frame = signals.frame
    return any(
        frame.kinds[j] == MetricKind.CONNECTIONS.value and _POOL_METRIC.search(frame.metrics[j].lower())
        for j, _ in columns
    )


def support(
    signals: CaseSignals, position: int, moved_columns: list[tuple[int, float]] | None = None
) -> dict[FaultType, list[str]]:
    """For every fault the component's kind allows, the evidence that supports it (empty: none).

    ``moved_columns``: the component's ``_moved_columns``, when the caller has them already.
    """
    name = signals.services[position]
    table = signals.table
    if moved_columns is None:
        moved_columns = _moved_columns(signals, position)
    moved = _kinds_of(signals, moved_columns)
    found: dict[FaultType, list[str]] = {fault: [] for fault in FAULTS_BY_KIND[signals.kinds[name]]}

    def value(feature: str) -> float:
        return float(np.nan_to_num(table[feature][position]))

    for fault, kinds in _KINDS.items():
        if fault in found:
            found[fault] += [f"{kind.value} metric" for kind in kinds if kind in moved]
    if (
        FaultType.MEMORY in found
        and MetricKind.RESTARTS in moved
        and (_rose(signals, moved_columns, MetricKind.MEMORY) or _grew_until_restarted(signals, position))
    ):
        found[FaultType.MEMORY].append(OOM_RESTARTS)
    pool = FaultType.DB_POOL_EXHAUSTED
    if signals.kinds[name] is ServiceKind.SERVICE and pool in found:
        found[pool] = ["pool metric"] if _names_a_pool(signals, moved_columns) else []
    if signals.log_own is not None:
        for f, fault in enumerate(FAULTS):
            if fault in found and fault in _LOGGED and signals.log_own[position, f] > 0:
                found[fault].append("its logs")
    down = FaultType.DEPENDENCY_DOWN
    mentions = signals.log_mention
    if mentions is not None and down in found and mentions[position, FAULTS.index(down)] > 0:
        found[down].append("callers' logs")
    checks: list[tuple[FaultType, bool, str]] = [
        (FaultType.MEMORY, value("pod_oom") > 0, "an OOM-killed pod"),
        (FaultType.LATENCY, value("trace_self_delta") > np.log(2.0), "slower spans"),
        (FaultType.ERRORS, value("trace_error_origin") > 0.05, "failing spans"),
        (FaultType.DB_SLOW_QUERY, value("db_long_running") > 0, "long-running statements"),
        (FaultType.DB_POOL_EXHAUSTED, value("db_usage") >= POOL_USAGE, "a database near max_connections"),
        (FaultType.DEPENDENCY_DOWN, value("svc_missing") > SILENT_SHARE, "its metrics stopped"),
        (FaultType.DEPENDENCY_DOWN, value("trace_vanished") > 0, "its spans stopped"),
        (FaultType.DEPENDENCY_DOWN, value("health_unreachable") > 0, "a failed health check"),
        (FaultType.DEPENDENCY_DOWN, value("pod_not_ready") + value("pod_crashloop") > 0, "pods not ready"),
        (FaultType.DEPENDENCY_DOWN, MetricKind.RESTARTS in moved, "its containers restarting"),
        (FaultType.DEPENDENCY_DOWN, value("z_traffic") < -np.log1p(ONSET_THRESHOLD), "its traffic collapsed"),
        (
            FaultType.CACHE,
            0 < np.nan_to_num(table["cache_hit_ratio"][position], nan=1.0) < POOR_HIT_RATIO
            or value("cache_evicted") > 0,
            "cache stats",
        ),
        (FaultType.BAD_DEPLOY, value("deploy_recent") > 0, "a deploy just before the change"),
    ]
    for fault, holds, source in checks:
        if holds and fault in found:
            found[fault].append(source)
    if FaultType.ANOMALY in found:
        found[FaultType.ANOMALY] = (
            [] if any(found[f] for f in found if f is not FaultType.ANOMALY) or not moved else ["a metric that moved"]
        )
    return found


def _rose(signals: CaseSignals, moved_columns: list[tuple[int, float]], kind: MetricKind) -> bool:
    """Whether a metric of ``kind`` among ``moved_columns`` moved up."""
    return any(signals.frame.kinds[j] == kind.value and signals.deviations.peak[j] > 0 for j, _ in moved_columns)


def _grew_until_restarted(signals: CaseSignals, position: int) -> bool:
    """Whether a memory metric of the component stood at ``OOM_GROWTH`` times its usual level or more
    just before one of its restarts: a leak that grows until the kernel kills the container, whose
    memory then starts low again. Such a sawtooth has no change point of its own (the leak began
    before the window; the normal period holds its climb), so its z-score says nothing."""
    frame = signals.frame
    columns = np.flatnonzero(frame.service_of == position)
    memory = [j for j in columns if frame.kinds[j] == MetricKind.MEMORY.value]
    for j in (j for j in columns if frame.kinds[j] == MetricKind.RESTARTS.value):
        # A counter's values are its per-second rate (``_counters``): a restart is a rate above zero.
        counts = frame.filled[:, j]
        restarted = np.flatnonzero(counts > 0) if frame.counters[j] else np.flatnonzero(np.diff(counts) > 0) + 1
        if not restarted.size:
            continue
        for m in memory:
            values = frame.values[:, m]
            usual = np.nanmedian(values) if np.isfinite(values).any() else np.nan
            if not usual > 0:
                continue
            for at in restarted[np.r_[True, np.diff(restarted) > 1]]:  # the first sample of each restart
                before = values[max(0, at - OOM_LOOKBACK) : at]
                if np.isfinite(before).any() and np.nanmax(before) >= OOM_GROWTH * usual:
                    return True
    return False


def missing_evidence(signals: CaseSignals, position: int, chosen: FaultType) -> list[str]:
    """For the faults a component of its kind may have that nothing here supports, what would."""
    backed = support(signals, position)
    return [
        f"{fault.value}: {EVIDENCE_NEEDED[fault]}"
        for fault, sources in backed.items()
        if not sources and fault is not chosen and fault is not FaultType.ANOMALY and not fault.is_plain
    ]


def _decisive(fault: FaultType, backed: list[str], moved: dict[MetricKind, float], in_own_logs: bool) -> bool:
    """Whether ``fault``, supported by ``backed``, explains the component's latency and errors: a
    cause (neither a symptom nor the component being down, which is read from absences that an
    overloaded component shows too) whose own metric moved past ``DECISIVE_Z`` (``moved``: the
    component's moved kinds) or whose words are in the component's own logs."""
    if not backed or fault in SYMPTOMS or fault in (FaultType.DEPENDENCY_DOWN, FaultType.ANOMALY):
        return False
    if fault is FaultType.BAD_DEPLOY:
        # Its only support is a deploy of the component just before the change: most outages follow
        # a change to the system (about 70 %, Beyer et al., "Site Reliability Engineering", 2016).
        return True
    if OOM_RESTARTS in backed:
        return True
    return in_own_logs or any(moved.get(kind, 0.0) >= DECISIVE_Z for kind in _KINDS.get(fault, ()))


def overruling(claimed: FaultType, rows: pd.DataFrame) -> np.ndarray:
    """Which rows of one component's fault table are the diagnosis rather than ``claimed``: a
    decisive cause explains the symptoms; named in the component's own logs (out of memory, no
    space left), or a rollout of it just before the change (a release that crashes or cannot start
    leaves it refusing connections) or an OOM kill (restarts as its memory grew), it also explains
    the component going down. An OOM kill explains any other resource claim too: a heap that fills
    keeps its garbage collector busy (the CPU of a leak), and only a rollout that brought the leak
    explains it in turn."""
    decisive = rows["decisive"].to_numpy() > 0
    killed = rows["oom_killed"].to_numpy() > 0
    if claimed in SYMPTOMS:
        return decisive
    if claimed is FaultType.DEPENDENCY_DOWN:
        named = np.nan_to_num(rows["fault_log_own"].to_numpy(dtype=float)) > 0
        deployed = rows["fault"].to_numpy() == FaultType.BAD_DEPLOY.value
        return decisive & (named | deployed | killed)
    if claimed in (FaultType.MEMORY, FaultType.BAD_DEPLOY):
        return np.zeros(len(rows), dtype=bool)
    return killed


def fault_table(signals: CaseSignals, services: list[str]) -> pd.DataFrame:
    """One row per (component, fault) of ``services`` that the fault typer chooses between:
    ``service``, ``fault``, ``supported``, ``decisive`` and ``FAULT_FEATURES``."""
    table = signals.table
    n = len(signals.services)
    signature_z = _signature_strength(signals)
    observed = observation_signature(table, n)
    log_own = signals.log_own if signals.log_own is not None else np.full((n, len(FAULTS)), np.nan)
    log_mention = signals.log_mention if signals.log_mention is not None else np.full((n, len(FAULTS)), np.nan)
    rows = []
    for name in services:
        i = signals.position(name)
        moved_columns = _moved_columns(signals, i)
        backed = support(signals, i, moved_columns)
        moved = _kinds_of(signals, moved_columns)
        strongest = max(moved, key=moved.__getitem__) if moved else None
        total = sum(moved.values()) or 1.0
        # The fault typer scores rows one at a time: how far each row's own signature stays
        # below the component's strongest supported one is what lets it weigh them against
        # each other (a 20-sigma connection count beside a lone vanished span).
        strongest_supported = max(
            (
                float(slog(signature_z[i, FAULTS.index(other)]))
                for other, backing in backed.items()
                if backing and np.isfinite(signature_z[i, FAULTS.index(other)])
            ),
            default=0.0,
        )
        for fault, sources in backed.items():
            f = FAULTS.index(fault)
            kinds = _KINDS.get(fault, ())
            row: dict[str, object] = {"service": name, "fault": fault.value}
            row.update({f"fault_{other.value}": float(other is fault) for other in FAULTS})
            row["supported"] = float(bool(sources))
            row["decisive"] = float(_decisive(fault, sources, moved, bool(log_own[i, f] > 0)))
            row["oom_killed"] = float(OOM_RESTARTS in sources)
            row["support_sources"] = float(len(sources))
            row["moved_z"] = float(slog(signature_z[i, f]))
            own = row["moved_z"] if np.isfinite(row["moved_z"]) and sources else 0.0
            row["moved_z_gap"] = own - strongest_supported
            row["moved_share"] = sum(moved.get(kind, 0.0) for kind in kinds) / total
            row["strongest_kind"] = float(strongest is not None and strongest in kinds)
            row["fault_observed"] = float(observed[i, f])
            row["fault_log_own"] = float(log_own[i, f])
            row["fault_log_mention"] = float(log_mention[i, f])
            for kind in ("service", "database", "cache"):
                row[f"kind_{kind}"] = float(table[f"kind_{kind}"][i])
            rows.append(row)
    return pd.DataFrame(rows, columns=["service", "fault", "decisive", "oom_killed", *FAULT_FEATURES])


def _signature_strength(signals: CaseSignals) -> np.ndarray:
    """Per (component, fault): the largest |z| among the metric kinds that measure the fault."""
    table = signals.table
    n = len(signals.services)
    strength = np.full((n, len(FAULTS)), np.nan)
    for f, fault in enumerate(FAULTS):
        kinds = _KINDS.get(fault, ())
        if fault is FaultType.ANOMALY:
            strength[:, f] = np.abs(table["svc_peak"])
        elif kinds:
            stacked = np.vstack([np.abs(table[f"z_{kind.value}"]) for kind in kinds])
            best = np.nan_to_num(stacked, nan=-1.0).max(axis=0)
            strength[:, f] = np.where(best < 0, np.nan, best)
    return strength


def observation_signature(table: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Per (component, fault): what the executors' observations say about it (NaN: nothing)."""
    nothing = np.full(n, np.nan)
    with np.errstate(all="ignore"):
        per_fault = {
            FaultType.CPU: nothing,
            FaultType.MEMORY: table["pod_oom"],
            FaultType.DISK: nothing,
            FaultType.LATENCY: table["health_latency"],
            FaultType.NETWORK_ERRORS: nothing,
            FaultType.DB_SLOW_QUERY: table["db_long_running"]
            * np.minimum(table["db_longest"], np.log1p(600))
            / np.log1p(600),
            FaultType.DB_POOL_EXHAUSTED: table["db_usage"],
            FaultType.DEPENDENCY_DOWN: np.fmax(
                np.fmax(table["health_unreachable"], table["pod_not_ready"]), table["pod_crashloop"]
            ),
            FaultType.CACHE: np.fmax(1.0 - table["cache_hit_ratio"], table["cache_memory"] - 0.5),
            FaultType.BAD_DEPLOY: table["deploy_recent"],
            FaultType.ERRORS: table["trace_error_origin"],
            FaultType.ANOMALY: nothing,
        }
    return np.column_stack([per_fault[fault] for fault in FAULTS])
