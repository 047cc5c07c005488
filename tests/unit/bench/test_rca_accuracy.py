"""The accuracy benchmark's table of accuracy at the same confidence, per left-out generator."""

from __future__ import annotations

from bench.rca_accuracy import same_confidence_table
from models.learning import EvaluationReport
from models.learning._evaluation import reliability_table


def _report(name: str, view: str, confidences: list[float], right: list[bool]) -> EvaluationReport:
    nan = float("nan")
    return EvaluationReport(
        generator=name, view=view, n=len(right), ac1=nan, ac3=nan, ac5=nan, avg5=nan, top1_ece=nan, top5_ece=nan,
        top1_mean_confidence=nan, brier=nan, reliability=reliability_table(confidences, right),
    )  # fmt: skip


def test_each_band_pools_the_views_and_counts_its_cases() -> None:
    reports = {
        # Right 3 times of 4 at 0.9 in the full view, once of 2 at 0.85 with metrics alone: 4 of 6.
        "easy": [
            _report("easy", "full", [0.9] * 4, [True] * 3 + [False]),
            _report("easy", "metrics_only", [0.85] * 2, [True, False]),
        ],
        # The same band, a quarter of the time; nothing between 0.4 and 0.8.
        "hard": [_report("hard", "full", [0.95] * 4 + [0.1, 0.3], [True, False, False, False, False, True])],
    }  # fmt: skip
    lines = same_confidence_table(reports).splitlines()
    assert lines[1].split() == ["confidence", "easy", "hard"]
    bands = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert bands["0.8-1.0"] == ["0.67", "(", "6)", "0.25", "(", "4)"]
    assert bands["0.0-0.4"] == ["-", "(", "0)", "0.50", "(", "2)"]
    assert bands["0.4-0.6"] == bands["0.6-0.8"] == ["-", "(", "0)", "-", "(", "0)"]
