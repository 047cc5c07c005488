"""The compiled model gives the numbers of the scikit-learn model it came from."""

import numpy as np
import pytest

from models import CompiledRanker, HypothesisRanker, TrainedModels
from models.ranking._compiled import compile_ranker


def _data(seed: int, incidents: int = 60, candidates: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(incidents * candidates, 5))
    y = np.zeros(len(X), dtype=int)
    causes = np.arange(incidents) * candidates + rng.integers(0, candidates, incidents)
    y[causes] = 1
    X[causes, 0] += 2.5
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 4] = np.nan  # a feature no row has
    return X, y, np.repeat(np.arange(incidents), candidates)


@pytest.mark.parametrize("calibration", ["isotonic", "sigmoid"])
def test_compiled_scores_equal_the_rankers(calibration: str) -> None:
    X, y, groups = _data(0)
    ranker = HypothesisRanker(max_iter=30, calibration=calibration, random_state=0).fit(X, y, groups=groups)
    compiled = compile_ranker(ranker)
    X_test, _, _ = _data(1, incidents=5)
    np.testing.assert_allclose(compiled.predict_proba_positive(X_test), ranker.predict_proba(X_test)[:, 1], atol=1e-12)
    for rows in np.split(X_test, 5):
        ours, theirs = compiled.score_incident(rows), ranker.score_incident(rows)
        np.testing.assert_allclose(ours[0], theirs[0], atol=1e-12)
        np.testing.assert_allclose(ours[1], theirs[1], atol=1e-12)


def test_a_ranker_calibrated_on_the_served_systems_outcomes_compiles_and_round_trips() -> None:
    X, y, groups = _data(0)
    domains = np.where(groups < 20, "real", np.where(groups < 40, "a", "b"))
    ranker = HypothesisRanker(max_iter=30, random_state=0, calibrate_on="real").fit(
        X, y, groups=groups, domains=domains, sample_weight=np.where(domains == "real", 3.0, 1.0)
    )
    assert ranker.calibrated_on_ == 20
    compiled = compile_ranker(ranker)
    assert compiled.share is not None
    again = CompiledRanker.from_arrays(compiled.header(), compiled.arrays("c"), "c")
    for rows in np.split(_data(1, incidents=5)[0], 5):
        np.testing.assert_allclose(compiled.score_incident(rows)[0], ranker.score_incident(rows)[0], atol=1e-12)
        np.testing.assert_array_equal(again.score_incident(rows)[0], compiled.score_incident(rows)[0])


def test_arrays_round_trip(small_trained: TrainedModels) -> None:
    compiled = compile_ranker(small_trained.components)
    again = CompiledRanker.from_arrays(compiled.header(), compiled.arrays("c"), "c")
    X = np.random.default_rng(2).normal(size=(30, len(compiled.feature_names)))
    np.testing.assert_array_equal(again.predict_proba_positive(X), compiled.predict_proba_positive(X))
    assert again.feature_names == compiled.feature_names
