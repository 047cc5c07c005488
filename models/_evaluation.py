"""Accuracy and calibration: AC@k and Avg@k (RCAEval's definitions), reliability, ECE, Brier.

AC@k is the fraction of incidents whose true root cause is among the top k of the ranking;
Avg@k is the mean of AC@1..AC@k. Both are measured on the (service, fault) pair and on the
service alone (a service ranking keeps each service's first appearance).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models._analysis import analyze
from models._observations import Observations
from models._ranker import HypothesisRanker
from models._simulator import SimulatedIncident
from models._telemetry import Telemetry
from models._types import FaultType


def ac_at_k(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable], k: int) -> float:
    """Fraction of cases whose truth is in the first ``k`` entries of its ranking."""
    if len(rankings) != len(truths):
        raise ValueError(f"{len(rankings)} rankings for {len(truths)} truths")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if not rankings:
        return float("nan")
    return float(np.mean([truth in list(ranking)[:k] for ranking, truth in zip(rankings, truths, strict=True)]))


def avg_at_k(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable], k: int = 5) -> float:
    """Mean of AC@1..AC@k."""
    return float(np.mean([ac_at_k(rankings, truths, j) for j in range(1, k + 1)]))


def service_ranking(ranking: Sequence[tuple[str, Any]]) -> list[str]:
    """The services of a (service, fault) ranking, each at its first appearance."""
    seen: dict[str, None] = {}
    for service, _ in ranking:
        seen.setdefault(service, None)
    return list(seen)


class ReliabilityBin(BaseModel):
    model_config = ConfigDict(frozen=True)

    low: float
    high: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


def reliability_table(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[ReliabilityBin]:
    """Confidence bins against the observed accuracy in each (equal-width bins on [0, 1])."""
    confidence = np.asarray(confidences, dtype=float)
    hits = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    table = []
    for b in range(n_bins):
        chosen = index == b
        count = int(chosen.sum())
        table.append(
            ReliabilityBin(
                low=float(edges[b]),
                high=float(edges[b + 1]),
                count=count,
                mean_confidence=float(confidence[chosen].mean()) if count else None,
                accuracy=float(hits[chosen].mean()) if count else None,
            )
        )
    return table


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Count-weighted mean |confidence - accuracy| over the reliability bins."""
    table = reliability_table(confidences, correct, n_bins)
    total = sum(row.count for row in table)
    if not total:
        return float("nan")
    return float(
        sum(row.count * abs((row.mean_confidence or 0.0) - (row.accuracy or 0.0)) for row in table if row.count) / total
    )


def brier_score(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean squared difference between confidence and outcome."""
    confidence = np.asarray(confidences, dtype=float)
    return float(np.mean((confidence - np.asarray(correct, dtype=float)) ** 2)) if len(confidence) else float("nan")


class Scores(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int
    ac1: float
    ac3: float
    avg5: float
    service_ac1: float
    service_ac3: float
    service_avg5: float

    @classmethod
    def of(cls, rankings: Sequence[Sequence[tuple[str, FaultType]]], truths: Sequence[tuple[str, FaultType]]) -> Scores:
        services = [service_ranking(ranking) for ranking in rankings]
        true_services = [truth[0] for truth in truths]
        return cls(
            n=len(truths),
            ac1=ac_at_k(rankings, truths, 1),
            ac3=ac_at_k(rankings, truths, 3),
            avg5=avg_at_k(rankings, truths, 5),
            service_ac1=ac_at_k(services, true_services, 1),
            service_ac3=ac_at_k(services, true_services, 3),
            service_avg5=avg_at_k(services, true_services, 5),
        )


class EvaluationReport(BaseModel):
    """The ranker and the baseline on the same incidents."""

    model_config = ConfigDict(frozen=True)

    n_cases: int
    ranker: Scores
    baseline: Scores
    per_fault: dict[str, tuple[Scores, Scores]] = Field(default_factory=dict)
    seconds_per_case: float
    reliability: list[ReliabilityBin]
    ece: float
    brier: float
    top1_ece: float
    top1_mean_confidence: float


def evaluate(
    incidents: Sequence[SimulatedIncident],
    ranker: HypothesisRanker,
    *,
    use_topology: bool = True,
    use_observations: bool = True,
    use_logs: bool = True,
    use_traces: bool = True,
    top_k: int = 5,
) -> EvaluationReport:
    """Run ``analyze`` on every incident and score the ranker and the baseline side by side.

    The ``use_*`` switches hide parts of what the simulator produced, to measure how the ranker
    does with less to go on (the baseline only ever reads metrics). Calibration is measured on
    the top ``top_k`` hypotheses of every incident.
    """
    rankings, baselines, truths, faults = [], [], [], []
    confidences, correct, top1_conf, top1_hit = [], [], [], []
    elapsed = 0.0
    for incident in incidents:
        if incident.root_cause is None:
            continue
        telemetry = Telemetry(
            metrics=incident.telemetry.metrics,
            logs=incident.telemetry.logs if use_logs else None,
            traces=incident.telemetry.traces if use_traces else None,
        )
        started = time.perf_counter()
        analysis = analyze(
            telemetry,
            topology=incident.topology if use_topology else None,
            observations=incident.observations if use_observations else Observations(),
            alert_time=incident.alert_time,
            ranker=ranker,
            top_k=top_k,
        )
        elapsed += time.perf_counter() - started
        truth = incident.root_cause
        ranking = [h.key for h in analysis.hypotheses]
        rankings.append(ranking)
        baselines.append([(entry.service, entry.fault) for entry in analysis.baseline])
        truths.append(truth)
        faults.append(truth[1])
        for hypothesis in analysis.hypotheses:
            confidences.append(hypothesis.confidence)
            correct.append(hypothesis.key == truth)
        if analysis.hypotheses:
            top1_conf.append(analysis.hypotheses[0].confidence)
            top1_hit.append(analysis.hypotheses[0].key == truth)
    per_fault = {}
    for fault in FaultType:
        chosen = [i for i, f in enumerate(faults) if f is fault]
        if chosen:
            per_fault[fault.value] = (
                Scores.of([rankings[i] for i in chosen], [truths[i] for i in chosen]),
                Scores.of([baselines[i] for i in chosen], [truths[i] for i in chosen]),
            )
    n = len(truths)
    return EvaluationReport(
        n_cases=n,
        ranker=Scores.of(rankings, truths),
        baseline=Scores.of(baselines, truths),
        per_fault=per_fault,
        seconds_per_case=elapsed / max(n, 1),
        reliability=reliability_table(confidences, correct),
        ece=expected_calibration_error(confidences, correct),
        brier=brier_score(confidences, correct),
        top1_ece=expected_calibration_error(top1_conf, top1_hit),
        top1_mean_confidence=float(np.mean(top1_conf)) if top1_conf else float("nan"),
    )
