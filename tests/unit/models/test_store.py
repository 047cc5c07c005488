import operator
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models import (
    DiagnosisModel,
    FaultType,
    ModelStore,
    ModelStoreError,
    Outcome,
    OutcomeStore,
    TrainedModels,
    active_model,
    analyze,
)
from models.generators._simulator import SimulatedIncident


def test_save_load_promote(
    tmp_path: Path, small_trained: TrainedModels, slow_query_incident: SimulatedIncident
) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.current() is None and store.versions() == []
    first = store.save(small_trained, data_hash="abc", metrics={"ac1": 0.9}, training={"cases": 60})
    second = store.save(small_trained, data_hash="def", parent=first)
    assert (first, second) == ("v0001", "v0002")
    assert store.current() is None
    store.promote(first)
    model, metadata = store.current()
    assert metadata.version == "v0001" and metadata.data_hash == "abc" and metadata.metrics == {"ac1": 0.9}
    assert metadata.sklearn_version and metadata.component_features and metadata.fault_features
    assert model.version == "v0001"
    incident = slow_query_incident
    ours = analyze(incident.telemetry, incident.topology, incident.observations, incident.alert_time, model)
    theirs = analyze(
        incident.telemetry, incident.topology, incident.observations, incident.alert_time, small_trained.compiled()
    )
    assert [(h.component, h.fault, h.confidence) for h in ours.hypotheses] == [
        (h.component, h.fault, h.confidence) for h in theirs.hypotheses
    ]
    reloaded = store.load_estimators("v0001")
    X = pd.DataFrame(
        np.random.default_rng(0).normal(size=(5, len(metadata.component_features))), columns=metadata.component_features
    )
    np.testing.assert_array_equal(reloaded.components.predict_proba(X), small_trained.components.predict_proba(X))
    store.promote(second)
    assert store.current_version() == "v0002" and store.metadata("v0002").parent == "v0001"


def test_the_store_falls_back_to_the_shipped_model(tmp_path: Path) -> None:
    model, metadata = active_model(ModelStore(tmp_path / "empty"))
    assert metadata.version.startswith("shipped-") and model.version == metadata.version
    assert set(metadata.metrics) >= {"logo_simulator", "logo_queueing", "logo_pyrca"}


def test_untrusted_files_and_unknown_versions_are_refused(tmp_path: Path, small_trained: TrainedModels) -> None:
    store = ModelStore(tmp_path)
    version = store.save(small_trained, data_hash="x")
    # A file holding a type outside the trusted list is refused before anything is built...
    sio.dump({"f": operator.attrgetter("x")}, tmp_path / version / "components.skops")
    with pytest.raises(ModelStoreError, match=r"not trusted: \['operator.attrgetter'\]"):
        store.load_estimators(version)
    # ... and a well-formed scikit-learn object that is not a ranker is refused too.
    sio.dump(make_pipeline(StandardScaler(), LogisticRegression()), tmp_path / version / "components.skops")
    with pytest.raises(ModelStoreError, match="is a Pipeline, not a HypothesisRanker"):
        store.load_estimators(version)
    (tmp_path / version / "compiled.npz").write_bytes(b"not a model")
    with pytest.raises(ModelStoreError, match="unreadable model"):
        store.load(version)
    with pytest.raises(ModelStoreError, match="no model version"):
        store.load("v0042")
    with pytest.raises(ModelStoreError, match="not a version"):
        store.load("../../etc")


def test_outcomes_merge_per_incident(
    tmp_path: Path, small_model: DiagnosisModel, slow_query_incident: SimulatedIncident
) -> None:
    store = OutcomeStore(tmp_path / "outcomes.sqlite3")
    analysis = analyze(slow_query_incident.telemetry, model=small_model)
    assert store.record(Outcome.from_analysis("inc-1", analysis, environment="prod")) == "inc-1"
    assert store.labelled() == []
    store.record(
        Outcome(
            incident_id="inc-1",
            verification="confirmed",
            root_cause=("orders-db", FaultType.DB_SLOW_QUERY),
            fix_action="terminate_long_queries",
            fix_worked=True,
        )
    )
    store.record(Outcome(incident_id="inc-2", fix_action="restart_service", fix_fault="None", fix_worked=False))
    [labelled] = store.labelled()
    assert labelled.environment == "prod" and labelled.verification == "confirmed"
    assert labelled.candidates == analysis.candidates
    assert labelled.hypotheses[0][0] == analysis.hypotheses[0].component
    assert store.count() == 2
    history = store.fix_history()
    assert history.of(FaultType.DB_SLOW_QUERY, "terminate_long_queries") == (1, 0)
    assert store.get("inc-2").fix_fault is None
    assert store.get("absent") is None


def test_an_outcome_stored_by_an_older_model_keeps_its_verdict_not_its_rows(tmp_path: Path) -> None:
    store = OutcomeStore(tmp_path / "outcomes.sqlite3")
    store.record(Outcome(incident_id="old", verification="confirmed", root_cause=("db", FaultType.CACHE)))
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE outcomes SET candidates = ? WHERE incident_id = 'old'", ('{"feature_names": []}',))
    outcome = store.get("old")
    assert outcome is not None and outcome.candidates is None and outcome.root_cause == ("db", FaultType.CACHE)
