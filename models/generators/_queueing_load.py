"""External load: a daily curve, slow noise on top, and where in the day the window falls.

User traffic follows the day (a morning climb, a lunch and an evening peak, a night trough); within
minutes it wanders around that curve (correlated noise: campaigns, crawlers, mobile clients waking
up), and per second it is Poisson (added where requests are counted, in ``_queueing_exporters``).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

#: 2026-01-05T00:00:00Z, a Monday: windows fall on days after it.
_EPOCH_BASE = 1_767_571_200
_HOURS = np.linspace(0.0, 24.0, 24 * 60 + 1)


def _daily_curve(hours: np.ndarray) -> np.ndarray:
    bumps = (
        0.55 * np.exp(-(((hours - 11.0) / 3.0) ** 2))
        + 0.35 * np.exp(-(((hours - 15.5) / 2.5) ** 2))
        + 0.5 * np.exp(-(((hours - 20.5) / 2.5) ** 2))
    )
    return 0.2 + 0.8 * bumps


_PEAK = float(_daily_curve(_HOURS).max())


def daily_factor(epoch_seconds: np.ndarray) -> np.ndarray:
    """Load relative to the daily peak (1.0) at these times."""
    hours = (np.asarray(epoch_seconds) % 86400) / 3600.0
    return _daily_curve(hours) / _PEAK


def window_start(rng: np.random.Generator) -> int:
    """Epoch seconds of a window's start; incidents cluster in busy hours, some happen at night."""
    day = int(rng.integers(0, 365))
    hour = float(rng.uniform(7.0, 23.5)) if rng.random() < 0.85 else float(rng.uniform(0.0, 7.0))
    return _EPOCH_BASE + day * 86400 + int(hour * 3600)


def correlated_noise(rng: np.random.Generator, steps: int, sigma: float, tau: float) -> np.ndarray:
    """AR(1) noise with standard deviation ``sigma`` and correlation time ``tau`` seconds."""
    a = float(np.exp(-1.0 / max(tau, 1.0)))
    shocks = rng.standard_normal(steps + int(5 * tau)) * sigma * np.sqrt(1 - a * a)
    return lfilter([1.0], [1.0, -a], shocks)[-steps:]


def external_load(rng: np.random.Generator, peaks: np.ndarray, start: int, steps: int) -> np.ndarray:
    """Requests/s arriving from outside at each component (``peaks[i]`` at the daily peak)."""
    times = start + np.arange(steps)
    curve = daily_factor(times)
    load = np.zeros((len(peaks), steps))
    for i in np.flatnonzero(peaks > 0):
        noise = correlated_noise(rng, steps, float(rng.uniform(0.03, 0.08)), float(rng.uniform(10, 60)))
        load[i] = peaks[i] * curve * np.exp(noise)
    return load
