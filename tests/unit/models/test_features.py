"""Component features read where a fault is, not only where it is felt."""

import numpy as np
import pandas as pd

from models import Telemetry
from models.signals import deviations, metric_frame
from models.signals._features import case_signals

T0 = 1_700_000_000.0


def _series(seed: int, jump: float = 0.0) -> np.ndarray:
    values = 100 + np.random.default_rng(seed).normal(0, 1, 500)
    values[400:] += jump
    return values


def test_the_largest_move_of_a_cause_metric_is_the_database_s_not_its_callers_latency() -> None:
    # The database's slow queries moved; its callers' latencies moved ten times as far, as they do
    # where every request waits on the database. svc_peak ranks the callers first.
    frame = pd.DataFrame(
        {
            "time": T0 + np.arange(500),
            "orders-db_slow_queries": _series(1, 30),
            "orders-db_cpu": _series(2, 8),
            "checkout_latency": _series(3, 300),
            "checkout_cpu": _series(4, 2),
            "web_latency": _series(5, 250),
            "web_errors": _series(6, 80),
        }
    )
    metrics = metric_frame(Telemetry(metrics=frame))
    signals = case_signals(metrics, deviations(metrics, T0 + 400), Telemetry(metrics=frame), None, None)
    table = {name: dict(zip(signals.services, values, strict=True)) for name, values in signals.table.items()}
    assert table["svc_rank"]["orders-db"] > 0
    assert table["cause_rank"]["orders-db"] == 0.0 and table["cause_rel"]["orders-db"] == 1.0
    assert table["cause_rank"]["checkout"] > 0 and table["cause_rel"]["checkout"] < 0.5
    assert np.isnan(table["cause_peak"]["web"])  # no metric of a cause: unknown, not small


def test_a_component_that_went_silent_moved_as_far_as_anything_did() -> None:
    # cart's process died: its metrics stopped. Its callers' errors and CPU rose far.
    silent = {f"cart_{metric}": _series(seed) for seed, metric in enumerate(("cpu", "latency"), start=1)}
    for values in silent.values():
        values[398:] = np.nan
    frame = pd.DataFrame(
        {"time": T0 + np.arange(500), **silent, "web_errors": _series(4, 300), "web_cpu": _series(5, 40)}
    )
    metrics = metric_frame(Telemetry(metrics=frame))
    signals = case_signals(metrics, deviations(metrics, T0 + 400), Telemetry(metrics=frame), None, None)
    rank = dict(zip(signals.services, signals.table["cause_rank"], strict=True))
    assert rank["cart"] == 0.0 and rank["web"] > 0
