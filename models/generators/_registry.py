"""The incident generators by name, for training and for leave-one-generator-out evaluation.

A *family* is what a fold leaves out: PyRCA's presets are one family, so a model judged on PyRCA's
linear-Gaussian incidents never saw its nonlinear ones either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.domain._errors import GeneratorError
from models.domain._types import INJECTED_FAULTS
from models.generators._simulator import SimulatedIncident, case_seed_of, simulate_incident
from models.generators.pyrca import PyRCAConfig, pyrca_incident


@dataclass(frozen=True)
class Generator:
    """A named way to draw incidents with known root causes."""

    name: str
    family: str
    #: ``draw(seed, index)``: case ``index`` of the cases of ``seed`` (fault types cycle by index).
    draw: Callable[[int, int], SimulatedIncident]
    #: Whether its root causes carry a meaningful fault type (PyRCA's have none).
    typed: bool = True
    description: str = ""


def _simulator(seed: int, index: int) -> SimulatedIncident:
    return simulate_incident(case_seed_of(seed, index), INJECTED_FAULTS[index % len(INJECTED_FAULTS)])


def _pyrca(preset: str) -> Callable[[int, int], SimulatedIncident]:
    def draw(seed: int, index: int) -> SimulatedIncident:
        return pyrca_incident(case_seed_of(seed, index), config=PyRCAConfig.preset(preset))

    return draw


def _queueing(seed: int, index: int) -> SimulatedIncident:
    from models.generators.queueing import queueing_incident

    return queueing_incident(case_seed_of(seed, index), INJECTED_FAULTS[index % len(INJECTED_FAULTS)])


GENERATORS: dict[str, Generator] = {
    generator.name: generator
    for generator in (
        Generator("simulator", "simulator", _simulator, description="the project's correlated-noise simulator"),
        Generator("queueing", "queueing", _queueing, description="latency and errors from utilisation (queues)"),
        Generator("pyrca", "pyrca", _pyrca("mixed"), typed=False, description="PyRCA's SCMs, linear and square"),
        Generator(
            "pyrca-linear", "pyrca", _pyrca("linear-gaussian"), typed=False, description="PyRCA, linear-Gaussian"
        ),
        Generator(
            "pyrca-nonlinear", "pyrca", _pyrca("nonlinear-laplace"), typed=False, description="PyRCA, square-Laplace"
        ),
    )
}
#: What a model is trained on: one generator per family.
TRAINING_GENERATORS: tuple[str, ...] = ("simulator", "queueing", "pyrca")


def generator(name: str) -> Generator:
    try:
        return GENERATORS[name]
    except KeyError:
        raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}") from None


def generate(name: str, n: int, seed: int) -> list[SimulatedIncident]:
    """``n`` incidents of generator ``name``, fault types cycling (the same for the same arguments)."""
    return [draw(name, seed, index) for index in range(n)]


def draw(name: str, seed: int, index: int) -> SimulatedIncident:
    """Case ``index`` of generator ``name``'s cases of ``seed``, tagged with the generator's family
    (what leave-one-generator-out leaves out)."""
    chosen = generator(name)
    incident = chosen.draw(seed, index)
    return incident if incident.generator == chosen.family else incident.model_copy(update={"generator": chosen.family})
