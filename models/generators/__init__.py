"""Incidents with known root causes, from generators built on different principles: for tests, the
demo, training, and evaluation on a generator a model was not trained on.

    from models.generators import PyRCAConfig, pyrca_cases
    cases = pyrca_cases(20, seed=1, config=PyRCAConfig.preset("nonlinear-laplace"))
    from models.generators import QueueingConfig, queueing_cases
    cases = queueing_cases(20, seed=1, config=QueueingConfig(mode="metrics"))
"""

from models.generators._registry import GENERATORS, TRAINING_GENERATORS, Generator, generate, generator
from models.generators._simulator import (
    SPEC_SCENARIOS,
    SimulatedIncident,
    SimulationConfig,
    case_seed_of,
    simulate_cases,
    simulate_incident,
)
from models.generators.pyrca import PRESETS as PYRCA_PRESETS
from models.generators.pyrca import PyRCAConfig, pyrca_cases, pyrca_incident
from models.generators.queueing import QueueingConfig, queueing_cases, queueing_incident

__all__ = [
    "GENERATORS",
    "PYRCA_PRESETS",
    "SPEC_SCENARIOS",
    "TRAINING_GENERATORS",
    "Generator",
    "PyRCAConfig",
    "QueueingConfig",
    "SimulatedIncident",
    "SimulationConfig",
    "case_seed_of",
    "generate",
    "generator",
    "pyrca_cases",
    "pyrca_incident",
    "queueing_cases",
    "queueing_incident",
    "simulate_cases",
    "simulate_incident",
]
