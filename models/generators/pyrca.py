"""Incidents from PyRCA's own generator (``pyrca.simulation.data_gen``), the same for the same seed.

PyRCA (Salesforce, ``sfr-pyrca``) draws a random DAG whose node 0 is the only sink, normal data
from a structural causal model over it (``x_i = sum_j A_ji f(x_j) + b_i noise_i`` with ``f`` one of
identity, square, sin, tanh and noise normal, exponential, uniform or Laplace), then anomalous data
in which one or more root causes change (type 0: a constant shift, 1: a larger noise weight, 2: a
changed weight on one of the node's parent edges), doubled until every anomalous sample of the sink
is beyond three standard deviations of its normal values. We call its classes; nothing of its
generator is copied here.

The mapping to our incidents: node ``i`` is the service ``node-ii`` with one metric column
``node-ii_value``; a node *calls* the nodes that cause it (anomalies travel from callee to caller,
as in a service graph), so node 0 is the user-facing entry point and the one that pages.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.domain import FaultType, GeneratorError, Observations, ServiceKind, ServiceNode, Telemetry, Topology
from models.generators._simulator import SimulatedIncident, case_seed_of

GENERATOR = "pyrca"
#: PyRCA has no fault types; root causes carry this one so that ``SimulatedIncident`` stays as it is.
PLACEHOLDER_FAULT = FaultType.LATENCY
INSTALL_HINT = "pip install --no-deps sfr-pyrca==1.0.1"

NoiseType = Literal["normal", "exponential", "uniform", "laplace"]
FunctionType = Literal["identity", "square", "sin", "tanh"]
AnomalyType = Literal[0, 1, 2]
WeightGenerator = Literal["normal", "uniform"]

_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z, as the simulator's
# PyRCA's examples set the sink's anomaly threshold at tau = 3 standard deviations of its normal data.
_TAU = 3.0
# A draw PyRCA cannot turn into an anomaly, or whose values are too large, is drawn again from the
# next stream (same size and types): with square functions most DAGs of 40-50 nodes are.
_ATTEMPTS = 64


class PyRCAConfig(BaseModel):
    """The distribution PyRCA-generated incidents are drawn from.

    Every ``*_types`` tuple lists the choices drawn from (uniformly) per case; the defaults are the
    ``linear-gaussian`` preset. ``preset(name)`` gives the named ones. ``sin`` and ``tanh`` are
    accepted but PyRCA cannot make an anomaly with them (see ``PRESETS``): a case drawing one is
    drawn again with other types after half its attempts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Range of the number of nodes (services), drawn per case.
    nodes: tuple[int, int] = (20, 50)
    #: Edges per node (PyRCA's default DAG has 30 edges for 20 nodes); at least ``nodes - 1``.
    edges_per_node: float = Field(default=1.5, ge=0)
    noise_types: tuple[NoiseType, ...] = ("normal",)
    function_types: tuple[FunctionType, ...] = ("identity",)
    #: 0: the root cause's value shifts; 1: its noise grows; 2: the weight of one of its parent edges changes.
    anomaly_types: tuple[AnomalyType, ...] = (0,)
    weight_generators: tuple[WeightGenerator, ...] = ("normal",)
    normal_samples: int = Field(default=540, ge=10)
    anomalous_samples: int = Field(default=60, ge=1)
    #: Seconds between samples.
    step: float = Field(default=1.0, gt=0)
    #: Seconds from the first anomalous sample to the alert.
    detection_delay: float = Field(default=3.0, ge=0)
    #: A draw with a larger absolute value is redrawn: nested squares reach 1e50-1e300 on PyRCA's
    #: DAGs, and beyond 1e150 a variance overflows float64, so no method could read the data.
    max_abs_value: float = Field(default=1e150, gt=0)

    @model_validator(mode="after")
    def _drawable(self) -> PyRCAConfig:
        low, high = self.nodes
        if not 3 <= low <= high:
            raise ValueError(f"nodes must be a range (low, high) with 3 <= low <= high, not {self.nodes}")
        for name in ("noise_types", "function_types", "anomaly_types", "weight_generators"):
            if not getattr(self, name):
                raise ValueError(f"{name} must list at least one choice")
        return self

    @classmethod
    def preset(cls, name: str) -> PyRCAConfig:
        """A named configuration: ``linear-gaussian``, ``nonlinear-laplace`` or ``mixed``.

        Raises:
            GeneratorError: an unknown name (the message lists the known ones).
        """
        try:
            return PRESETS[name]
        except KeyError:
            raise GeneratorError(f"unknown PyRCA preset {name!r}; known: {', '.join(PRESETS)}") from None


PRESETS: dict[str, PyRCAConfig] = {
    "linear-gaussian": PyRCAConfig(),
    "nonlinear-laplace": PyRCAConfig(noise_types=("laplace",), function_types=("square",)),
    # sin and tanh are PyRCA's too, but bounded: its anomaly generator never gets every anomalous
    # sample of the sink past 3 sigma with them (0 of 40 draws for each anomaly type, 5 to 30 nodes).
    "mixed": PyRCAConfig(
        noise_types=("normal", "exponential", "uniform", "laplace"),
        function_types=("identity", "square"),
        anomaly_types=(0, 1, 2),
        weight_generators=("normal", "uniform"),
    ),
}


def pyrca_incident(seed: int, *, config: PyRCAConfig | None = None) -> SimulatedIncident:
    """One incident drawn by PyRCA's generator, the same for the same arguments.

    The root causes are services ``node-ii``; when there are several, ``root_cause`` is the one
    PyRCA gave the largest fault magnitude and ``root_causes`` lists them all (that one first).
    Their fault type is ``PLACEHOLDER_FAULT``: PyRCA has no fault types, so it means nothing here
    and evaluations of this generator compare services only. ``metric_graph`` is PyRCA's DAG over
    the metric columns; there are no logs, traces or observations.

    Args:
        seed: any integer; everything random derives from it.
        config: the distribution; ``PyRCAConfig()`` (``linear-gaussian``) when ``None``.

    Raises:
        GeneratorError: PyRCA is not installed, or no draw gave a usable anomaly.
    """
    config = config or PyRCAConfig()
    data_gen = _data_gen()
    sequence = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, 0x9CA])
    rng = np.random.default_rng(sequence)
    start = float(_EPOCH + int(rng.integers(0, 300 * 86400)))
    n, choices = _size_and_types(rng, config)
    failures = []
    for attempt, stream in enumerate(sequence.spawn(_ATTEMPTS)):
        if attempt == _ATTEMPTS // 2:
            # Some combinations can hardly ever reach the sink's threshold (bounded tanh or sin
            # functions with a noise-weight anomaly...): after half the attempts, another is drawn.
            n, choices = _size_and_types(rng, config)
        if attempt == 3 * _ATTEMPTS // 4:
            # Nested squares overflow on deep DAGs whatever the noise: the last quarter draws the
            # smallest DAG the configuration allows (draws that succeeded earlier stay as they were).
            n, choices = _size_and_types(rng, config)
            n = config.nodes[0]
        try:
            draw = _draw(data_gen, stream, n, config, choices)
        except _NoAnomaly as exc:
            failures.append(str(exc))
            continue
        return _incident(seed, draw, config, choices, start)
    raise GeneratorError(f"PyRCA drew no usable anomaly for seed {seed} in {_ATTEMPTS} attempts: {failures[-1]}")


def pyrca_cases(n: int, seed: int, *, config: PyRCAConfig | None = None) -> list[SimulatedIncident]:
    """``n`` PyRCA incidents; case ``i`` uses the seed derived from ``(seed, i)`` as ``simulate_cases`` does."""
    return [pyrca_incident(case_seed_of(seed, i), config=config) for i in range(n)]


def _size_and_types(rng: np.random.Generator, config: PyRCAConfig) -> tuple[int, dict[str, Any]]:
    n = int(rng.integers(config.nodes[0], config.nodes[1] + 1))
    choices = {
        "noise": str(rng.choice(config.noise_types)),
        "function": str(rng.choice(config.function_types)),
        "anomaly": int(rng.choice(config.anomaly_types)),
        "weights": str(rng.choice(config.weight_generators)),
    }
    return n, choices


# -- PyRCA, made deterministic ---------------------------------------------------------------------


def _data_gen() -> ModuleType:
    try:
        # pyrca/__init__.py imports pkg_resources, which newer setuptools deprecate with a warning
        # at import; the test suite turns warnings into errors, so exactly that one is silenced.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated as an API")
            return importlib.import_module("pyrca.simulation.data_gen")
    except ModuleNotFoundError as exc:
        if exc.name == "pkg_resources":
            raise GeneratorError("PyRCA imports pkg_resources, missing here: pip install 'setuptools<81'") from exc
        if exc.name is not None and exc.name.split(".")[0] == "pyrca":
            raise GeneratorError(f"PyRCA's generator is not installed: {INSTALL_HINT}") from exc
        raise


class _SeededRandom:
    """``np.random`` as ``data_gen`` sees it during one draw.

    PyRCA draws weights and root causes from fresh unseeded ``np.random.default_rng()`` calls and
    noise from the global ``np.random.normal``/``laplace``/...: here an unseeded ``default_rng()``
    gets the next child of one seed sequence and the legacy functions draw from one seeded
    ``RandomState``. Numpy's own global state is never touched.
    """

    def __init__(self, sequence: np.random.SeedSequence) -> None:
        self._sequence = sequence
        self._legacy = np.random.RandomState(np.random.MT19937(sequence.spawn(1)[0]))

    def default_rng(self, seed: Any = None) -> np.random.Generator:
        if seed is not None:
            return np.random.default_rng(seed)
        return np.random.default_rng(self._sequence.spawn(1)[0])

    def __getattr__(self, name: str) -> Any:
        if hasattr(self._legacy, name):
            return getattr(self._legacy, name)
        return getattr(np.random, name)


class _SeededNumpy:
    """numpy for ``data_gen``: every attribute is numpy's except ``random``."""

    def __init__(self, sequence: np.random.SeedSequence) -> None:
        self.random = _SeededRandom(sequence)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


# data_gen looks ``np`` up in its module globals on every call (its noise lambdas too), so swapping
# that one name seeds everything it draws without copying its code. The swap is global to the
# module, hence the lock: two threads drawing at once would otherwise share (and reorder) streams.
_SWAP = threading.Lock()


@contextmanager
def _seeded(data_gen: ModuleType, sequence: np.random.SeedSequence) -> Iterator[None]:
    module_globals = vars(data_gen)
    with _SWAP:
        original = module_globals["np"]
        module_globals["np"] = _SeededNumpy(sequence)
        try:
            yield
        finally:
            module_globals["np"] = original


class _NoAnomaly(Exception):
    """A draw that PyRCA could not turn into a usable anomaly."""


class _Draw(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    dag: np.ndarray
    values: np.ndarray
    #: Root causes, strongest first.
    roots: list[int]


def _draw(
    data_gen: ModuleType, stream: np.random.SeedSequence, n: int, config: PyRCAConfig, choices: dict[str, Any]
) -> _Draw:
    """PyRCA's three steps chained as its own examples do (threshold and baseline from the sink's normal data)."""
    # Nested squares overflow on deep DAGs: numpy's warning becomes an error and the draw is redone.
    # PyRCA raises a plain string when doubling never reaches the threshold (a TypeError in Python 3),
    # numpy a ValueError when type 2 asks for more root causes than there are nodes with parents.
    try:
        with _seeded(data_gen, stream), np.errstate(over="raise", invalid="raise"):
            dag = data_gen.DAGGen(
                data_gen.DAGGenConfig(
                    num_node=n, num_edge=round(config.edges_per_node * n), rng=np.random.default_rng(stream.spawn(1)[0])
                )
            ).gen()
            normal, parent_weights, noise_weights, func, noise = data_gen.DataGen(
                data_gen.DataGenConfig(
                    dag=dag,
                    noise_type=choices["noise"],
                    func_type=choices["function"],
                    num_samples=config.normal_samples,
                    weight_generator=choices["weights"],
                )
            ).gen()
            sink = normal[:, 0]
            # PyRCA prints the fault sizes when it gives up; the draw is redone, so that is noise.
            with contextlib.redirect_stdout(io.StringIO()):
                anomalous, fault = data_gen.AnomalyDataGen(
                    data_gen.AnomalyDataGenConfig(
                        parent_weights=parent_weights,
                        noise_weights=noise_weights,
                        noise_type=noise,
                        func_type=func,
                        baseline=float(sink.mean()),
                        threshold=_TAU * float(sink.std()),
                        num_samples=config.anomalous_samples,
                        anomaly_type=choices["anomaly"],
                        weight_generator=choices["weights"],
                    )
                ).gen()
    except (TypeError, ValueError, FloatingPointError) as exc:
        raise _NoAnomaly(f"{type(exc).__name__}: {exc}") from exc
    values = np.vstack([normal, anomalous])
    if not np.isfinite(values).all() or np.abs(values).max() > config.max_abs_value:
        raise _NoAnomaly(f"values beyond {config.max_abs_value:g} (nested {choices['function']} functions)")
    # Type 2's fault[parent, child] changes the child's mechanism; the parent's own values are as before.
    magnitude = np.abs(fault).max(axis=0) if choices["anomaly"] == 2 else np.abs(fault)
    roots = [int(i) for i in np.flatnonzero(magnitude)]
    if not roots:
        raise _NoAnomaly("no root cause was injected")
    roots.sort(key=lambda i: (-magnitude[i], i))
    return _Draw(dag=dag, values=values, roots=roots)


# -- the incident ----------------------------------------------------------------------------------


def _incident(seed: int, draw: _Draw, config: PyRCAConfig, choices: dict[str, Any], start: float) -> SimulatedIncident:
    n = draw.dag.shape[0]
    width = max(2, len(str(n - 1)))
    names = [f"node-{i:0{width}d}" for i in range(n)]
    columns = [f"{name}_value" for name in names]
    times = start + np.arange(draw.values.shape[0]) * config.step
    metrics = pd.DataFrame(draw.values, columns=columns)
    metrics.insert(0, "time", times)
    causes, effects = np.nonzero(draw.dag)
    # dag[i, j] != 0: i causes j, so j calls i (a slow callee makes its caller slow).
    calls = [(names[j], names[i]) for i, j in zip(causes, effects, strict=True)]
    topology = Topology(services=[ServiceNode(name=name, kind=ServiceKind.SERVICE) for name in names], calls=calls)
    inject_time = float(times[config.normal_samples])
    alert_time = float(min(inject_time + config.detection_delay, times[-1]))
    roots = tuple((names[i], PLACEHOLDER_FAULT) for i in draw.roots)
    return SimulatedIncident(
        id=f"pyrca-{_config_tag(config)}-{seed:x}",
        seed=seed,
        telemetry=Telemetry(metrics=metrics),
        topology=topology,
        observations=Observations(),
        root_cause=roots[0],
        root_causes=roots,
        inject_time=inject_time,
        alert_time=alert_time,
        alert=_alert(seed, names[0], alert_time, choices),
        generator=GENERATOR,
        metric_graph=tuple((columns[i], columns[j]) for i, j in zip(causes, effects, strict=True)),
    )


def _config_tag(config: PyRCAConfig) -> str:
    """Six hex digits of the configuration: the same seed under two presets gives two ids."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:6]


def _alert(seed: int, service: str, alert_time: float, choices: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager alert on the sink, the user-facing end PyRCA's anomaly is made visible at."""
    starts = datetime.fromtimestamp(alert_time, tz=UTC).isoformat().replace("+00:00", "Z")
    description = (
        f"value of {service} beyond 3 sigma (PyRCA: {choices['function']} functions, {choices['noise']} noise, "
        f"anomaly type {choices['anomaly']})"
    )
    return {
        "status": "firing",
        "labels": {"alertname": "ServiceAnomaly", "service": service, "severity": "critical"},
        "annotations": {"summary": f"ServiceAnomaly on {service}", "description": description},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": hashlib.sha256(f"pyrca:{seed}:{service}".encode()).hexdigest()[:16],
    }
