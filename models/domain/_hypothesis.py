"""What the models say about an incident: hypotheses, the evidence behind them, fixes, verdicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.domain._types import FaultType, Risk

EvidenceKind = Literal["metric", "log", "trace", "db", "health", "cache", "deploy", "pod"]


class Evidence(BaseModel):
    """One fact behind a hypothesis, in one human line, with the numbers in ``details``."""

    model_config = ConfigDict(frozen=True)

    kind: EvidenceKind
    #: Where it comes from: a metric column, a service's logs, a task's target...
    source: str
    summary: str
    #: Strength of the support in [0, 1].
    score: float = Field(ge=0.0, le=1.0)
    details: dict[str, Any] = Field(default_factory=dict)


class FixSuggestion(BaseModel):
    """A way to fix the incident if the hypothesis holds, as an executor task."""

    model_config = ConfigDict(frozen=True)

    action: str
    description: str
    #: A task spec ``{"type", "command", "params", "timeout"}``.
    command: dict[str, Any]
    #: P(hypothesis true) x P(this fix works for this fault), the latter learned from outcomes.
    confidence: float = Field(ge=0.0, le=1.0)
    risk: Risk
    #: False when the command still needs a value a person must fill in (a table, a size).
    runnable: bool = True
    #: P(this fix works | the fault is this one): the posterior mean behind ``confidence``.
    success_rate: float = Field(default=0.5, ge=0.0, le=1.0)


class Hypothesis(BaseModel):
    """A candidate root cause: this component has this fault."""

    model_config = ConfigDict(frozen=True)

    component: str
    fault: FaultType
    #: Calibrated probability that this component is the root cause.
    confidence: float = Field(ge=0.0, le=1.0)
    #: Probability that the fault type is right, given the component (1.0 when only one is supported).
    fault_confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    #: For a claim made from one metric (``anomaly``, ``cpu``...): the metric column behind it.
    metric: str | None = None
    #: What evidence would tell the fault types this data cannot tell apart (``db_pool_exhausted:
    #: a connection count that moved, ...``).
    missing_evidence: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    #: Task specs that would confirm or refute it.
    verification: list[dict[str, Any]] = Field(default_factory=list)
    fixes: list[FixSuggestion] = Field(default_factory=list)
    proposed_by: list[str] = Field(default_factory=lambda: ["ranker"])
    #: 1 for the most likely hypothesis.
    rank: int = Field(default=1, ge=1)
    #: Components whose anomalies this root cause would explain (its anomalous dependents).
    affected: list[str] = Field(default_factory=list)

    @property
    def key(self) -> tuple[str, FaultType]:
        return (self.component, self.fault)


class Verification(BaseModel):
    """What the verification tasks said about a hypothesis."""

    model_config = ConfigDict(frozen=True)

    component: str
    fault: FaultType
    status: Literal["confirmed", "refuted", "inconclusive"]
    reason: str
    evidence: list[Evidence] = Field(default_factory=list)
