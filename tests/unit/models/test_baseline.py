import numpy as np
import pandas as pd
from sklearn.preprocessing import RobustScaler

from models import FaultType, ServiceKind, Telemetry
from models.domain._types import MetricKind
from models.signals._baseline import baro_rank, baro_scores, fault_of_metric, service_ranking
from models.signals._frame import metric_frame


def test_scores_match_robust_scaler_by_definition() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10, 2, (100, 3))
    values[60:, 1] += 9
    times = np.arange(100.0)
    scores = baro_scores(values, times, inject_time=60.0)
    for column in range(3):
        scaler = RobustScaler().fit(values[:60, column : column + 1])
        expected = scaler.transform(values[60:, column : column + 1]).max()
        assert np.isclose(scores[column], expected)
    assert np.argmax(scores) == 1


def test_constant_columns_are_dropped_and_zero_spread_is_unscaled() -> None:
    values = np.zeros((50, 2))
    values[:, 1] = [0.0] * 40 + [3.0] * 10  # zero IQR before: RobustScaler leaves it unscaled
    scores = baro_scores(values, np.arange(50.0), inject_time=40.0)
    assert scores[0] == -np.inf
    assert scores[1] == 3.0


def test_rank_maps_top_metrics_to_service_and_fault() -> None:
    times = 1_700_000_000.0 + np.arange(200)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "time": times,
            "db_connections": np.r_[rng.normal(20, 1, 100), np.full(100, 100.0)],
            "web_latency-50": np.r_[rng.normal(50, 2, 100), rng.normal(70, 2, 100)],
            "web_cpu": rng.normal(30, 1, 200),
        }
    )
    entries = baro_rank(metric_frame(Telemetry(metrics=frame)), times[100], {"db": ServiceKind.DATABASE})
    assert (entries[0].service, entries[0].fault, entries[0].metric) == (
        "db",
        FaultType.DB_POOL_EXHAUSTED,
        "db_connections",
    )
    assert service_ranking(entries)[:2] == ["db", "web"]


def test_fault_of_metric_respects_the_component_kind() -> None:
    assert fault_of_metric(MetricKind.LATENCY, ServiceKind.DATABASE) is FaultType.DB_SLOW_QUERY
    # A service's connection metrics are its own pool's (HikariCP's pending threads).
    assert fault_of_metric(MetricKind.CONNECTIONS, ServiceKind.SERVICE) is FaultType.DB_POOL_EXHAUSTED
    assert fault_of_metric(MetricKind.SLOW_QUERIES, ServiceKind.SERVICE) is FaultType.LATENCY
    assert fault_of_metric(MetricKind.CPU, ServiceKind.CACHE) is FaultType.CPU
    assert fault_of_metric(MetricKind.RESTARTS, ServiceKind.SERVICE) is FaultType.DEPENDENCY_DOWN
