import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from models import HypothesisRanker


def dataset(seed: int = 0, incidents: int = 40, candidates: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cause per incident, made visible by the first feature (plus noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(incidents * candidates, 4))
    y = np.zeros(incidents * candidates, dtype=int)
    causes = np.arange(incidents) * candidates + rng.integers(0, candidates, incidents)
    y[causes] = 1
    X[causes, 0] += 3.0
    X[rng.random(X.shape) < 0.05] = np.nan
    groups = np.repeat(np.arange(incidents), candidates)
    return X, y, groups


def test_sklearn_estimator_checks() -> None:
    results = check_estimator(HypothesisRanker(max_iter=15, random_state=0), on_fail=None, on_skip=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) > 40


def test_fit_returns_self_and_learned_state_ends_in_underscore() -> None:
    X, y, groups = dataset()
    ranker = HypothesisRanker(max_iter=20, random_state=0)
    assert ranker.fit(X, y, groups=groups) is ranker
    assert hasattr(ranker, "estimators_") and hasattr(ranker, "share_calibrator_")
    assert not hasattr(HypothesisRanker(), "estimators_")


def test_unfitted_ranker_raises() -> None:
    with pytest.raises(NotFittedError):
        HypothesisRanker().predict_proba(np.zeros((2, 4)))


def test_random_state_makes_it_reproducible() -> None:
    X, y, groups = dataset()
    first = HypothesisRanker(max_iter=20, random_state=7).fit(X, y, groups=groups).predict_proba(X)
    second = HypothesisRanker(max_iter=20, random_state=7).fit(X, y, groups=groups).predict_proba(X)
    other = HypothesisRanker(max_iter=20, random_state=8).fit(X, y, groups=groups).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_it_ranks_and_its_probabilities_are_probabilities() -> None:
    X, y, groups = dataset(incidents=80)
    ranker = HypothesisRanker(max_iter=40, random_state=0).fit(X, y, groups=groups)
    X_test, y_test, groups_test = dataset(seed=1, incidents=30)
    hits = 0
    for incident in range(30):
        rows = groups_test == incident
        confidence = ranker.predict_incident(X_test[rows])
        assert ((confidence >= 0) & (confidence <= 1)).all()
        hits += int(y_test[rows][np.argmax(confidence)] == 1)
    assert hits >= 24
    proba = ranker.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_sigmoid_calibration_and_bad_settings() -> None:
    X, y, groups = dataset()
    HypothesisRanker(max_iter=10, calibration="sigmoid", random_state=0).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="calibration"):
        HypothesisRanker(calibration="magic").fit(X, y)
    with pytest.raises(ValueError, match="2 classes"):
        HypothesisRanker().fit(X, np.zeros(len(y)))
