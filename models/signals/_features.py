"""Evidence features of every candidate (component, fault) pair of one incident.

One row per candidate. What a row may use is what the incident shows, never the answer:
metric deviations and their timing relative to the change point, the component's place in the
call graph (from the topology, or from the traces when there is none), log error bursts and who
the error lines blame, error spans and their self time, and the executors' observations (DB
process lists, cache stats, health checks, deploys, pods). Values are compressed (signed
``log1p``) so that the ranker learns shapes, not one system's scales; anything unknown is NaN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.domain._observations import Observations
from models.domain._telemetry import Telemetry, known_components
from models.domain._topology import Topology, transitive_closure
from models.domain._types import FaultType, MetricKind, ServiceKind, guess_service_kind
from models.signals._deploys import deploys_in_logs
from models.signals._frame import ONSET_THRESHOLD, SILENT_SHARE, Deviations, MetricFrame, slog
from models.signals._log_words import LOG_PATTERNS
from models.signals._scores import ColumnScores, column_scores

METRIC_KINDS: tuple[MetricKind, ...] = tuple(kind for kind in MetricKind if kind is not MetricKind.OTHER)
#: What every fault shows where it is felt (the component's callers too), rather than where it is.
SYMPTOM_KINDS = frozenset({MetricKind.LATENCY, MetricKind.ERRORS, MetricKind.TRAFFIC})
#: The largest move of a component's metrics of a cause (CPU, pool, slow queries, ...; not
#: ``SYMPTOM_KINDS``): as its size, its share of the incident's largest and its place. A component
#: whose metrics went silent moved as far as anything in the incident did.
CAUSE_FEATURES: tuple[str, ...] = ("cause_peak", "cause_rel", "cause_rank")
FAULTS: tuple[FaultType, ...] = tuple(FaultType)

#: Deploys this long before the change point (seconds) may have caused it.
DEPLOY_WINDOW = 900.0
#: Log levels that count as errors: the usual names, Go's PANIC, klog/glog's one letters and
#: syslog's numeric severities 0 (emergency) to 4 (warning).
_ERROR_LEVELS = (
    *("ERROR", "FATAL", "CRITICAL", "WARN", "WARNING", "SEVERE", "ERR", "CRIT", "ALERT", "EMERG", "PANIC"),
    *("E", "F", "W", "0", "1", "2", "3", "4"),
)

SERVICE_FEATURES: tuple[str, ...] = (
    "kind_service",
    "kind_database",
    "kind_cache",
    *(f"z_{kind.value}" for kind in METRIC_KINDS),
    "svc_peak",
    "svc_rel",
    "svc_rank",
    *CAUSE_FEATURES,
    "svc_persistence",
    "svc_onset",
    "svc_onset_lag",
    "svc_missing",
    "svc_anomalous_share",
    "case_anomalous_services",
    "graph_callers",
    "graph_callees",
    "graph_callers_anomalous",
    "graph_callees_anomalous",
    "graph_callee_peak_rel",
    "graph_ancestor_cover",
    "graph_descendants_anomalous",
    "graph_first_on_path",
    "log_burst",
    "log_mentions",
    "trace_self_delta",
    "trace_error_delta",
    "trace_error_origin",
    "trace_vanished",
    "db_usage",
    "db_long_running",
    "db_longest",
    "db_locks",
    "health_bad",
    "health_unreachable",
    "health_latency",
    "cache_hit_ratio",
    "cache_evicted",
    "cache_memory",
    "cache_rejected",
    "deploy_recent",
    "pod_restarts",
    "pod_not_ready",
    "pod_oom",
    "pod_crashloop",
)
#: The peers' statistics per component (``models.signals._scores``): each as its size, its share of
#: the incident's largest and the component's place among the incident's components.
STATISTICS: tuple[str, ...] = ("baro", "nsigma", "residual", "blanket")
STATISTIC_FEATURES: tuple[str, ...] = tuple(
    f"{name}_{form}" for name in STATISTICS for form in ("score", "rel", "rank", "top")
)
#: Where the component stands from the component that paged (the alert's ``service`` label).
ALERT_FEATURES: tuple[str, ...] = ("alert_self", "alert_upstream", "alert_hops", "alert_known")
#: One row per component: what the ranker of components reads.
COMPONENT_FEATURES: tuple[str, ...] = SERVICE_FEATURES + STATISTIC_FEATURES + ALERT_FEATURES


@dataclass(frozen=True)
class LogIndex:
    """Error lines after the change point as arrays: who logged them and which distinct message
    each is, with what each distinct message matches (fault words, components it names)."""

    #: Per line: the logging component's position in ``CaseSignals.services`` (-1: unknown).
    service: np.ndarray
    #: Per line: its message's position in ``messages``.
    code: np.ndarray
    messages: list[str]
    #: Per distinct message and fault: does it match the fault's words?
    fault_hits: np.ndarray
    #: Per distinct message: the components it names.
    mentions: list[list[int]]
    logger_names: list[str]


@dataclass
class CaseSignals:
    """Everything read from one incident, shared by the features and the evidence text."""

    frame: MetricFrame
    deviations: Deviations
    change_point: float
    #: Components: those with metrics first, then those only the topology names.
    services: list[str]
    kinds: dict[str, ServiceKind]
    #: Per metric column: its component's position in ``services`` and its kind's position in
    #: ``METRIC_KINDS`` (-1 for ``other``).
    column_service: np.ndarray
    column_kind: np.ndarray
    #: Per component, the ``SERVICE_FEATURES`` as arrays.
    table: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per (component, metric kind): the column that moved most (-1: none).
    strongest_column: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=int))
    anomalous: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: Error log lines after the change point, indexed for the evidence text.
    log_lines: LogIndex | None = None
    #: Per (component, fault): own error lines and lines of others naming it that match the fault.
    log_own: np.ndarray | None = None
    log_mention: np.ndarray | None = None
    #: Per component: spans before/after, error spans after, error-origin spans after.
    trace_counts: pd.DataFrame | None = None
    observations: Observations = field(default_factory=Observations)
    graph_source: str | None = None
    #: ``reach[i, j]``: component i depends on component j (empty without a graph).
    reach: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    #: ``adjacency[i, j]``: component i calls component j (empty without a graph).
    adjacency: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    #: The peers' statistics of every metric column.
    scores: ColumnScores | None = None

    def position(self, service: str) -> int:
        return self.services.index(service)


def case_signals(
    frame: MetricFrame,
    found: Deviations,
    telemetry: Telemetry,
    topology: Topology | None,
    observations: Observations | None,
    alert_service: str | None = None,
    known: Sequence[str] | None = None,
) -> CaseSignals:
    """Read the incident once: per-column and per-component arrays, logs, traces, graph.

    Args:
        frame: the metrics as arrays.
        found: the deviations at the change point.
        telemetry: logs and traces (metrics are in ``frame``).
        topology: the call graph, when known (else it is read from the traces when there are any).
        observations: what executors found.
        alert_service: the component that paged (the alert's ``service`` label), when known.
        known: the components known besides the metrics' (``None``: ``known_components``). Each
            is a candidate, with or without metrics.
    """
    if known is None:
        known = known_components(telemetry, topology.names if topology is not None else None, alert_service)
    services = list(frame.services)
    present = set(services)
    services += [name for name in known if name not in present]
    observations = observations or Observations()
    if telemetry.logs is not None:
        observations = observations.merged(Observations(deploys=deploys_in_logs(telemetry.logs)))
    kind_position = {kind.value: k for k, kind in enumerate(METRIC_KINDS)}
    column_kind = np.array([kind_position.get(kind, -1) for kind in frame.kinds], dtype=int)
    kinds: dict[str, ServiceKind] = {}
    for i, name in enumerate(services):
        known = topology.kind_of(name) if topology is not None else None
        if known is None:
            present_kinds = {METRIC_KINDS[k] for k in column_kind[frame.service_of == i] if k >= 0}
            known = guess_service_kind(name, present_kinds)
        kinds[name] = known
    signals = CaseSignals(
        frame=frame,
        deviations=found,
        change_point=found.change_point,
        services=services,
        kinds=kinds,
        column_service=frame.service_of.copy(),
        column_kind=column_kind,
        observations=observations,
    )
    _metric_features(signals)
    _graph_features(signals, topology, telemetry.traces)
    _statistic_features(signals)
    _alert_features(signals, alert_service)
    _log_features(signals, telemetry.logs)
    _trace_features(signals, telemetry.traces)
    _observation_features(signals)
    return signals


def _metric_features(signals: CaseSignals) -> None:
    table = signals.table
    found = signals.deviations
    n, k = len(signals.services), len(METRIC_KINDS)
    for service_kind in ServiceKind:
        table[f"kind_{service_kind.value}"] = np.array(
            [float(signals.kinds[name] is service_kind) for name in signals.services]
        )
    abs_peak = np.abs(found.peak)
    service, kind_of = signals.column_service, signals.column_kind
    # Per (service, kind) the column that moved most: assign in increasing |peak| order so that
    # the largest one is written last.
    order = np.argsort(abs_peak, kind="stable")
    order = order[kind_of[order] >= 0]
    strongest = np.full((n, k), -1, dtype=int)
    strongest[service[order], kind_of[order]] = order
    signals.strongest_column = strongest
    peaks = np.where(strongest >= 0, found.peak[np.maximum(strongest, 0)], np.nan)
    for position, kind in enumerate(METRIC_KINDS):
        table[f"z_{kind.value}"] = slog(peaks[:, position])
    anomalous_column = (abs_peak > ONSET_THRESHOLD) & (found.persistence > 0.05)
    has_metrics = np.bincount(service, minlength=n) > 0
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, service, abs_peak)
    peak = np.where(has_metrics, peak, np.nan)
    table["svc_peak"] = slog(peak)
    best = np.nanmax(table["svc_peak"]) if has_metrics.any() else np.nan
    table["svc_rel"] = table["svc_peak"] / best if np.isfinite(best) and best > 0 else np.full(n, np.nan)
    ranked = np.where(np.isnan(table["svc_peak"]), -np.inf, table["svc_peak"])
    table["svc_rank"] = _rank_from_top(ranked) / max(n, 1)
    persistence = np.full(n, -np.inf)
    np.maximum.at(persistence, service, found.persistence)
    table["svc_persistence"] = np.where(has_metrics, persistence, np.nan)
    onset = np.full(n, np.inf)
    timed = anomalous_column | (found.missing > SILENT_SHARE)  # a metric that went silent changed too
    np.fmin.at(onset, service[timed], found.onset[timed])
    onset = np.where(np.isfinite(onset), onset, np.nan)
    table["svc_onset"] = slog(onset)
    earliest = np.nanmin(onset) if np.isfinite(onset).any() else np.nan
    table["svc_onset_lag"] = slog(onset - earliest)
    missing = np.full(n, -np.inf)
    np.maximum.at(missing, service, found.missing)
    table["svc_missing"] = np.where(has_metrics, missing, np.nan)
    counts = np.bincount(service, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["svc_anomalous_share"] = np.where(
            counts > 0, np.bincount(service, weights=anomalous_column, minlength=n) / counts, np.nan
        )
    down = np.nan_to_num(table["svc_missing"]) > SILENT_SHARE
    # fmax skips NaN: a component with no metric of a cause keeps NaN (unknown, not small).
    cause = np.fmax.reduce(np.abs(peaks[:, [kind not in SYMPTOM_KINDS for kind in METRIC_KINDS]]), axis=1)
    # A component that stopped answering moved off the scale: as far as anything in the incident
    # (every cause move is one of ``abs_peak``).
    cause = np.where(down, np.nanmax(abs_peak, initial=0.0), cause)
    _relative(table, "cause", slog(cause))
    strong = (np.nan_to_num(table["svc_peak"]) > np.log1p(ONSET_THRESHOLD)) & (
        np.nan_to_num(table["svc_persistence"]) > 0.05
    )
    signals.anomalous = down | strong
    table["case_anomalous_services"] = np.full(n, signals.anomalous.sum() / max(n, 1))


def _graph_features(signals: CaseSignals, topology: Topology | None, traces: pd.DataFrame | None) -> None:
    table = signals.table
    names = signals.services
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    adjacency = np.zeros((n, n), dtype=bool)
    if topology is not None and topology.calls:
        for caller, callee in topology.calls:
            adjacency[index[caller], index[callee]] = True
        signals.graph_source = "topology"
    elif traces is not None and len(traces):
        parents = (
            traces[["span_id", "service"]]
            .drop_duplicates("span_id")
            .rename(columns={"span_id": "parent", "service": "caller"})
        )
        edges = traces[["parent", "service"]].merge(parents, on="parent", how="inner")
        edges = edges.loc[edges["caller"] != edges["service"]].drop_duplicates()
        for caller, callee in zip(edges["caller"], edges["service"], strict=True):
            if caller in index and callee in index:
                adjacency[index[caller], index[callee]] = True
        signals.graph_source = "traces" if adjacency.any() else None
    graph_names = [name for name in SERVICE_FEATURES if name.startswith("graph_")]
    if signals.graph_source is None:
        for name in graph_names:
            table[name] = np.full(n, np.nan)
        return
    reach = transitive_closure(adjacency)
    signals.reach = reach
    signals.adjacency = adjacency
    anomalous = signals.anomalous
    peak = np.nan_to_num(table["svc_peak"])
    onset = table["svc_onset"]
    n_callers = adjacency.sum(axis=0)
    n_callees = adjacency.sum(axis=1)
    table["graph_callers"] = np.log1p(n_callers)
    table["graph_callees"] = np.log1p(n_callees)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["graph_callers_anomalous"] = np.where(
            n_callers > 0, (adjacency & anomalous[:, None]).sum(axis=0) / n_callers, np.nan
        )
        table["graph_callees_anomalous"] = np.where(
            n_callees > 0, (adjacency & anomalous[None, :]).sum(axis=1) / n_callees, np.nan
        )
        callee_peak = np.where(adjacency, peak[None, :], 0.0).max(axis=1) if n else np.zeros(0)
        table["graph_callee_peak_rel"] = np.where(n_callees > 0, callee_peak - peak, np.nan)
        total = max(int(anomalous.sum()), 1)
        # Who depends on me (my ancestors) and is anomalous: how much of the incident I explain.
        explained = (reach.T & anomalous[None, :]).sum(axis=1) + anomalous
        table["graph_ancestor_cover"] = explained / total
        table["graph_descendants_anomalous"] = (reach & anomalous[None, :]).sum(axis=1) / total
        # Am I anomalous no later than every anomalous component I depend on? A root cause is.
        finite = np.isfinite(onset)
        later = np.where(reach & anomalous[None, :] & finite[None, :], onset[None, :], np.inf).min(axis=1)
        table["graph_first_on_path"] = np.where(
            finite, np.where(np.isfinite(later), (onset <= later + 1e-9).astype(float), 1.0), np.nan
        )


def _relative(table: dict[str, np.ndarray], name: str, values: np.ndarray) -> None:
    """``name``'s ``_peak``, its share of the incident's largest (``_rel``) and its place from the
    top as a share of the components (``_rank``); NaN where a component has no such value."""
    known = np.isfinite(values)
    best = values[known].max() if known.any() else np.nan
    table[f"{name}_peak"] = values
    table[f"{name}_rel"] = values / best if known.any() and best > 0 else np.full(len(values), np.nan)
    place = _rank_from_top(np.where(known, values, -np.inf)) / max(len(values), 1)
    table[f"{name}_rank"] = np.where(known, place, np.nan)


def _rank_from_top(values: np.ndarray) -> np.ndarray:
    """Each value's place from the largest (0 for the largest): how many values are larger. Ties
    share the better place: ordering them by position would crown whichever component the data
    happened to list first (every component, when nothing moved)."""
    return np.searchsorted(np.sort(-values), -values, side="left").astype(float)


def _statistic_features(signals: CaseSignals) -> None:
    """The peers' statistics per component: the largest over its columns, then relative to the
    incident (the ranker learns shapes, not one system's scales)."""
    table = signals.table
    frame = signals.frame
    n = len(signals.services)
    callees = None
    if signals.adjacency.size:
        with_metrics = len(frame.services)
        callees = {
            i: [int(j) for j in np.flatnonzero(signals.adjacency[i, :with_metrics])] for i in range(with_metrics)
        }
    scores = column_scores(frame, signals.deviations, callees)
    signals.scores = scores
    for name in STATISTICS:
        values = np.full(n, -np.inf)
        np.maximum.at(values, signals.column_service, np.nan_to_num(getattr(scores, name), nan=-np.inf))
        values = np.where(np.isfinite(values), np.log1p(np.maximum(values, 0.0)), np.nan)
        known = np.isfinite(values)
        best = values[known].max() if known.any() else np.nan
        table[f"{name}_score"] = values
        table[f"{name}_rel"] = values / best if known.any() and best > 0 else np.full(n, np.nan)
        ranked = np.where(known, values, -np.inf)
        rank = _rank_from_top(ranked)
        table[f"{name}_rank"] = np.where(known, np.log1p(rank), np.nan)
        table[f"{name}_top"] = np.where(known, (rank == 0).astype(float), np.nan)


def _alert_features(signals: CaseSignals, alert_service: str | None) -> None:
    table = signals.table
    n = len(signals.services)
    alerting = signals.services.index(alert_service) if alert_service in signals.services else None
    table["alert_known"] = np.full(n, float(alerting is not None))
    table["alert_self"] = np.full(n, np.nan) if alerting is None else (np.arange(n) == alerting).astype(float)
    if alerting is None or not signals.adjacency.size:
        table["alert_upstream"] = np.full(n, np.nan)
        table["alert_hops"] = np.full(n, np.nan)
        return
    # Breadth-first from the alerting component along calls: what it depends on, and how far.
    hops = np.full(n, np.inf)
    hops[alerting] = 0
    frontier = [alerting]
    while frontier:
        reached = np.flatnonzero(signals.adjacency[frontier].any(axis=0) & ~np.isfinite(hops))
        hops[reached] = hops[frontier[0]] + 1
        frontier = [int(i) for i in reached]
    table["alert_upstream"] = np.isfinite(hops).astype(float)
    table["alert_hops"] = np.where(np.isfinite(hops), np.log1p(hops), np.nan)


def _log_features(signals: CaseSignals, logs: pd.DataFrame | None) -> None:
    table = signals.table
    n, k = len(signals.services), len(FAULTS)
    if logs is None:
        table["log_burst"] = np.full(n, np.nan)
        table["log_mentions"] = np.full(n, np.nan)
        return
    cp = signals.change_point
    level = logs["level"].str.upper()
    errors = logs.loc[level.isin(_ERROR_LEVELS).to_numpy(), ["time", "service", "message"]]
    start, end = float(signals.frame.times[0]), float(signals.frame.times[-1])
    before_minutes = max(cp - start, 1.0) / 60.0
    after_minutes = max(end - cp, 1.0) / 60.0
    position = {name: i for i, name in enumerate(signals.services)}
    service = errors["service"].map(position).fillna(-1).to_numpy(dtype=int)
    after = errors["time"].to_numpy() >= cp
    known = service >= 0
    before_counts = np.bincount(service[known & ~after], minlength=n)
    after_counts = np.bincount(service[known & after], minlength=n)
    table["log_burst"] = np.log1p(after_counts / after_minutes) - np.log1p(before_counts / before_minutes)
    # Messages repeat a lot: match each distinct one once.
    codes, uniques = pd.factorize(errors["message"])
    names = sorted((name for name in signals.services if len(name) >= 2), key=len, reverse=True)
    pattern = (
        re.compile(r"(?<![\w-])(" + "|".join(re.escape(name) for name in names) + r")(?![\w-])") if names else None
    )
    unique_mentions = [
        sorted({position[m] for m in pattern.findall(str(text))}) if pattern is not None else [] for text in uniques
    ]
    unique_faults = np.array(
        [[bool(LOG_PATTERNS[fault].search(str(text))) for fault in FAULTS] for text in uniques], dtype=bool
    ).reshape(len(uniques), k)
    # Explode (line, mentioned component) pairs without a Python loop over lines.
    lengths = np.array([len(m) for m in unique_mentions], dtype=int)
    flat = np.array([t for m in unique_mentions for t in m], dtype=int)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, dtype=int)
    row_lengths = lengths[codes] if len(codes) else np.zeros(0, dtype=int)
    rows = np.repeat(np.arange(len(codes)), row_lengths)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(row_lengths) - row_lengths, row_lengths)
    targets = flat[starts[codes[rows]] + within] if len(rows) else np.zeros(0, dtype=int)
    keep = targets != service[rows]
    rows, targets = rows[keep], targets[keep]
    mention_before = np.bincount(targets[~after[rows]], minlength=n)
    mention_after = np.bincount(targets[after[rows]], minlength=n)
    table["log_mentions"] = np.log1p(mention_after / after_minutes) - np.log1p(mention_before / before_minutes)
    own = np.zeros((n, k))
    fault_hits = unique_faults[codes] if len(codes) else np.zeros((0, k), dtype=bool)
    mask = known & after
    np.add.at(own, service[mask], fault_hits[mask].astype(float))
    mention = np.zeros((n, k))
    mask = after[rows]
    np.add.at(mention, targets[mask], fault_hits[rows[mask]].astype(float))
    signals.log_own = np.log1p(own / after_minutes)
    signals.log_mention = np.log1p(mention / after_minutes)
    signals.log_lines = LogIndex(
        service=service[after],
        code=codes[after],
        messages=[str(text) for text in uniques],
        fault_hits=unique_faults,
        mentions=unique_mentions,
        logger_names=[str(name) for name in errors["service"].to_numpy()[after]],
    )


def _trace_features(signals: CaseSignals, traces: pd.DataFrame | None) -> None:
    table = signals.table
    n = len(signals.services)
    names = ("trace_self_delta", "trace_error_delta", "trace_error_origin", "trace_vanished")
    if traces is None or "time" not in traces.columns or not len(traces):
        for name in names:
            table[name] = np.full(n, np.nan)
        return
    position = {name: i for i, name in enumerate(signals.services)}
    service = traces["service"].map(position).fillna(-1).to_numpy(dtype=int)
    failed = traces["status"].str.lower().isin(("error", "failed", "fail", "err", "2")).to_numpy()
    duration = traces["duration"].to_numpy(dtype=float)
    span_codes, span_uniques = pd.factorize(traces["span_id"])
    parent_codes = pd.Index(span_uniques).get_indexer(traces["parent"])
    has_parent = parent_codes >= 0
    child_time = np.zeros(len(span_uniques))
    child_errors = np.zeros(len(span_uniques))
    np.add.at(child_time, parent_codes[has_parent], duration[has_parent])
    np.add.at(child_errors, parent_codes[has_parent], failed[has_parent])
    self_time = np.maximum(duration - child_time[span_codes], 0.0)
    origin = failed & (child_errors[span_codes] == 0)
    after = traces["time"].to_numpy(dtype=float) >= signals.change_point
    known = service >= 0
    counts = np.zeros((n, 2))
    np.add.at(counts, (service[known], after[known].astype(int)), 1.0)
    errors = np.zeros((n, 2))
    np.add.at(errors, (service[known], after[known].astype(int)), failed[known])
    origins = np.zeros((n, 2))
    np.add.at(origins, (service[known], after[known].astype(int)), origin[known])
    medians = (
        pd.DataFrame({"s": service[known], "a": after[known], "t": self_time[known]}).groupby(["s", "a"])["t"].median()
    )
    median = np.full((n, 2), np.nan)
    if len(medians):
        index = medians.index
        median[index.get_level_values(0).to_numpy(dtype=int), index.get_level_values(1).to_numpy(dtype=int)] = (
            medians.to_numpy()
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        table["trace_self_delta"] = np.log((median[:, 1] + 0.1) / (median[:, 0] + 0.1))
        rate = errors / counts
        table["trace_error_delta"] = rate[:, 1] - rate[:, 0]
        origin_rate = origins / counts
        table["trace_error_origin"] = origin_rate[:, 1] - origin_rate[:, 0]
    table["trace_vanished"] = np.where(counts[:, 0] > 0, (counts[:, 1] == 0).astype(float), np.nan)
    signals.trace_counts = pd.DataFrame(
        {"before": counts[:, 0], "after": counts[:, 1], "errors_after": errors[:, 1], "origin_after": origins[:, 1]},
        index=signals.services,
    )


def _observation_features(signals: CaseSignals) -> None:
    table = signals.table
    obs = signals.observations
    n = len(signals.services)
    position = {name: i for i, name in enumerate(signals.services)}

    def empty() -> np.ndarray:
        return np.full(n, np.nan)

    db_usage, db_long, db_longest, db_locks = empty(), empty(), empty(), empty()
    for snapshot in obs.db:
        i = position.get(snapshot.service)
        if i is None:
            continue
        db_usage[i] = snapshot.usage if snapshot.usage is not None else np.nan
        db_long[i] = np.log1p(snapshot.long_running)
        db_longest[i] = np.log1p(snapshot.longest_seconds)
        db_locks[i] = np.log1p(snapshot.waiting_on_locks)
    table.update(db_usage=db_usage, db_long_running=db_long, db_longest=db_longest, db_locks=db_locks)
    health_bad, unreachable, health_latency = empty(), empty(), empty()
    for check in obs.health:
        i = position.get(check.service)
        if i is None:
            continue
        health_bad[i] = float(not check.ok)
        unreachable[i] = float(check.unreachable)
        health_latency[i] = np.log1p(check.latency_ms) if check.latency_ms is not None else np.nan
    table.update(health_bad=health_bad, health_unreachable=unreachable, health_latency=health_latency)
    hit, evicted, memory, rejected = empty(), empty(), empty(), empty()
    for stats in obs.cache:
        i = position.get(stats.service)
        if i is None:
            continue
        hit[i] = stats.hit_ratio if stats.hit_ratio is not None else np.nan
        evicted[i] = np.log1p(stats.evicted_keys)
        memory[i] = stats.memory_usage if stats.memory_usage is not None else np.nan
        rejected[i] = np.log1p(stats.rejected_connections)
    table.update(cache_hit_ratio=hit, cache_evicted=evicted, cache_memory=memory, cache_rejected=rejected)
    recent = empty()
    if obs.deploys:
        recent[:] = 0.0
        cp = signals.change_point
        for event in obs.deploys:
            i = position.get(event.service)
            if i is None:
                continue
            lead = cp - event.time
            # A deploy shortly before the change (or within a scrape of it) is a suspect.
            if -event.late_tolerance(signals.frame.step) <= lead <= DEPLOY_WINDOW:
                recent[i] = max(recent[i], float(np.exp(-max(lead, 0.0) / 300.0)))
    table["deploy_recent"] = recent
    restarts, not_ready, oom, crashloop = empty(), empty(), empty(), empty()
    for pod in obs.pods:
        i = position.get(pod.service)
        if i is None:
            continue
        reason = (pod.reason or "").lower()
        restarts[i] = np.fmax(restarts[i], np.log1p(pod.restarts))
        not_ready[i] = np.fmax(not_ready[i], float(not pod.ready))
        oom[i] = np.fmax(oom[i], float("oom" in reason))
        crashloop[i] = np.fmax(crashloop[i], float("crashloop" in reason or "backoff" in reason))
    table.update(pod_restarts=restarts, pod_not_ready=not_ready, pod_oom=oom, pod_crashloop=crashloop)


def component_table(signals: CaseSignals) -> pd.DataFrame:
    """One row per component: ``service`` and ``COMPONENT_FEATURES``."""
    table = signals.table
    frame = pd.DataFrame({name: table[name] for name in COMPONENT_FEATURES})
    frame.insert(0, "service", signals.services)
    return frame
