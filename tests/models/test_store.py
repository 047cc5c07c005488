import operator
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models import (
    FaultType,
    HypothesisRanker,
    ModelStore,
    ModelStoreError,
    Outcome,
    OutcomeStore,
    analyze,
)
from models._simulator import SimulatedIncident


def test_save_load_promote(
    tmp_path: Path, small_ranker: HypothesisRanker, slow_query_incident: SimulatedIncident
) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.current() is None and store.versions() == []
    first = store.save(small_ranker, data_hash="abc", metrics={"ac1": 0.9}, training={"cases": 60})
    second = store.save(small_ranker, data_hash="def", parent=first)
    assert (first, second) == ("v0001", "v0002")
    assert store.current() is None
    store.promote(first)
    ranker, metadata = store.current()
    assert metadata.version == "v0001" and metadata.data_hash == "abc" and metadata.metrics == {"ac1": 0.9}
    assert metadata.sklearn_version and metadata.feature_names
    X = analyze(slow_query_incident.telemetry, ranker=small_ranker).candidates.to_frame()[metadata.feature_names]
    assert (ranker.predict_proba(X) == small_ranker.predict_proba(X)).all()
    store.promote(second)
    assert store.current_version() == "v0002" and store.metadata("v0002").parent == "v0001"
    assert store.versions() == ["v0001", "v0002"]


def test_untrusted_files_and_unknown_versions_are_refused(tmp_path: Path, small_ranker: HypothesisRanker) -> None:
    store = ModelStore(tmp_path)
    version = store.save(small_ranker, data_hash="x")
    # A file holding a type outside the trusted list is refused before anything is built...
    sio.dump({"f": operator.attrgetter("x")}, tmp_path / version / "model.skops")
    with pytest.raises(ModelStoreError, match=r"not trusted: \['operator.attrgetter'\]"):
        store.load(version)
    # ... and a well-formed scikit-learn object that is not a ranker is refused too.
    sio.dump(make_pipeline(StandardScaler(), LogisticRegression()), tmp_path / version / "model.skops")
    with pytest.raises(ModelStoreError, match="is a Pipeline, not a HypothesisRanker"):
        store.load(version)
    with pytest.raises(ModelStoreError, match="no model version"):
        store.load("v0042")
    with pytest.raises(ModelStoreError, match="not a version"):
        store.load("../../etc")
    with pytest.raises(ModelStoreError, match="fitted"):
        store.save(HypothesisRanker(), data_hash="x")


def test_outcomes_merge_per_incident(
    tmp_path: Path, small_ranker: HypothesisRanker, slow_query_incident: SimulatedIncident
) -> None:
    store = OutcomeStore(tmp_path / "outcomes.sqlite3")
    analysis = analyze(slow_query_incident.telemetry, ranker=small_ranker)
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
