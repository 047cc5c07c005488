"""The calibration-transfer benchmark's scoring: each left-out generator against maps fitted on the others."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.calibration_transfer import INCIDENT_FEATURES, transfer_scores


def _answers(generator: str, right: list[float], confidence: float) -> pd.DataFrame:
    rng = np.random.default_rng(len(generator))
    frame = pd.DataFrame({name: rng.random(len(right)) for name in INCIDENT_FEATURES})
    return frame.assign(seed=11, generator=generator, family=generator, view="full", right=right, confidence=confidence)


def test_a_generator_right_half_as_often_at_the_same_confidence_is_off_by_the_difference() -> None:
    answers = pd.concat([_answers("easy", [1.0] * 40, 0.9), _answers("hard", [1.0, 0.0] * 20, 0.9)], ignore_index=True)
    scores = transfer_scores(answers).set_index("left out")
    assert scores.loc["hard", "AC@1"] == 0.5
    assert scores.loc["hard", "as shipped"] == pytest.approx(0.4)
    # Learnt from the easy generator alone, every map says "always right".
    assert scores.loc["hard", "base rate"] == pytest.approx(0.5)
    assert scores.loc["hard", "re-fitted"] == pytest.approx(0.5)
    # On its own cases (noise features), about its own rate.
    assert scores.loc["hard", "own cases"] < 0.25
    # Nothing to cross-fit where every answer was right.
    assert np.isnan(scores.loc["easy", "own cases"])
