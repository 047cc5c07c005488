from pathlib import Path

import pytest

from models import (
    FaultType,
    ModelStore,
    Outcome,
    OutcomeStore,
    analyze,
    default_ranker,
    retrain,
    simulate_incident,
    simulated_training_set,
)
from models._training import _is_held_out, promotion_decision


def test_training_set_is_deterministic_and_labelled() -> None:
    first = simulated_training_set(6, 99)
    assert first.data_hash() == simulated_training_set(6, 99, n_jobs=2).data_hash()
    assert first.n_incidents == 6
    assert first.frame.groupby("incident")["label"].sum().eq(1).all()
    assert first.data_hash() != simulated_training_set(6, 98).data_hash()


def test_default_ranker_trains_once_then_loads(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    ranker = default_ranker(store, cases=20, held_out=5, n_jobs=1)
    assert store.current_version() == "v0001"
    metadata = store.metadata("v0001")
    assert metadata.training["simulated_incidents"] == 20 and "simulated_ac1" in metadata.metrics
    again = default_ranker(store, cases=20, held_out=5)
    assert type(again) is type(ranker) and store.versions() == ["v0001"]


def test_retrain_keeps_versions_and_learns_from_outcomes(tmp_path: Path) -> None:
    models, outcomes = ModelStore(tmp_path / "m"), OutcomeStore(tmp_path / "o.sqlite3")
    first = retrain(models, outcomes, simulated_cases=20, held_out_simulated=5)
    assert first.promoted and first.candidate_version == "v0001" and first.previous_version is None
    ranker = models.current()[0]
    for seed in range(6):
        incident = simulate_incident(seed, FaultType.CACHE, 12)
        analysis = analyze(
            incident.telemetry, incident.topology, incident.observations, incident.alert_time, ranker=ranker
        )
        outcomes.record(Outcome.from_analysis(f"inc-{seed}", analysis, root_cause=incident.root_cause))
    second = retrain(models, outcomes, simulated_cases=20, held_out_simulated=5, held_out_fraction=0.5)
    assert second.candidate_version == "v0002" and second.previous_version == "v0001"
    assert second.n_real_train + second.n_real_held_out == 6
    assert models.versions() == ["v0001", "v0002"]
    assert models.current_version() == ("v0002" if second.promoted else "v0001")
    assert second.reason.startswith("held-out (") and "AC@1" in second.reason
    assert second.to_markdown().startswith("# Retraining: v0002")


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_held_out_split_is_stable(fraction: float) -> None:
    assert all(_is_held_out(f"inc-{i}", fraction) == (fraction == 1.0) for i in range(50))
    assert _is_held_out("inc-7", 0.3) == _is_held_out("inc-7", 0.3)


def test_promotion_gate() -> None:
    old = {
        "real_n": 25,
        "real_ac1": 0.80,
        "real_avg5": 0.9,
        "simulated_ac1": 0.95,
        "held_out_ac1": 0.9,
        "held_out_avg5": 0.9,
    }
    better_on_real = {**old, "real_ac1": 0.84, "simulated_ac1": 0.93, "held_out_ac1": 0.85}
    assert promotion_decision(better_on_real, old)[0]
    worse_on_real = {**old, "real_ac1": 0.76, "held_out_ac1": 0.99}
    assert not promotion_decision(worse_on_real, old)[0]
    breaks_simulated = {**old, "real_ac1": 0.9, "simulated_ac1": 0.85}
    promoted, reason = promotion_decision(breaks_simulated, old)
    assert not promoted and "simulated held-out AC@1 fell" in reason
    few_real = {**old, "real_n": 5, "real_ac1": 1.0, "held_out_ac1": 0.88, "held_out_n": 55}
    assert not promotion_decision(few_real, {**old, "real_n": 5})[0]
    tie = {**old, "held_out_n": 55}
    assert promotion_decision(tie, tie)[0]
