import math

import numpy as np
import pytest

from models import ac_at_k, avg_at_k, brier_score, expected_calibration_error, reliability_table

RANKINGS = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"], ["d", "e", "f"]]
TRUTHS = ["a", "a", "a", "a"]


def test_ac_at_k_on_hand_made_rankings() -> None:
    assert ac_at_k(RANKINGS, TRUTHS, 1) == 0.25
    assert ac_at_k(RANKINGS, TRUTHS, 2) == 0.5
    assert ac_at_k(RANKINGS, TRUTHS, 3) == 0.75
    assert ac_at_k(RANKINGS, TRUTHS, 10) == 0.75


def test_avg_at_k_is_the_mean_of_ac_at_1_to_k() -> None:
    assert avg_at_k(RANKINGS, TRUTHS, 3) == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    assert avg_at_k(RANKINGS, TRUTHS, 5) == pytest.approx((0.25 + 0.5 + 0.75 + 0.75 + 0.75) / 5)


def test_pairs_work_as_truths() -> None:
    assert ac_at_k([[("db", "slow"), ("web", "cpu")]], [("web", "cpu")], 1) == 0.0
    assert ac_at_k([[("db", "slow"), ("web", "cpu")]], [("web", "cpu")], 2) == 1.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="truths"):
        ac_at_k(RANKINGS, TRUTHS[:2], 1)
    with pytest.raises(ValueError, match="at least 1"):
        ac_at_k(RANKINGS, TRUTHS, 0)
    assert math.isnan(ac_at_k([], [], 1))


def test_reliability_and_calibration_errors() -> None:
    confidences = [0.05, 0.05, 0.95, 0.95, 0.55, 0.55]
    correct = [False, False, True, True, True, False]
    table = reliability_table(confidences, correct, n_bins=10)
    assert [row.count for row in table] == [2, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert table[5].accuracy == 0.5 and table[9].accuracy == 1.0
    assert expected_calibration_error(confidences, correct) == pytest.approx((2 * 0.05 + 2 * 0.05 + 2 * 0.05) / 6)
    assert brier_score([1.0, 0.0], [True, False]) == 0.0
    assert brier_score([0.5], [True]) == 0.25


def test_perfectly_calibrated_confidences_have_small_ece() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.random(20000)
    correct = rng.random(20000) < confidence
    assert expected_calibration_error(confidence, correct) < 0.02
    assert expected_calibration_error(confidence, ~correct) > 0.3


def test_the_calibrated_floor_is_what_perfect_calibration_shows_on_so_few_incidents() -> None:
    from models.learning import calibrated_ece

    # 0.7 everywhere, right 70 % of the time: the observed accuracy of 40 draws strays by about
    # sqrt(0.21 / 40) * sqrt(2 / pi) = 0.058 from 0.7; of 4000, by a tenth of that.
    few, many = calibrated_ece([0.7] * 40), calibrated_ece([0.7] * 4000)
    assert few == pytest.approx(0.058, abs=0.012) and many < 0.01
    assert calibrated_ece([0.7] * 40) == few  # seeded: the same confidences, the same floor
    # A model whose ECE exceeds the floor by far is miscalibrated: always wrong at 0.7.
    assert expected_calibration_error([0.7] * 40, [False] * 40) > 10 * few
    assert math.isnan(calibrated_ece([]))
