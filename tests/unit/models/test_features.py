"""Component features read where a fault is, not only where it is felt."""

import numpy as np

from tests.unit.models._signals import noisy_series, signals_of


def test_the_largest_move_of_a_cause_metric_is_the_database_s_not_its_callers_latency() -> None:
    # The database's slow queries moved; its callers' latencies moved ten times as far, as they do
    # where every request waits on the database. svc_peak ranks the callers first.
    signals = signals_of(
        {
            "orders-db_slow_queries": noisy_series(1, 30),
            "orders-db_cpu": noisy_series(2, 8),
            "checkout_latency": noisy_series(3, 300),
            "checkout_cpu": noisy_series(4, 2),
            "web_latency": noisy_series(5, 250),
            "web_errors": noisy_series(6, 80),
        }
    )
    table = {name: dict(zip(signals.services, values, strict=True)) for name, values in signals.table.items()}
    assert table["svc_rank"]["orders-db"] > 0
    assert table["cause_rank"]["orders-db"] == 0.0 and table["cause_rel"]["orders-db"] == 1.0
    assert table["cause_rank"]["checkout"] > 0 and table["cause_rel"]["checkout"] < 0.5
    assert np.isnan(table["cause_peak"]["web"])  # no metric of a cause: unknown, not small


def test_a_component_that_went_silent_moved_as_far_as_anything_did() -> None:
    # cart's process died: its metrics stopped. Its callers' errors and CPU rose far.
    silent = {f"cart_{metric}": noisy_series(seed) for seed, metric in enumerate(("cpu", "latency"), start=1)}
    for values in silent.values():
        values[398:] = np.nan
    signals = signals_of({**silent, "web_errors": noisy_series(4, 300), "web_cpu": noisy_series(5, 40)})
    rank = dict(zip(signals.services, signals.table["cause_rank"], strict=True))
    assert rank["cart"] == 0.0 and rank["web"] > 0
