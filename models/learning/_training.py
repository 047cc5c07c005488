"""Fitting the two models ``analyze`` needs, from labelled rows (``models.learning._datasets``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.learning._datasets import REAL, TrainingSet
from models.ranking._ranker import HypothesisRanker
from models.ranking._trained import TrainedModels
from models.signals._claims import FAULT_FEATURES
from models.signals._features import COMPONENT_FEATURES, STATISTICS

__all__ = [
    "COLD_START_CASES",
    "COLD_START_SEED",
    "REAL_WEIGHT",
    "TrainedModels",
    "train_component_model",
    "train_fault_model",
    "train_models",
]

#: The cold-start model's training: incidents per generator, and their seed.
COLD_START_CASES = 240
COLD_START_SEED = 20_261_125
#: Processes that draw the cold-start incidents (the result does not depend on it).
COLD_START_JOBS = 2
COMPONENT_PARAMS: dict[str, Any] = {
    "max_iter": 150,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "negative_rate": 0.5,
}
#: Evidence whose direction holds in every system: a larger anomaly, a better rank among the
#: incident's components, metrics that stopped. The component model may only agree with it, so it
#: cannot learn the opposite from one generator's accidents.
MONOTONIC: dict[str, int] = {
    **{
        f"{name}_{form}": sign
        for name in STATISTICS
        for form, sign in (("score", 1), ("rel", 1), ("rank", -1), ("top", 1))
    },
    "svc_peak": 1,
    "svc_rel": 1,
    "svc_rank": -1,
    "cause_peak": 1,
    "cause_rel": 1,
    "cause_rank": -1,
    "svc_persistence": 1,
    "svc_anomalous_share": 1,
    "svc_missing": 1,
}
FAULT_PARAMS: dict[str, Any] = {"max_iter": 120, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20}
#: The generators' calibration counts as this many confirmed outcomes of the served system: past
#: them, the confidences are that system's own. Chosen offline on the left-out generators (60 test
#: incidents, 5 splits; mean top-1 ECE, pooled calibration 0.20): priors of 0, 5 and 20 gave 0.116,
#: 0.101 and 0.117 after 20 outcomes, 0.099, 0.100 and 0.107 after 40.
CALIBRATION_PRIOR = 5.0
#: How many times retraining counts a confirmed outcome against a generated incident.
REAL_WEIGHT = 3


def train_models(
    training: TrainingSet, *, random_state: int = 0, domains: bool = True, real_weight: int = 1
) -> TrainedModels:
    """Both models, fitted on ``training`` (incidents as groups, so folds never split one; with
    ``domains``, calibrated on generators the trees of each fold never saw, and on the confirmed
    outcomes among the rows, ``real``, the more the more of them there are). The trees count
    each confirmed outcome ``real_weight`` times."""
    return TrainedModels(
        train_component_model(training, random_state=random_state, domains=domains, real_weight=real_weight),
        train_fault_model(training, random_state=random_state, domains=domains, real_weight=real_weight),
    )


def _weights(rows: pd.DataFrame, real_weight: int) -> np.ndarray | None:
    real = rows["generator"].to_numpy() == REAL
    return np.where(real, float(real_weight), 1.0) if real.any() else None


def train_component_model(
    training: TrainingSet, *, random_state: int = 0, domains: bool = True, real_weight: int = 1
) -> HypothesisRanker:
    """The model that ranks components, fitted on ``training``'s component rows."""
    components = training.components
    return HypothesisRanker(
        random_state=random_state, monotonic=MONOTONIC, calibrate_on=REAL, calibration_prior=CALIBRATION_PRIOR,
        **COMPONENT_PARAMS,
    ).fit(
        components[list(COMPONENT_FEATURES)].astype(float), components["label"].to_numpy(dtype=int),
        groups=components["incident"].to_numpy(), domains=components["generator"].to_numpy() if domains else None,
        sample_weight=_weights(components, real_weight),
    )  # fmt: skip


def train_fault_model(
    training: TrainingSet, *, random_state: int = 0, domains: bool = True, real_weight: int = 1
) -> HypothesisRanker:
    """The model that types a component's fault, fitted on ``training``'s typed incidents.

    Raises:
        ValueError: when no incident of ``training`` has a fault type to learn.
    """
    faults = training.faults
    if len(faults) == 0 or faults["label"].nunique() < 2:
        raise ValueError("the training set holds no typed incident: the fault model has nothing to learn from")
    return HypothesisRanker(
        random_state=random_state, calibrate_on=REAL, calibration_prior=CALIBRATION_PRIOR, **FAULT_PARAMS
    ).fit(
        faults[list(FAULT_FEATURES)].astype(float), faults["label"].to_numpy(dtype=int),
        groups=faults["incident"].to_numpy(), domains=faults["generator"].to_numpy() if domains else None,
        sample_weight=_weights(faults, real_weight),
    )  # fmt: skip
