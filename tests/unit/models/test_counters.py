"""Prometheus counters are read as the rates they count."""

import numpy as np
import pandas as pd

from models import DiagnosisModel, Telemetry, analyze
from models.signals import metric_frame
from models.signals._counters import counter_columns, counter_rates


def test_a_counter_becomes_its_rate_and_a_reset_counts_from_zero() -> None:
    times = np.arange(0.0, 600.0, 15.0)
    counter = np.cumsum(np.full(len(times), 15.0))  # 1 per second
    counter[20:] = np.cumsum(np.full(len(times) - 20, 15.0))  # the process restarted: from 0 again
    rates = counter_rates(counter[:, None], times, float(times[1] - times[0]))[:, 0]
    np.testing.assert_allclose(rates, 1.0)


def test_only_columns_named_and_behaving_as_counters_are_counters() -> None:
    rng = np.random.default_rng(1)
    rising = np.cumsum(rng.uniform(0, 2, 200))
    falling_often = 50 + rng.normal(0, 1, 200)
    values = np.column_stack([rising, falling_often, rising])
    names = ["http_errors_total", "memory_total", "http_errors"]
    assert counter_columns(names, values).tolist() == [True, False, False]


def test_a_missing_counter_stays_missing() -> None:
    times = np.arange(100.0)
    counter = np.arange(100.0)
    counter[60:] = np.nan  # it stopped reporting
    rates = counter_rates(counter[:, None], times, float(times[1] - times[0]))[:, 0]
    assert np.isnan(rates[60:]).all() and np.allclose(rates[:60], 1.0)


def _frame_with_counters(seed: int, burst: bool, restart: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = 1_767_225_600 + 15 * np.arange(120.0)
    columns: dict[str, np.ndarray] = {"time": times}
    for service in ("cart", "shop", "auth"):
        columns[f"{service}_cpu"] = 0.3 + rng.normal(0, 0.02, 120)
        rate = np.maximum(2 + rng.normal(0, 0.3, 120), 0)
        if burst and service == "cart":
            rate[80:] *= 20
        counter = np.cumsum(rate * 15)
        if restart and service == "shop":
            counter[60:] -= counter[59]  # a healthy pod restarted: its counter starts again
        columns[f"{service}_http_errors_total"] = counter
    return pd.DataFrame(columns)


def test_an_error_burst_in_a_counter_is_quoted_as_its_rate(small_model: DiagnosisModel) -> None:
    frame = _frame_with_counters(3, burst=True, restart=False)
    analysis = analyze(Telemetry(metrics=frame), alert_time=float(frame["time"][84]), model=small_model)
    top = analysis.hypotheses[0]
    assert analysis.detection.is_anomaly and top.component == "cart"
    assert top.evidence[0].summary.startswith("rate(cart_http_errors_total[1m]) rose from 2")


def test_a_counter_reset_is_not_an_incident() -> None:
    frame = _frame_with_counters(4, burst=False, restart=True)
    metrics = metric_frame(Telemetry(metrics=frame))
    column = metrics.columns.index("shop_http_errors_total")
    assert metrics.counters[column]
    assert np.nanmax(metrics.filled[:, column]) < 5  # about 2 per second throughout, not a cliff
