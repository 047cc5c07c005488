"""Hand-written metrics for the signal tests: 500 one-second samples, the alert at the 400th."""

import numpy as np
import pandas as pd

from models import Observations, Telemetry
from models.signals import deviations, metric_frame
from models.signals._features import CaseSignals, case_signals

T0 = 1_700_000_000.0
ALERT_TIME = T0 + 400


def noisy_series(seed: int, jump: float = 0.0) -> np.ndarray:
    """A metric at 100 with unit noise, ``jump`` higher from the alert on."""
    values = 100 + np.random.default_rng(seed).normal(0, 1, 500)
    values[400:] += jump
    return values


def signals_of(
    columns: dict[str, np.ndarray], observations: Observations | None = None, *, logs: pd.DataFrame | None = None
) -> CaseSignals:
    """The signals ``analyze`` reads from these metric columns (``service_metric``), and ``logs``, at
    ``ALERT_TIME``."""
    telemetry = Telemetry(metrics=pd.DataFrame({"time": T0 + np.arange(500), **columns}), logs=logs)
    metrics = metric_frame(telemetry)
    return case_signals(metrics, deviations(metrics, ALERT_TIME), telemetry, None, observations)
