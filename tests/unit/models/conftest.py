"""Shared fixtures: small models trained on simulated incidents (seconds, not the shipped model's minutes)."""

from __future__ import annotations

import pytest

from models import DiagnosisModel, FaultType, TrainedModels, simulate_incident, train_models, training_set
from models.generators._simulator import SimulatedIncident

#: Training seed of the test models; tests evaluate on other seeds.
TRAIN_SEED = 424242


@pytest.fixture(scope="session")
def small_trained() -> TrainedModels:
    return train_models(training_set(["simulator"], 60, TRAIN_SEED), random_state=0)


@pytest.fixture(scope="session")
def small_model(small_trained: TrainedModels) -> DiagnosisModel:
    return small_trained.compiled("test")


@pytest.fixture(scope="session")
def slow_query_incident() -> SimulatedIncident:
    return simulate_incident(5, FaultType.DB_SLOW_QUERY, 15)
