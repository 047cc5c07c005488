"""``analyze``: from telemetry (and whatever else is known) to ranked, explained hypotheses."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._baseline import BaselineEntry, baro_rank
from models._catalog import FixHistory, fix_suggestions, verification_tasks
from models._detection import Detection, detect_frame
from models._errors import TelemetryError
from models._evidence import affected_by, gather_evidence
from models._features import FEATURE_NAMES, CaseSignals, candidate_table, case_signals
from models._hypothesis import Hypothesis
from models._observations import Observations
from models._ranker import HypothesisRanker
from models._signals import metric_frame
from models._target import TargetContext
from models._telemetry import Telemetry
from models._topology import Topology
from models._types import FaultType


class CaseFeatures(BaseModel):
    """The candidate rows of one incident, as the ranker saw them (kept for learning later)."""

    model_config = ConfigDict(frozen=True)

    feature_names: list[str]
    candidates: list[tuple[str, FaultType]]
    values: list[list[float | None]]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> CaseFeatures:
        matrix = frame[list(FEATURE_NAMES)].to_numpy(dtype=float)
        cells = matrix.astype(object)
        cells[~np.isfinite(matrix)] = None
        values = cells.tolist()
        candidates = [(str(s), FaultType(f)) for s, f in zip(frame["service"], frame["fault"], strict=True)]
        # Built from our own frame: the types are right, validating 20k floats would only cost time.
        return cls.model_construct(feature_names=list(FEATURE_NAMES), candidates=candidates, values=values)

    def to_frame(self) -> pd.DataFrame:
        """``service, fault`` and the features (in this object's own column order)."""
        frame = pd.DataFrame(
            np.array(self.values, dtype=float).reshape(len(self.values), len(self.feature_names)),
            columns=self.feature_names,
        )
        frame.insert(0, "fault", [fault.value for _, fault in self.candidates])
        frame.insert(0, "service", [service for service, _ in self.candidates])
        return frame


class Analysis(BaseModel):
    """The result of ``analyze``."""

    model_config = ConfigDict(frozen=True)

    detection: Detection
    #: Most likely first; ``rank`` 1..k.
    hypotheses: list[Hypothesis]
    #: The BARO-style baseline's ranking on the same data, for comparison (top entries).
    baseline: list[BaselineEntry] = Field(default_factory=list)
    #: Seconds spent per step (``detect``, ``features``, ``rank``, ``explain``, ``baseline``, ``total``).
    timings: dict[str, float] = Field(default_factory=dict)
    #: Where the call graph came from: ``topology``, ``traces`` or ``None``.
    graph_source: str | None = None
    model_version: str | None = None
    #: Every candidate's features, for the outcome store (left out of JSON dumps).
    candidates: CaseFeatures | None = Field(default=None, exclude=True, repr=False)

    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None


@dataclass(frozen=True)
class IncidentFeatures:
    """What ``incident_features`` read: the detection, the signals and the candidate rows."""

    detection: Detection
    signals: CaseSignals
    candidates: pd.DataFrame


def incident_features(
    telemetry: Telemetry,
    topology: Topology | None = None,
    observations: Observations | None = None,
    alert_time: float | None = None,
) -> IncidentFeatures:
    """Detection and candidate features of one incident (shared by ``analyze`` and training).

    Raises:
        TelemetryError: when the metrics are too short to find a change point in.
    """
    frame = metric_frame(telemetry, topology.names if topology is not None else ())
    detection, found = detect_frame(frame, alert_time)
    if found is None:
        raise TelemetryError(f"metrics: {len(frame.times)} samples are too few to analyse (need at least 20)")
    signals = case_signals(frame, found, telemetry, topology, observations)
    return IncidentFeatures(detection=detection, signals=signals, candidates=candidate_table(signals))


def rank_candidates(ranker: HypothesisRanker, candidates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(order, confidence)``: candidates most likely first, and each row's confidence."""
    if not len(candidates):
        return np.zeros(0, dtype=int), np.zeros(0)
    confidence, probability = ranker.score_incident(_aligned(ranker, candidates))
    # Calibration is a step function: break its ties with the per-row probability.
    order = np.lexsort((-probability, -confidence))
    return order, confidence


def _aligned(ranker: HypothesisRanker, candidates: pd.DataFrame) -> pd.DataFrame:
    names = list(getattr(ranker, "feature_names_in_", FEATURE_NAMES))
    return candidates.reindex(columns=names).astype(float)


def analyze(
    telemetry: Telemetry,
    topology: Topology | None = None,
    observations: Observations | None = None,
    alert_time: float | None = None,
    ranker: HypothesisRanker | None = None,
    target: TargetContext | None = None,
    *,
    top_k: int = 5,
    history: FixHistory | None = None,
    model_version: str | None = None,
) -> Analysis:
    """Rank the likely root causes of an incident and explain, verify and fix each of them.

    Args:
        telemetry: metrics (RCAEval layout) and optional logs and traces.
        topology: the call graph, when known (else it is read from traces when there are any).
        observations: what executors found (DB process lists, health checks, cache stats...).
        alert_time: when the alert fired (epoch seconds).
        ranker: a fitted ``HypothesisRanker``; the in-process cold-start model when ``None``
            (trained once per process from the simulator, see ``cold_start_ranker``).
        target: where components live, to fill verification and fix task templates; defaults
            from the topology's attributes, else namespace/connection ``default``.
        top_k: how many hypotheses to explain, verify and fix.
        history: past fix outcomes for fix confidences.
        model_version: the version of ``ranker``, recorded in the result.
    """
    started = time.perf_counter()
    features = incident_features(telemetry, topology, observations, alert_time)
    detected = time.perf_counter()
    if ranker is None:
        from models._training import cold_start_ranker  # imported late: training needs the simulator

        ranker = cold_start_ranker()
    order, confidence = rank_candidates(ranker, features.candidates)
    ranked = time.perf_counter()
    if target is None:
        target = TargetContext.from_topology(topology) if topology is not None else TargetContext()
    hypotheses = _explain(features.signals, features.candidates, order, confidence, top_k, target, history)
    explained = time.perf_counter()
    signals = features.signals
    baseline = baro_rank(signals.frame, signals.change_point, signals.kinds)[:10]
    finished = time.perf_counter()
    return Analysis(
        detection=features.detection,
        hypotheses=hypotheses,
        baseline=baseline,
        timings={
            "features": round(detected - started, 4),
            "rank": round(ranked - detected, 4),
            "explain": round(explained - ranked, 4),
            "baseline": round(finished - explained, 4),
            "total": round(finished - started, 4),
        },
        graph_source=signals.graph_source,
        model_version=model_version,
        candidates=CaseFeatures.from_frame(features.candidates),
    )


def _explain(
    signals: CaseSignals,
    candidates: pd.DataFrame,
    order: np.ndarray,
    confidence: np.ndarray,
    top_k: int,
    target: TargetContext,
    history: FixHistory | None,
) -> list[Hypothesis]:
    hypotheses = []
    for rank, row in enumerate(order[:top_k], start=1):
        service = str(candidates["service"].iloc[row])
        fault = FaultType(candidates["fault"].iloc[row])
        draft = Hypothesis(
            component=service,
            fault=fault,
            confidence=round(float(confidence[row]), 4),
            evidence=gather_evidence(signals, service, fault),
            rank=rank,
            affected=affected_by(signals, service),
        )
        hypotheses.append(
            draft.model_copy(
                update={
                    "verification": verification_tasks(draft, target),
                    "fixes": fix_suggestions(draft, target, history),
                }
            )
        )
    return hypotheses
