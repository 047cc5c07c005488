"""Metric deviations: the numbers detection, the baseline and the ranker's features all read.

A metric's deviation is robust: median and inter-quartile range of the normal period, so a few
spikes before the incident do not make an incident look normal. Values are smoothed with a
short rolling mean before peaks and onsets are read, so that one scrape spike is not an anomaly.
A metric whose normal values already span orders of magnitude is read on a log scale: where each
metric compounds its causes (a square, a product), a cause's modest shift becomes an explosion a
few hops downstream, and on a linear scale the loudest metric is the one furthest from the cause.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from models.domain._telemetry import Telemetry, column_splitter
from models.domain._types import MetricKind, metric_kind
from models.signals._counters import counter_columns, counter_rates

#: A smoothed robust z above this is anomalous.
ONSET_THRESHOLD = 4.0
#: Samples in the rolling mean that separates a shift from a spike.
SMOOTHING = 5
#: How far before the change point an onset may be found (seconds).
ONSET_LOOKBACK = 60.0
#: Samples skipped just before the change point when fitting the normal period.
GUARD_SAMPLES = 3
#: A metric missing this much more of the time since the change than before went silent.
SILENT_SHARE = 0.5
_Z_CAP = 1e4
#: A normal period whose 90th percentile of |x| exceeds its median this many times spans magnitudes.
SPAN_RATIO = 5.0


@dataclass(frozen=True)
class MetricFrame:
    """The metrics as arrays, with each column's service and kind."""

    times: np.ndarray
    values: np.ndarray
    filled: np.ndarray
    columns: list[str]
    metrics: list[str]
    kinds: np.ndarray
    services: list[str]
    service_of: np.ndarray
    step: float
    #: Per column: a Prometheus counter, whose ``values`` are its per-second rate (``_counters``).
    counters: np.ndarray

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @cached_property
    def logged(self) -> np.ndarray:
        """``filled`` on the signed-log scale: the deviations and the residual statistics both read it."""
        return slog(self.filled)

    def columns_of(self, service: str) -> np.ndarray:
        return np.flatnonzero(self.service_of == self.services.index(service))


def metric_frame(telemetry: Telemetry, known_services: Iterable[str] = ()) -> MetricFrame:
    """Arrays of ``telemetry.metrics`` (gaps forward- then back-filled in ``filled``)."""
    split = column_splitter(known_services)
    frame = telemetry.metrics
    columns = telemetry.metric_columns()
    values = frame[columns].to_numpy(dtype=float, copy=True)
    times = frame["time"].to_numpy(dtype=float)
    services: list[str] = []
    position: dict[str, int] = {}
    service_of = np.empty(len(columns), dtype=np.int64)
    metrics = []
    for j, column in enumerate(columns):
        service, metric = split(column)
        if service not in position:
            position[service] = len(services)
            services.append(service)
        service_of[j] = position[service]
        metrics.append(metric)
    kinds = np.array([metric_kind(metric).value for metric in metrics], dtype=object)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    step = step if step > 0 else 1.0
    counters = counter_columns(metrics, values)
    if counters.any():
        values[:, counters] = counter_rates(values[:, counters], times, step)
    return MetricFrame(
        times=times,
        values=values,
        filled=_fill(_bounded(values), appeared_from_zero=kinds != MetricKind.LATENCY.value),
        columns=columns,
        metrics=metrics,
        kinds=kinds,
        services=services,
        service_of=service_of,
        step=step,
        counters=counters,
    )


def _bounded(values: np.ndarray) -> np.ndarray:
    """±Inf as a value beyond its column's finite ones (by their range, or their size when flat).
    Prometheus writes +Inf where a quantile lies above a histogram's highest bucket: the latency is
    further out than anything measured, and no statistic survives an infinity."""
    infinite = np.isinf(values)
    if not infinite.any():
        return values
    finite = np.where(infinite, np.nan, values)
    largest, smallest = np.fmax.reduce(finite, axis=0), np.fmin.reduce(finite, axis=0)
    beyond = np.maximum(largest - smallest, np.maximum(np.abs(largest), np.abs(smallest)))
    return np.where(values == np.inf, largest + beyond, np.where(values == -np.inf, smallest - beyond, values))


#: A series missing for this share of the window at its start (and ten samples at least) did not
#: exist before (see ``_fill``); a scrape that began a few samples late is only a gap.
_APPEARED_LATE = 0.1


def _fill(values: np.ndarray, appeared_from_zero: np.ndarray) -> np.ndarray:
    """Forward fill along time, then back fill the leading gap; all-NaN columns become 0.

    A series that begins well into the window (``_APPEARED_LATE``) did not exist before: Prometheus
    has no series for an error code, an OOM kill or a pod until the first one. Where
    ``appeared_from_zero``, its leading gap is 0 (no such event, no such pod), not its first value;
    a latency has no value without requests, so it keeps the back fill.
    """
    gaps = np.isnan(values).any(axis=0)
    if not gaps.any():
        return values.copy()
    filled = values.copy()
    leading = np.argmax(~np.isnan(values), axis=0)
    late = gaps & appeared_from_zero & (leading >= max(10, _APPEARED_LATE * len(values)))
    for j in np.flatnonzero(late):
        filled[: leading[j], j] = 0.0
    filled[:, gaps] = pd.DataFrame(filled[:, gaps]).ffill().bfill().fillna(0.0).to_numpy()
    return filled


def robust_center_scale(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and a floored inter-quartile range per column of ``normal``.

    The floor keeps counters that are flat in the normal period (errors at 0, no evictions) from
    turning their first non-zero value into an infinite deviation.
    """
    if len(normal) == 0:
        return np.zeros(normal.shape[1]), np.ones(normal.shape[1])
    q25, median, q75 = np.percentile(normal, [25, 50, 75], axis=0)
    spread = np.std(normal, axis=0)
    scale = np.maximum.reduce([q75 - q25, 0.5 * spread, 0.02 * np.abs(median), np.full_like(median, 1e-3)])
    return median, scale


def slog(values: np.ndarray | float) -> np.ndarray:
    """Signed ``log1p``: keeps zero and the direction, tames the scale."""
    array = np.asarray(values, dtype=float)
    return np.sign(array) * np.log1p(np.abs(array))


def spans_magnitudes(normal: np.ndarray) -> np.ndarray:
    """Per column: do its normal values span orders of magnitude (a tenth of them beyond five times
    the median |x|, as a log-normal with a log-spread over 1.25)? Such a metric compounds its causes
    (a square, a product) and is read on a log scale, where one multiplicative change is one step, not
    an explosion. The body of the distribution decides, not its tail: a latency with a few spikes in
    its normal period is not such a metric; nor is a counter that is mostly zero."""
    if len(normal) == 0:
        return np.zeros(normal.shape[1], dtype=bool)
    magnitude = np.abs(normal)
    typical, high = np.percentile(magnitude, [50, 90], axis=0)
    return (typical > 0) & (high > SPAN_RATIO * typical)


def smooth(z: np.ndarray, window: int = SMOOTHING) -> np.ndarray:
    """Trailing rolling mean along time: a sample never sees the future, and a one-sample spike
    keeps a fifth of its height while a shift keeps all of it."""
    if len(z) < window:
        return z.copy()
    cumulative = np.cumsum(z, axis=0)
    smoothed = np.empty_like(z)
    smoothed[window - 1] = cumulative[window - 1] / window
    smoothed[window:] = (cumulative[window:] - cumulative[:-window]) / window
    smoothed[: window - 1] = cumulative[: window - 1] / np.arange(1, window)[:, None]
    return smoothed


@dataclass(frozen=True)
class Deviations:
    """How every metric column deviates after ``change_point`` from its normal period before it."""

    change_point: float
    split: int
    #: The normal period's median, in the metric's own unit.
    median: np.ndarray
    #: The normal period's robust spread, in log units where ``log_scale``.
    scale: np.ndarray
    z: np.ndarray
    #: Largest smoothed |z| after the change point, with its sign.
    peak: np.ndarray
    #: Largest raw z after the change point (BARO's score, for the evidence text).
    peak_up: np.ndarray
    #: Mean smoothed z after the change point (a shift that lasts, not a blip).
    level: np.ndarray
    #: Fraction of samples after the change point with smoothed |z| over the threshold.
    persistence: np.ndarray
    #: Seconds from the change point to the first sustained crossing, or to the first missing sample
    #: of a metric that went silent (NaN when neither).
    onset: np.ndarray
    #: Fraction of missing samples after minus before (a component that stopped reporting).
    missing: np.ndarray
    #: Per column: was it read on a log scale (``spans_magnitudes``)? Its z is then in log units.
    log_scale: np.ndarray


def deviations(frame: MetricFrame, change_point: float) -> Deviations:
    """Deviations of every metric around ``change_point`` (epoch seconds)."""
    times = frame.times
    split = int(np.searchsorted(times, change_point, side="left"))
    split = min(max(split, 2), len(times) - 1) if len(times) > 3 else max(1, len(times) // 2)
    normal_end = max(split - GUARD_SAMPLES, max(2, split // 2))
    normal = frame.filled[:normal_end]
    spanning = spans_magnitudes(normal)
    values = np.where(spanning, frame.logged, frame.filled) if spanning.any() else frame.filled
    median, scale = robust_center_scale(values[:normal_end])
    z = np.clip((values - median) / scale, -_Z_CAP, _Z_CAP)
    if spanning.any():
        # The median is the same on both scales; the text quotes it in the metric's own unit.
        median = np.where(spanning, np.median(normal, axis=0), median)
    smoothed = smooth(z)
    after = smoothed[split:]
    if len(after) == 0:
        after = smoothed[-1:]
    arg = np.argmax(np.abs(after), axis=0)
    peak = after[arg, np.arange(after.shape[1])]
    peak_up = np.max(z[split:], axis=0) if split < len(z) else z[-1]
    level = after.mean(axis=0)
    over = np.abs(after) > ONSET_THRESHOLD
    persistence = over.mean(axis=0)
    lookback = int(np.searchsorted(times, change_point - ONSET_LOOKBACK, side="left"))
    window = np.abs(smoothed[lookback:]) > ONSET_THRESHOLD
    hit = window.any(axis=0)
    first = np.argmax(window, axis=0)
    onset = np.where(hit, times[np.minimum(lookback + first, len(times) - 1)] - change_point, np.nan)
    missing_values = np.isnan(frame.values)
    before_missing = missing_values[:split].mean(axis=0) if split else np.zeros(frame.n_columns)
    after_missing = missing_values[split:].mean(axis=0) if split < len(times) else np.zeros(frame.n_columns)
    missing = after_missing - before_missing
    # A metric that went silent (its process stopped, its target no longer answers scrapes) changed
    # when its samples stopped, which no z shows: that is its onset (from the same lookback).
    silent = missing > SILENT_SHARE
    if silent.any() and lookback < len(times):
        stopped = times[lookback + np.argmax(missing_values[lookback:], axis=0)] - change_point
        onset = np.where(silent, np.fmin(onset, stopped), onset)
    return Deviations(
        change_point=float(change_point),
        split=split,
        median=median,
        scale=scale,
        z=smoothed,
        peak=peak,
        peak_up=peak_up,
        level=level,
        persistence=persistence,
        onset=onset,
        missing=missing,
        log_scale=spanning,
    )


def kind_mask(frame: MetricFrame, kinds: Iterable[MetricKind]) -> np.ndarray:
    wanted = {kind.value for kind in kinds}
    return np.array([kind in wanted for kind in frame.kinds], dtype=bool)
