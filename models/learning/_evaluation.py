"""Accuracy and calibration on incidents with known root causes, and leave-one-generator-out.

AC@k (RCAEval's definition) is the fraction of incidents with a true root cause among the first k
components of the ranking; Avg@k is the mean of AC@1..AC@k. ECE is the count-weighted gap between
confidence and accuracy over ten equal-width bins, on the top hypothesis (``top1_ece``) and on the
top five of every incident (``top5_ece``). A model's claim counts on a generator it was not trained
on: ``leave_one_generator_out`` trains on every family but one and scores on the one left out.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.generators._registry import TRAINING_GENERATORS, generate, generator
from models.generators._simulator import SimulatedIncident
from models.learning._datasets import SCORED_VIEWS, VIEWS, incident_view, training_set
from models.learning._training import train_models
from models.ranking._analysis import DiagnosisModel, analyze


def ac_at_k(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable | set], k: int) -> float:
    """Fraction of cases with a truth in the first ``k`` entries of their ranking (a truth may be a
    set of acceptable answers: several root causes)."""
    if len(rankings) != len(truths):
        raise ValueError(f"{len(rankings)} rankings for {len(truths)} truths")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if not rankings:
        return float("nan")
    hits = []
    for ranking, truth in zip(rankings, truths, strict=True):
        accepted = truth if isinstance(truth, set | frozenset) else {truth}
        hits.append(any(entry in accepted for entry in list(ranking)[:k]))
    return float(np.mean(hits))


def avg_at_k(rankings: Sequence[Sequence[Hashable]], truths: Sequence[Hashable | set], k: int = 5) -> float:
    """Mean of AC@1..AC@k."""
    return float(np.mean([ac_at_k(rankings, truths, j) for j in range(1, k + 1)]))


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


def calibrated_ece(confidences: Sequence[float], n_bins: int = 10, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model would show with these confidences: its mean over
    ``draws`` sets of outcomes, each right with the probability its confidence says.

    On a few dozen incidents even perfect calibration leaves a gap between confidence and the
    observed accuracy; an ECE is only a miscalibration by how much it exceeds this floor.
    """
    confidence = np.asarray(confidences, dtype=float)
    if not len(confidence):
        return float("nan")
    outcomes = np.random.default_rng(seed).random((draws, len(confidence))) < confidence
    return float(np.mean([expected_calibration_error(confidence, drawn, n_bins) for drawn in outcomes]))


def brier_score(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean squared difference between confidence and outcome."""
    confidence = np.asarray(confidences, dtype=float)
    return float(np.mean((confidence - np.asarray(correct, dtype=float)) ** 2)) if len(confidence) else float("nan")


class EvaluationReport(BaseModel):
    """How a model did on a set of incidents (components count; fault types where they mean something)."""

    model_config = ConfigDict(frozen=True)

    generator: str
    view: str
    n: int
    ac1: float
    ac3: float
    ac5: float
    avg5: float
    top1_ece: float
    top5_ece: float
    top1_mean_confidence: float
    #: The top-1 ECE a perfectly calibrated model would show at these confidences (``calibrated_ece``).
    top1_ece_floor: float = float("nan")
    brier: float
    #: Top component right and its fault type right (typed generators only; NaN otherwise).
    fault_ac1: float = float("nan")
    #: The fault type right when the top component is right.
    fault_given_component: float = float("nan")
    seconds_per_case: float = 0.0
    reliability: list[ReliabilityBin] = Field(default_factory=list)
    #: AC@1 per injected fault type (typed generators).
    per_fault: dict[str, float] = Field(default_factory=dict)


def evaluate(
    model: DiagnosisModel, incidents: Sequence[SimulatedIncident], *, view: str = "full", name: str = ""
) -> EvaluationReport:
    """Run ``analyze`` on every incident as ``view`` shows it, and score the rankings."""
    rankings: list[list[str]] = []
    truths: list[set[str]] = []
    top1_conf, top1_hit, top5_conf, top5_hit = [], [], [], []
    fault_hits: list[bool] = []
    fault_when_right: list[bool] = []
    per_fault: dict[str, list[bool]] = {}
    typed = bool(incidents) and generator(incidents[0].generator).typed
    elapsed = 0.0
    for incident in incidents:
        if incident.root_cause is None:
            continue
        shown = incident_view(incident, view)
        started = time.perf_counter()
        analysis = analyze(
            shown.telemetry,
            shown.topology,
            shown.observations,
            shown.alert_time,
            model,
            alert_service=shown.alert_service,
        )
        elapsed += time.perf_counter() - started
        roots = {service for service, _ in incident.root_causes}
        ranking = [hypothesis.component for hypothesis in analysis.hypotheses]
        rankings.append(ranking)
        truths.append(roots)
        for position, hypothesis in enumerate(analysis.hypotheses):
            hit = hypothesis.component in roots
            top5_conf.append(hypothesis.confidence)
            top5_hit.append(hit)
            if position == 0:
                top1_conf.append(hypothesis.confidence)
                top1_hit.append(hit)
        if typed and analysis.hypotheses:
            top = analysis.hypotheses[0]
            right = top.component == incident.root_cause[0] and top.fault is incident.root_cause[1]
            fault_hits.append(right)
            if top.component == incident.root_cause[0]:
                fault_when_right.append(right)
            per_fault.setdefault(incident.root_cause[1].value, []).append(top.component in roots)
    n = len(truths)
    return EvaluationReport(
        generator=name or (incidents[0].generator if incidents else ""),
        view=view,
        n=n,
        ac1=ac_at_k(rankings, truths, 1),
        ac3=ac_at_k(rankings, truths, 3),
        ac5=ac_at_k(rankings, truths, 5),
        avg5=avg_at_k(rankings, truths, 5),
        top1_ece=expected_calibration_error(top1_conf, top1_hit),
        top5_ece=expected_calibration_error(top5_conf, top5_hit),
        top1_mean_confidence=float(np.mean(top1_conf)) if top1_conf else float("nan"),
        top1_ece_floor=calibrated_ece(top1_conf),
        brier=brier_score(top1_conf, top1_hit),
        fault_ac1=float(np.mean(fault_hits)) if fault_hits else float("nan"),
        fault_given_component=float(np.mean(fault_when_right)) if fault_when_right else float("nan"),
        seconds_per_case=elapsed / max(n, 1),
        reliability=reliability_table(top1_conf, top1_hit),
        per_fault={fault: float(np.mean(hits)) for fault, hits in sorted(per_fault.items())},
    )


class Fold(BaseModel):
    """One fold of leave-one-generator-out: trained without ``left_out``'s family, scored on it."""

    model_config = ConfigDict(frozen=True)

    left_out: str
    trained_on: list[str]
    reports: list[EvaluationReport]


def leave_one_generator_out(
    test_generators: Sequence[str],
    *,
    train_cases: int,
    test_cases: int,
    seed: int,
    views: Sequence[str] = SCORED_VIEWS,
    training_generators: Sequence[str] = TRAINING_GENERATORS,
    n_jobs: int = 1,
) -> list[Fold]:
    """For each generator of ``test_generators``: train on the training generators of the other
    families, score on ``test_cases`` fresh incidents of it (their own seed), once per view."""
    training = training_set(training_generators, train_cases, seed, views=VIEWS, n_jobs=n_jobs)
    folds = []
    for name in test_generators:
        family = generator(name).family
        kept = [other for other in training_generators if generator(other).family != family]
        models = train_models(training.without([family]), random_state=seed).compiled(f"without-{family}")
        incidents = generate(name, test_cases, seed + 7919)
        folds.append(
            Fold(
                left_out=name,
                trained_on=kept,
                reports=[evaluate(models, incidents, view=view, name=name) for view in views],
            )
        )
    return folds
