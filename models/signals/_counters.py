"""Prometheus counters, read as the rates they count.

A counter (OpenMetrics names every one ``*_total``) only ever rises, but for a reset when its
process restarts. Exported as it is, an error burst is a bend in an ever-rising line, a healthy
pod's restart is a cliff, and a steady rate is a trend that leaves any normal period behind.
What changes at an incident is how fast it rises: each such column is read as Prometheus's
``rate()`` over ``RATE_WINDOW``, a reset counting as a rise from zero. A column named so that
falls more often than resets do (a rate exported under the counter's name) is left as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Seconds over which a counter's rate is taken (``rate(x[1m])``).
RATE_WINDOW = 60.0
#: A counter falls only when it resets: at most this share of its moves may be falls.
_MAX_RESET_SHARE = 0.02


def counter_columns(metrics: list[str], values: np.ndarray) -> np.ndarray:
    """Per column: ``True`` where it is a Prometheus counter (named ``*_total`` and only rising,
    but for resets)."""
    named = np.array([metric.endswith("_total") for metric in metrics], dtype=bool)
    if not named.any():
        return named
    steps = np.diff(pd.DataFrame(values[:, named]).ffill().to_numpy(), axis=0)
    falls = (steps < 0).sum(axis=0)
    moves = (np.nan_to_num(steps) != 0).sum(axis=0)
    result = np.zeros(len(metrics), dtype=bool)
    result[np.flatnonzero(named)] = falls <= np.maximum(1, _MAX_RESET_SHARE * moves)
    return result


def counter_rates(values: np.ndarray, times: np.ndarray, step: float) -> np.ndarray:
    """Per-second rates of counter columns over ``RATE_WINDOW`` (shorter at the start), ``step``
    being the frame's sampling step; missing where the counter was missing, so that a counter that
    stopped reporting still did."""
    filled = pd.DataFrame(values).ffill().to_numpy()
    increase = np.diff(filled, axis=0)
    # After a reset the counter counts from zero: all of its new value is new.
    increase = np.where(increase < 0, filled[1:], increase)
    counted = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(np.nan_to_num(increase), axis=0)])
    window = max(1, round(RATE_WINDOW / step))
    back = np.maximum(np.arange(len(times)) - window, 0)
    elapsed = (times - times[back])[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (counted - counted[back]) / elapsed
    rates[0] = rates[1] if len(rates) > 1 else 0.0
    return np.where(np.isnan(values), np.nan, rates)
