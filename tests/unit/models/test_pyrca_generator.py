"""PyRCA's generator behind ``models.generators.pyrca``: determinism, shapes, and the mapping to our incidents."""

from __future__ import annotations

import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from models import GeneratorError, ServiceKind, SimulatedIncident, Telemetry, split_metric_column
from models.generators import PyRCAConfig, pyrca_cases, pyrca_incident
from models.generators.pyrca import GENERATOR, INSTALL_HINT, PLACEHOLDER_FAULT

needs_pyrca = pytest.mark.skipif(
    importlib.util.find_spec("pyrca") is None,
    reason=f"PyRCA is not installed in this environment (`make setup` does it: {INSTALL_HINT})",
)

#: Small graphs keep every test well under a second.
SMALL = PyRCAConfig(nodes=(8, 14), normal_samples=120, anomalous_samples=30)


def _same(first: SimulatedIncident, second: SimulatedIncident) -> None:
    pd.testing.assert_frame_equal(first.telemetry.metrics, second.telemetry.metrics)
    assert first.root_causes == second.root_causes
    assert first.topology == second.topology
    assert first.metric_graph == second.metric_graph
    assert (first.inject_time, first.alert_time, first.alert) == (second.inject_time, second.alert_time, second.alert)


@needs_pyrca
def test_same_seed_same_incident_whatever_the_global_random_state() -> None:
    np.random.seed(1)
    first = pyrca_incident(17, config=SMALL)
    np.random.seed(2)
    second = pyrca_incident(17, config=SMALL)
    _same(first, second)
    other = pyrca_incident(18, config=SMALL)
    assert not first.telemetry.metrics.equals(other.telemetry.metrics)


@needs_pyrca
def test_numpy_global_state_is_left_alone() -> None:
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    pyrca_incident(3, config=SMALL)
    assert np.array_equal(np.random.get_state()[1], before)


@needs_pyrca
def test_threads_draw_what_one_thread_draws() -> None:
    seeds = list(range(40, 48))
    alone = [pyrca_incident(seed, config=SMALL) for seed in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda seed: pyrca_incident(seed, config=SMALL), seeds))
    for first, second in zip(alone, together, strict=True):
        _same(first, second)


@needs_pyrca
def test_shapes_times_and_columns() -> None:
    for incident in pyrca_cases(6, seed=3, config=SMALL):
        metrics = incident.telemetry.metrics
        n = len(incident.topology.services)
        assert SMALL.nodes[0] <= n <= SMALL.nodes[1]
        assert metrics.shape == (SMALL.normal_samples + SMALL.anomalous_samples, n + 1)
        assert np.allclose(np.diff(metrics["time"]), SMALL.step)
        assert incident.inject_time == metrics["time"].iloc[SMALL.normal_samples]
        assert incident.alert_time == incident.inject_time + SMALL.detection_delay
        assert incident.generator == GENERATOR
        assert incident.observations.db == [] and incident.telemetry.logs is None and incident.telemetry.traces is None
        names = incident.topology.names
        assert all(incident.topology.kind_of(name) is ServiceKind.SERVICE for name in names)
        # RCAEval's <service>_<metric> layout, split back by the project's own rule.
        assert [split_metric_column(column, names) for column in incident.telemetry.metric_columns()] == [
            (name, "value") for name in names
        ]
        assert [split_metric_column(column) for column in incident.telemetry.metric_columns()] == [
            (name, "value") for name in names
        ]


@needs_pyrca
def test_frames_pass_telemetry_validation() -> None:
    for preset in ("linear-gaussian", "nonlinear-laplace", "mixed"):
        incident = pyrca_incident(9, config=PyRCAConfig.preset(preset).model_copy(update={"nodes": (10, 16)}))
        revalidated = Telemetry(metrics=incident.telemetry.metrics.copy())
        pd.testing.assert_frame_equal(revalidated.metrics, incident.telemetry.metrics)
        values = incident.telemetry.metrics.drop(columns="time").to_numpy()
        assert np.isfinite(values).all() and np.abs(values).max() <= PyRCAConfig().max_abs_value


@needs_pyrca
def test_root_causes_are_upstream_of_the_sink_that_pages() -> None:
    for incident in pyrca_cases(10, seed=21, config=SMALL):
        sink = incident.topology.names[0]
        assert incident.alert["labels"]["service"] == sink
        assert incident.topology.callers(sink) == []  # nobody calls the user-facing end
        assert incident.root_cause == incident.root_causes[0]
        for service, fault in incident.root_causes:
            assert fault is PLACEHOLDER_FAULT
            assert service != sink
            assert sink in incident.topology.ancestors(service)


@needs_pyrca
def test_the_sink_is_beyond_three_sigma_on_every_anomalous_sample() -> None:
    # PyRCA's stopping rule, fed with the baseline and threshold of the sink's normal data.
    for incident in pyrca_cases(5, seed=8, config=SMALL):
        sink = incident.telemetry.metrics.iloc[:, 1].to_numpy()
        normal, anomalous = sink[: SMALL.normal_samples], sink[SMALL.normal_samples :]
        assert (np.abs(anomalous - normal.mean()) > 3 * normal.std()).all()


@needs_pyrca
def test_metric_graph_is_the_call_graph_reversed() -> None:
    incident = pyrca_incident(4, config=SMALL)
    assert incident.metric_graph is not None and incident.metric_graph
    reversed_calls = {(f"{callee}_value", f"{caller}_value") for caller, callee in incident.topology.calls}
    assert set(incident.metric_graph) == reversed_calls


@needs_pyrca
def test_presets_draw_their_types() -> None:
    incident = pyrca_incident(2, config=PyRCAConfig.preset("nonlinear-laplace").model_copy(update={"nodes": (10, 12)}))
    assert "square functions, laplace noise" in incident.alert["annotations"]["description"]


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(GeneratorError, match="linear-gaussian, nonlinear-laplace, mixed"):
        PyRCAConfig.preset("quadratic")


def test_missing_pyrca_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyrca.simulation.data_gen", None)  # import fails as if absent
    with pytest.raises(GeneratorError, match=r"pip install --no-deps sfr-pyrca==1\.0\.1"):
        pyrca_incident(1, config=SMALL)


def test_root_causes_default_to_the_root_cause(slow_query_incident: SimulatedIncident) -> None:
    assert slow_query_incident.root_causes == (slow_query_incident.root_cause,)
    fields = dict(slow_query_incident)
    with pytest.raises(ValueError, match="must start with root_cause"):
        SimulatedIncident(**{**fields, "root_causes": (("elsewhere", PLACEHOLDER_FAULT),)})
