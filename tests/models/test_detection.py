import numpy as np
import pandas as pd
import pytest

from models import FaultType, Telemetry, detect, simulate_incident


def step_metrics(change: int = 300, rows: int = 600, seed: int = 0, shift: float = 8.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {"time": 1_700_000_000.0 + np.arange(rows)}
    for name in ("a", "b", "c", "d"):
        columns[f"{name}_latency-50"] = 20 + rng.normal(0, 1, rows)
        columns[f"{name}_cpu"] = 40 + rng.normal(0, 2, rows)
    for name in ("a", "b"):
        columns[f"{name}_latency-50"][change:] += shift * (3 if name == "a" else 1)
    return pd.DataFrame(columns)


def test_step_change_is_found_where_it_happened() -> None:
    frame = step_metrics()
    detection = detect(Telemetry(metrics=frame))
    assert detection.is_anomaly
    assert detection.change_point is not None
    assert abs(detection.change_point - frame["time"][300]) <= 3
    assert detection.involved_services[:2] == ["a", "b"]
    assert detection.anomalous_metrics[0] == "a_latency-50"


def test_flat_noise_is_not_an_anomaly() -> None:
    detection = detect(Telemetry(metrics=step_metrics(shift=0.0)))
    assert not detection.is_anomaly
    assert detection.involved_services == []


def test_alert_time_bounds_the_search() -> None:
    frame = step_metrics(change=450)
    # A second, larger change after the alert must not be taken for the cause of it.
    frame.loc[550:, "c_cpu"] += 200
    detection = detect(Telemetry(metrics=frame), alert_time=float(frame["time"][480]))
    assert abs(detection.change_point - frame["time"][450]) <= 3


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("fault", [FaultType.DB_SLOW_QUERY, FaultType.DEPENDENCY_DOWN, FaultType.DB_POOL_EXHAUSTED])
def test_spec_scenarios_are_detected_near_the_fault(seed: int, fault: FaultType) -> None:
    incident = simulate_incident(seed, fault, 20)
    detection = detect(incident.telemetry, alert_time=incident.alert_time)
    assert detection.is_anomaly
    assert incident.inject_time is not None
    assert abs(detection.change_point - incident.inject_time) <= 15


def test_too_short_series_is_no_anomaly() -> None:
    detection = detect(Telemetry(metrics=step_metrics(rows=12, change=6)))
    assert (detection.is_anomaly, detection.change_point) == (False, None)
