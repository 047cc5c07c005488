"""Shared fixtures: a small ranker trained on simulated incidents (seconds, not the cold start)."""

from __future__ import annotations

import pytest

from models import FaultType, HypothesisRanker, simulate_incident, simulated_training_set, train_ranker
from models._simulator import SimulatedIncident

#: Training seed of the test ranker; tests evaluate on other seeds.
TRAIN_SEED = 424242


@pytest.fixture(scope="session")
def small_ranker() -> HypothesisRanker:
    training = simulated_training_set(60, TRAIN_SEED)
    return train_ranker(training, random_state=0, max_iter=80)


@pytest.fixture(scope="session")
def slow_query_incident() -> SimulatedIncident:
    return simulate_incident(5, FaultType.DB_SLOW_QUERY, 15)
