"""``analyze``: from telemetry (and whatever else is known) to ranked, explained hypotheses.

Two steps, two models. The component model ranks every component by the probability that it is
the root cause; its confidences are calibrated within the incident. The fault model then types
each of the top components, choosing only among the fault types the evidence supports
(``models.signals._claims``): where the data cannot tell a slow query from a full pool, the
hypothesis says what it can (``orders-db: latency``) and which evidence is missing; where a cause
of the component is decisive, its latency and errors are not the diagnosis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from models.domain._errors import ModelsError, TelemetryError
from models.domain._hypothesis import Hypothesis
from models.domain._observations import Observations
from models.domain._target import TargetContext
from models.domain._telemetry import Telemetry, known_components
from models.domain._topology import Topology
from models.domain._types import FAULTS_BY_KIND, FaultType, MetricKind, ServiceKind
from models.playbook._catalog import FixHistory, fix_suggestions, verification_tasks
from models.signals._baseline import BaselineEntry, baro_rank
from models.signals._claims import FAULT_FEATURES, fault_table, missing_evidence, overruling
from models.signals._detection import Detection, detect_frame
from models.signals._evidence import affected_by, gather_evidence
from models.signals._features import COMPONENT_FEATURES, CaseSignals, case_signals, component_table
from models.signals._frame import ONSET_THRESHOLD, MetricFrame, metric_frame

#: The alerting component's own metrics weigh this much more when the change point is located.
ALERT_FOCUS = 3.0


class ScoringModel(Protocol):
    """A fitted model of candidate rows of one incident (``HypothesisRanker`` or its compiled form)."""

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def score_incident(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(confidence within the incident, a score that orders rows the confidence ties)``."""
        ...


@dataclass(frozen=True)
class DiagnosisModel:
    """The two fitted models ``analyze`` needs: which component, then which fault."""

    components: ScoringModel
    faults: ScoringModel
    version: str | None = None
    #: Confirmed outcomes of the served system its confidences are calibrated on (0: the generators
    #: alone, whose confidences do not carry over to a system they never drew; README, "Confidence
    #: on a system it never saw").
    calibrated_on: int = 0


class CaseFeatures(BaseModel):
    """What the models saw of one incident, kept so that its outcome can teach them later."""

    model_config = ConfigDict(frozen=True)

    components: list[str]
    component_features: list[str]
    component_values: list[list[float | None]]
    #: ``(component, fault)`` rows of the fault model, for the components it typed.
    fault_rows: list[tuple[str, FaultType]] = Field(default_factory=list)
    fault_features: list[str] = Field(default_factory=list)
    fault_values: list[list[float | None]] = Field(default_factory=list)

    @classmethod
    def from_tables(cls, components: pd.DataFrame, faults: pd.DataFrame) -> CaseFeatures:
        # Built from our own frames: the types are right, validating thousands of floats would only cost time.
        return cls.model_construct(
            components=[str(name) for name in components["service"]],
            component_features=list(COMPONENT_FEATURES),
            component_values=_cells(components[list(COMPONENT_FEATURES)]),
            fault_rows=[(str(s), FaultType(f)) for s, f in zip(faults["service"], faults["fault"], strict=True)],
            fault_features=list(FAULT_FEATURES),
            fault_values=_cells(faults[list(FAULT_FEATURES)]),
        )

    def candidates(self) -> list[tuple[str, FaultType]]:
        """Every ``(component, fault)`` the models could claim: each component's kind's faults."""
        frame = self.component_frame()
        pairs = []
        for _, row in frame.iterrows():
            kind = next((kind for kind in ServiceKind if row.get(f"kind_{kind.value}") == 1.0), ServiceKind.SERVICE)
            pairs += [(str(row["service"]), fault) for fault in FAULTS_BY_KIND[kind]]
        return pairs

    def component_frame(self) -> pd.DataFrame:
        """``service`` and the component features (in this object's own column order)."""
        frame = _frame(self.component_values, self.component_features)
        frame.insert(0, "service", self.components)
        return frame

    def fault_frame(self) -> pd.DataFrame:
        """``service``, ``fault`` and the fault features."""
        frame = _frame(self.fault_values, self.fault_features)
        frame.insert(0, "fault", [fault.value for _, fault in self.fault_rows])
        frame.insert(0, "service", [service for service, _ in self.fault_rows])
        return frame


def _cells(frame: pd.DataFrame) -> list[list[float | None]]:
    matrix = frame.to_numpy(dtype=float)
    cells = matrix.astype(object)
    cells[~np.isfinite(matrix)] = None
    return cells.tolist()


def _frame(values: list[list[float | None]], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.array(values, dtype=float).reshape(len(values), len(names)), columns=names)


class Analysis(BaseModel):
    """The result of ``analyze``."""

    model_config = ConfigDict(frozen=True)

    detection: Detection
    #: Most likely first; ``rank`` 1..k, one per component.
    hypotheses: list[Hypothesis]
    #: The BARO-style baseline's ranking on the same data, for comparison (top entries).
    baseline: list[BaselineEntry] = Field(default_factory=list)
    #: Seconds spent per step (``features``, ``rank``, ``explain``, ``baseline``, ``total``).
    timings: dict[str, float] = Field(default_factory=dict)
    #: Where the call graph came from: ``topology``, ``traces`` or ``None``.
    graph_source: str | None = None
    model_version: str | None = None
    #: Confirmed outcomes of this system the confidences are calibrated on (``DiagnosisModel.calibrated_on``).
    calibrated_on: int = 0
    #: What the models saw, for the outcome store (left out of JSON dumps).
    candidates: CaseFeatures | None = Field(default=None, exclude=True, repr=False)

    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None


def calibration_note(outcomes: int) -> str:
    """What the confidences of a model calibrated on ``outcomes`` confirmed outcomes of the served
    system mean there: on a system the generators never drew, how often the top answer is right at
    one confidence is not what it was on them, so until its own outcomes have calibrated them the
    confidences order the hypotheses and no more."""
    if outcomes:
        # Beside, not instead: the generators still weigh as a few of its outcomes (``calibration_prior``).
        plural = "s" if outcomes > 1 else ""
        return f"confidences: calibrated on {outcomes} confirmed outcome{plural} of this system, beside generated ones"
    return (
        "confidences: calibrated on generated systems, not yet on this one: read them as an order "
        "until retraining has learnt from its confirmed outcomes"
    )


@dataclass(frozen=True)
class IncidentFeatures:
    """What ``incident_features`` read: the detection, the signals and one row per component."""

    detection: Detection
    signals: CaseSignals
    components: pd.DataFrame


def incident_features(
    telemetry: Telemetry,
    topology: Topology | None = None,
    observations: Observations | None = None,
    alert_time: float | None = None,
    alert_service: str | None = None,
) -> IncidentFeatures:
    """Detection and component features of one incident (shared by ``analyze`` and training).

    Raises:
        TelemetryError: when the metrics are too short to find a change point in.
    """
    # One incident's matrices are small: BLAS threads would spin against each other (and against
    # every other process of a busy host) for longer than the work takes.
    with threadpool_limits(limits=1, user_api="blas"):
        known = known_components(telemetry, topology.names if topology is not None else None, alert_service)
        frame = metric_frame(telemetry, known)
        detection, found = detect_frame(frame, alert_time, focus=_focus(frame, alert_service))
        if found is None:
            raise TelemetryError(f"metrics: {len(frame.times)} samples are too few to analyse (need at least 20)")
        signals = case_signals(frame, found, telemetry, topology, observations, alert_service, known)
    return IncidentFeatures(detection=detection, signals=signals, components=component_table(signals))


def _focus(frame: MetricFrame, alert_service: str | None) -> np.ndarray | None:
    if alert_service is None or alert_service not in frame.services:
        return None
    weights = np.ones(frame.n_columns)
    weights[frame.columns_of(alert_service)] = ALERT_FOCUS
    return weights


def score_rows(model: ScoringModel, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence, probability)`` of each row, its features aligned to the model's."""
    if not len(rows):
        return np.zeros(0), np.zeros(0)
    aligned = rows.reindex(columns=list(model.feature_names)).to_numpy(dtype=float)
    return model.score_incident(aligned)


def rank_components(model: ScoringModel, components: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(order, confidence)``: components most likely first, and each one's confidence."""
    confidence, score = score_rows(model, components)
    # Calibration is a step function: the trees' own score orders what it ties.
    order = np.lexsort((-score, -confidence))
    return order, confidence


def type_faults(model: ScoringModel, faults: pd.DataFrame) -> dict[str, tuple[FaultType, float]]:
    """Per component of ``faults``: its most likely supported fault type and that type's confidence."""
    typed: dict[str, tuple[FaultType, float]] = {}
    for service, rows in faults.groupby("service", sort=False):
        supported = rows.loc[rows["supported"] > 0]
        if supported.empty:
            supported = rows.loc[rows["fault"] == FaultType.ANOMALY.value]
        if supported.empty:
            continue
        confidence, probability = score_rows(model, supported)
        order = np.lexsort((-probability, -confidence))
        # A decisive cause of the component overrules a symptom, and its going down when the cause takes
        # a component down (named in its own logs, a rollout, an OOM kill: ``overruling``).
        causes = order[overruling(FaultType(supported["fault"].iloc[order[0]]), supported)[order]]
        best = int(causes[0] if len(causes) else order[0])
        share = confidence[best] if len(supported) > 1 else 1.0
        typed[str(service)] = (FaultType(supported["fault"].iloc[best]), float(share))
    return typed


def analyze(
    telemetry: Telemetry,
    topology: Topology | None = None,
    observations: Observations | None = None,
    alert_time: float | None = None,
    model: DiagnosisModel | None = None,
    target: TargetContext | None = None,
    *,
    alert_service: str | None = None,
    top_k: int = 5,
    history: FixHistory | None = None,
) -> Analysis:
    """Rank the likely root causes of an incident and explain, verify and fix each of them.

    Args:
        telemetry: metrics (RCAEval layout) and optional logs and traces.
        topology: the call graph, when known (else it is read from traces when there are any).
        observations: what executors found (DB process lists, health checks, cache stats...).
        alert_time: when the alert began (epoch seconds): the change is searched before it.
        model: the fitted models (``models.store.ModelStore.current()`` or the shipped one).
        target: where components live, to fill verification and fix task templates; defaults
            from the topology's attributes, else namespace/connection ``default``.
        alert_service: the component that paged (the alert's ``service`` label).
        top_k: how many components to explain, verify and fix.
        history: past fix outcomes for fix confidences.

    Raises:
        ModelsError: without a model.
        TelemetryError: when the metrics cannot be analysed.
    """
    if model is None:
        raise ModelsError("analyze needs a fitted model: load one from a ModelStore or use the shipped model")
    started = time.perf_counter()
    features = incident_features(telemetry, topology, observations, alert_time, alert_service)
    signals = features.signals
    detected = time.perf_counter()
    order, confidence = rank_components(model.components, features.components)
    top = [str(features.components["service"].iloc[row]) for row in order[:top_k]]
    faults = fault_table(signals, top)
    typed = type_faults(model.faults, faults)
    ranked = time.perf_counter()
    if target is None:
        target = TargetContext.from_topology(topology) if topology is not None else TargetContext()
    hypotheses = []
    for rank, row in enumerate(order[:top_k], start=1):
        service = top[rank - 1]
        fault, fault_confidence = typed.get(service, (FaultType.ANOMALY, 1.0))
        hypotheses.append(
            _explain(signals, service, fault, rank, float(confidence[row]), fault_confidence, target, history)
        )
    explained = time.perf_counter()
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
        model_version=model.version,
        calibrated_on=model.calibrated_on,
        candidates=CaseFeatures.from_tables(features.components, faults),
    )


def _explain(
    signals: CaseSignals,
    service: str,
    fault: FaultType,
    rank: int,
    confidence: float,
    fault_confidence: float,
    target: TargetContext,
    history: FixHistory | None,
) -> Hypothesis:
    position = signals.position(service)
    draft = Hypothesis(
        component=service,
        fault=fault,
        confidence=round(confidence, 4),
        fault_confidence=round(fault_confidence, 4),
        metric=_claimed_metric(signals, position, fault) if fault.is_plain else None,
        missing_evidence=missing_evidence(signals, position, fault),
        evidence=gather_evidence(signals, service, fault),
        rank=rank,
        affected=affected_by(signals, service),
    )
    return draft.model_copy(
        update={"verification": verification_tasks(draft, target), "fixes": fix_suggestions(draft, target, history)}
    )


_PLAIN_KINDS: dict[FaultType, tuple[str, ...]] = {
    FaultType.CPU: (MetricKind.CPU.value,),
    FaultType.MEMORY: (MetricKind.MEMORY.value,),
    FaultType.DISK: (MetricKind.DISK.value,),
    FaultType.LATENCY: (MetricKind.LATENCY.value,),
    FaultType.ERRORS: (MetricKind.ERRORS.value,),
}


def _claimed_metric(signals: CaseSignals, position: int, fault: FaultType) -> str | None:
    """The column that moved most among those of ``fault``'s kind (any kind for ``anomaly``);
    ``None`` when none of them moved: a component ranked for want of better names no metric."""
    columns = np.flatnonzero(signals.column_service == position)
    if fault in _PLAIN_KINDS:
        columns = columns[np.isin(signals.frame.kinds[columns], _PLAIN_KINDS[fault])]
    peaks = np.abs(signals.deviations.peak[columns])
    if not len(columns) or peaks.max() <= ONSET_THRESHOLD:
        return None
    return signals.frame.columns[int(columns[np.argmax(peaks)])]
