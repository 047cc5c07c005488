"""Is the alert a real anomaly, and when did it start? From metrics alone.

The change point is where many metrics step at once: for every second, each metric's mean over
the next few seconds is compared with its mean over the half-minute before, in units of its
normal spread; the second where the most (and the largest) steps line up locates the change.
Slow drifts (traffic, a leak elsewhere) make small steps; a decoy moves one or two metrics, a
fault many. The start is then the earliest split point, by least squares, among the metrics
that moved most (callers follow their dependency with a delay, the first mover started it).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models._signals import (
    ONSET_THRESHOLD,
    Deviations,
    MetricFrame,
    deviations,
    metric_frame,
    robust_center_scale,
)
from models._telemetry import Telemetry

#: Score (the three strongest sustained deviations that began at the change) of a real anomaly.
#: Chosen for recall: a missed incident ends the analysis, a false alarm only costs one. On
#: simulated incidents vs healthy systems with decoys (80 each): 94 % detected, 26 % of healthy
#: ones flagged (at 20: 81 % and 6 %).
ANOMALY_THRESHOLD = 10.0
#: A metric that started moving this close to the change point (seconds) moved with it.
CHANGE_WINDOW = 30.0
#: Strength from which a metric counts as involved.
_INVOLVED = 3.0
#: An alert fires after the change (Alertmanager ``for:``); a change this long after it is not it.
ALERT_SLACK = 10.0
_MIN_SEGMENT = 10
#: Seconds after and before a candidate change point compared by the step statistic.
_STEP_AFTER = 10.0
_STEP_BEFORE = 30.0


class Detection(BaseModel):
    """Whether something changed, when, and where it shows most."""

    model_config = ConfigDict(frozen=True)

    is_anomaly: bool
    #: Epoch seconds; ``None`` when the series is too short to tell.
    change_point: float | None
    score: float
    #: Components with sustained deviations, strongest first.
    involved_services: list[str] = Field(default_factory=list)
    #: Metric columns with sustained deviations, strongest first (at most 25).
    anomalous_metrics: list[str] = Field(default_factory=list)


def detect(telemetry: Telemetry, alert_time: float | None = None) -> Detection:
    """Decide whether ``telemetry`` holds an anomaly and when it started.

    Args:
        telemetry: metrics (logs and traces are not needed).
        alert_time: when the alert fired (epoch seconds); the change is searched before it.

    Returns:
        The detection; ``change_point`` is the estimated start of the anomaly.
    """
    return detect_frame(metric_frame(telemetry), alert_time)[0]


def detect_frame(frame: MetricFrame, alert_time: float | None = None) -> tuple[Detection, Deviations | None]:
    """``detect`` on prepared arrays, also returning the deviations at the change point."""
    if len(frame.times) < 2 * _MIN_SEGMENT:
        return Detection(is_anomaly=False, change_point=None, score=0.0), None
    change_point = find_change_point(frame, alert_time)
    found = deviations(frame, change_point)
    # A metric's strength: how far it moved (capped) times how much of the time since it stayed
    # there. The score adds the three strongest that moved at the change: one metric jumping
    # alone (a batch job, a CPU spike) scores less than a fault that spreads to its callers.
    strength = found.persistence * np.minimum(np.abs(found.peak), 50.0)
    at_change = np.abs(np.nan_to_num(found.onset, nan=np.inf)) <= CHANGE_WINDOW
    score = float(np.sort(np.where(at_change, strength, 0.0))[::-1][:3].sum()) if strength.size else 0.0
    order = np.argsort(-strength, kind="stable")
    anomalous = [j for j in order if strength[j] >= _INVOLVED and abs(found.peak[j]) > ONSET_THRESHOLD]
    services: list[str] = []
    for j in anomalous:
        name = frame.services[frame.service_of[j]]
        if name not in services:
            services.append(name)
    detection = Detection(
        is_anomaly=score >= ANOMALY_THRESHOLD,
        change_point=change_point,
        score=round(score, 4),
        involved_services=services,
        anomalous_metrics=[frame.columns[j] for j in anomalous[:25]],
    )
    return detection, found


def _split_points(window: np.ndarray) -> np.ndarray:
    """Per column, the index splitting it into two segments with the least squared error."""
    m = len(window)
    if m < 4:
        return np.zeros(window.shape[1], dtype=int)
    cumulative = np.vstack([np.zeros((1, window.shape[1])), np.cumsum(window, axis=0)])
    ks = np.arange(2, m - 1)
    left = cumulative[ks] / ks[:, None]
    right = (cumulative[m] - cumulative[ks]) / (m - ks)[:, None]
    # Maximising the between-segment sum of squares minimises the within-segment one.
    gain = (ks * (m - ks) / m)[:, None] * (left - right) ** 2
    return ks[np.argmax(gain, axis=0)]


def find_change_point(frame: MetricFrame, alert_time: float | None = None) -> float:
    """The epoch second where the anomaly starts (see the module docstring)."""
    times = frame.times
    n = len(times)
    end = n if alert_time is None else int(np.searchsorted(times, alert_time + ALERT_SLACK, side="right"))
    end = min(max(end, 2 * _MIN_SEGMENT), n)
    after = max(3, int(_STEP_AFTER / frame.step))
    before = max(5, int(_STEP_BEFORE / frame.step))
    if n < after + before + 2:
        return float(times[n // 2])
    reference = frame.filled[: max(_MIN_SEGMENT, end // 3)]
    _, scale = robust_center_scale(reference)
    # For every t, each metric's step: mean of the next ``after`` samples minus the mean of the
    # previous ``before`` ones, in units of its normal spread. Slow drifts make small steps.
    cumulative = np.vstack([np.zeros((1, frame.n_columns)), np.cumsum(frame.filled, axis=0)])
    ts = np.arange(before, min(end, n - after + 1))
    if len(ts) == 0:
        return float(times[n // 2])
    step = (cumulative[ts + after] - cumulative[ts]) / after - (cumulative[ts] - cumulative[ts - before]) / before
    step = np.abs(step / scale)
    share = np.where(step > ONSET_THRESHOLD, np.minimum(step, 20.0), 0.0).mean(axis=1)
    # The first time the alignment reaches half its maximum: a fault that comes and goes aligns
    # as well when it stops as when it starts, and it is the start we are after.
    peak = int(np.argmax(share >= 0.5 * share.max()))
    window = min(len(share), peak + after)
    peak += int(np.argmax(share[peak:window]))
    movers = np.flatnonzero(step[peak] > ONSET_THRESHOLD)
    if len(movers) == 0:
        return float(times[ts[peak]])
    # The share peaks when most metrics have moved, a few seconds after the first ones (callers
    # follow their dependency). Each strongly moving metric's own split point, by a two-mean
    # least-squares fit around the peak; the earliest of the strongest half is the start.
    strength = step[peak, movers]
    strongest = movers[strength >= np.median(strength)]
    lo = max(0, ts[peak] - 2 * after - before // 2)
    hi = min(n, ts[peak] + 2 * after)
    splits = _split_points(frame.filled[lo:hi, strongest] / scale[strongest])
    return float(times[lo + int(splits.min())])
