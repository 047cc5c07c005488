from pathlib import Path

import pytest

from models import (
    DiagnosisModel,
    FaultType,
    ModelStore,
    Outcome,
    OutcomeStore,
    TrainingSet,
    analyze,
    retrain,
    simulate_incident,
    training_set,
)
from models.learning import promotion_decision
from models.learning._datasets import incident_view
from models.learning._retrain import _is_held_out, real_rows


def test_training_set_is_deterministic_and_labelled() -> None:
    first = training_set(["simulator"], 6, 99)
    assert first.data_hash() == training_set(["simulator"], 6, 99, n_jobs=2).data_hash()
    assert first.n_incidents == 6 and first.generators == ["simulator"]
    # One root cause per simulator incident...
    assert first.components.groupby("incident")["label"].sum().eq(1).all()
    # ... and a typed row set only where the true fault is supported by the evidence, one true row each.
    assert first.faults.groupby("incident")["label"].sum().eq(1).all()
    assert (first.faults.loc[first.faults["label"] == 1, "supported"] > 0).all()
    assert first.data_hash() != training_set(["simulator"], 6, 98).data_hash()


def test_a_family_is_left_out_whole() -> None:
    pyrca = pytest.importorskip("pyrca.simulation.data_gen", reason="sfr-pyrca is not installed (make setup)")
    assert pyrca is not None
    both = training_set(["simulator", "pyrca-linear"], 3, 5)
    assert set(both.generators) == {"simulator", "pyrca"}
    without = both.without(["pyrca"])
    assert without.generators == ["simulator"] and without.n_incidents == 3
    # PyRCA's root causes carry no fault type: they teach the component model only.
    assert not both.faults["generator"].eq("pyrca").any()


def test_the_unnamed_view_hides_what_each_metric_is_and_keeps_whose_it_is() -> None:
    incident = simulate_incident(3, FaultType.CPU, 6)
    readable = incident_view(incident, "metrics_only").telemetry.metrics
    unnamed = incident_view(incident, "unnamed_metrics").telemetry.metrics
    assert unnamed.set_axis(readable.columns, axis=1).equals(readable)  # the same series, renamed
    assert unnamed.columns[0] == "time"
    services = {column.partition("_")[0] for column in readable.columns[1:]}
    assert {column.partition("_")[0] for column in unnamed.columns[1:]} == services
    assert all(column.partition("_")[2].startswith("m") for column in unnamed.columns[1:])
    assert unnamed.columns.is_unique
    with pytest.raises(ValueError, match=r"known: full, no_topology, metrics_only, unnamed_metrics$"):
        incident_view(incident, "unnamed")
    # The kind rules read nothing in them: every metric is of kind ``other``.
    rows = training_set(["simulator"], 1, 99, views={"unnamed_metrics": 1.0})
    assert rows.faults.empty  # no fault type is supported, so none is taught
    assert rows.components["label"].sum() == 1


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_held_out_split_is_stable(fraction: float) -> None:
    assert all(_is_held_out(f"inc-{i}", fraction) == (fraction == 1.0) for i in range(50))
    assert _is_held_out("inc-7", 0.3) == _is_held_out("inc-7", 0.3)


def test_a_confirmed_real_incident_becomes_labelled_rows(small_model: DiagnosisModel) -> None:
    incident = simulate_incident(12, FaultType.CACHE, 12)
    analysis = analyze(incident.telemetry, incident.topology, incident.observations, incident.alert_time, small_model)
    rows = real_rows(analysis.candidates, incident.root_cause, "real:x")
    assert rows.components["label"].sum() == 1
    assert rows.components.loc[rows.components["label"] == 1, "service"].item() == incident.root_cause[0]
    assert set(rows.components["generator"]) == {"real"}
    if len(rows.faults):
        assert rows.faults["label"].sum() == 1 and set(rows.faults["service"]) == {incident.root_cause[0]}


def test_rows_seen_as_confirmed_outcomes_are_tagged_real_and_stay_when_generators_are_left_out() -> None:
    seen = training_set(["simulator"], 2, 99)
    outcomes = seen.as_outcomes()
    assert outcomes.generators == ["real"] and outcomes.n_incidents == 2
    assert set(outcomes.faults["generator"]) <= {"real"} and len(outcomes.faults) == len(seen.faults)
    both = TrainingSet.concat([seen, outcomes])
    assert both.without(["simulator"]).generators == ["real"]


def test_the_gate_refuses_a_model_that_only_learned_one_generator() -> None:
    old = {"logo_simulator": 0.80, "logo_queueing": 0.70, "logo_pyrca": 0.95}
    baro = {"baro_simulator": 0.50, "baro_queueing": 0.55, "baro_pyrca": 0.90}
    better = {**old, **baro, "logo_queueing": 0.74}
    assert promotion_decision(better, old)[0]
    overfit = {**old, **baro, "logo_simulator": 0.99, "logo_pyrca": 0.60}
    promoted, reason = promotion_decision(overfit, old)
    assert not promoted and "on pyrca AC@1 fell from 0.950 to 0.600" in reason and "below BARO" in reason
    within_slack = {**old, **baro, "logo_queueing": 0.68}
    assert promotion_decision(within_slack, old)[0]
    real = {**better, "real_n": 25, "real_ac1": 0.7}
    assert not promotion_decision(real, {**old, "real_ac1": 0.8})[0]
    assert promotion_decision({**better, "real_n": 5, "real_ac1": 0.1}, {**old, "real_ac1": 0.8})[0]


@pytest.mark.slow
def test_retrain_keeps_versions_learns_from_outcomes_and_gates(
    tmp_path: Path, small_model: DiagnosisModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.learning._retrain as retraining

    pytest.importorskip("pyrca.simulation.data_gen", reason="sfr-pyrca is not installed (make setup)")
    # Two families keep the test to seconds: queueing's fold is the benchmark's business.
    monkeypatch.setattr(retraining, "TRAINING_GENERATORS", ("simulator", "pyrca-linear"))
    store, outcomes = ModelStore(tmp_path / "m"), OutcomeStore(tmp_path / "o.sqlite3")
    first = retrain(store, outcomes, cases=12, test_cases=4)
    assert first.candidate_version == "v0001" and first.previous_version is None
    assert {"logo_simulator", "logo_pyrca", "baro_simulator", "baro_pyrca"} <= set(first.metrics)
    assert first.promoted == promotion_decision(first.metrics, {})[0]
    for seed in range(6):
        incident = simulate_incident(seed, FaultType.CACHE, 12)
        analysis = analyze(
            incident.telemetry, incident.topology, incident.observations, incident.alert_time, small_model
        )
        outcomes.record(Outcome.from_analysis(f"inc-{seed}", analysis, root_cause=incident.root_cause))
    second = retrain(store, outcomes, cases=12, test_cases=4, held_out_fraction=0.5)
    assert second.candidate_version == "v0002"
    assert second.n_real_train + second.n_real_held_out == 6
    assert store.versions() == ["v0001", "v0002"]
    assert second.to_markdown().startswith("# Retraining: v0002")
    assert f"calibrated on this system's {second.n_real_train} confirmed outcomes" in second.to_markdown()
    assert "calibrated on the generators alone" in first.to_markdown()
