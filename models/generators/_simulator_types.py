"""What the simulator is asked for (``SimulationConfig``) and what it returns (``SimulatedIncident``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.domain._observations import Observations
from models.domain._telemetry import Telemetry
from models.domain._topology import Topology
from models.domain._types import INJECTED_FAULTS, FaultType


class SimulationConfig(BaseModel):
    """The distribution incidents are drawn from. Shift it to test learning on new ground."""

    model_config = ConfigDict(frozen=True)

    n_services: tuple[int, int] = (10, 50)
    #: Seconds of data and seconds between samples.
    duration: int = Field(default=600, ge=120)
    step: float = Field(default=1.0, gt=0)
    #: Relative weights of fault types (those not listed weigh 0; empty means uniform).
    fault_weights: dict[FaultType, float] = Field(default_factory=dict)
    database_share: float = Field(default=0.15, ge=0, le=0.5)
    cache_share: float = Field(default=0.08, ge=0, le=0.5)
    #: Range of each service's relative noise level.
    noise: tuple[float, float] = (0.02, 0.12)
    #: Multiplies every fault's magnitude (below 1: subtler incidents).
    severity: float = Field(default=1.0, gt=0)
    #: How many decoys per case (min, max).
    decoys: tuple[int, int] = (1, 4)
    p_missing_metrics: float = Field(default=0.3, ge=0, le=1)
    p_logs: float = Field(default=0.8, ge=0, le=1)
    p_traces: float = Field(default=0.5, ge=0, le=1)
    p_db: float = Field(default=0.7, ge=0, le=1)
    p_health: float = Field(default=0.7, ge=0, le=1)
    p_cache: float = Field(default=0.7, ge=0, le=1)
    p_deploys: float = Field(default=0.8, ge=0, le=1)
    p_pods: float = Field(default=0.6, ge=0, le=1)
    #: Chance that the fault flaps (on and off every 30-90 s) instead of staying on.
    p_intermittent: float = Field(default=0.2, ge=0, le=1)
    #: Chance that some components (5-15 %, the root cause among them or not) export no metrics.
    p_uninstrumented: float = Field(default=0.15, ge=0, le=1)

    def weights(self) -> dict[FaultType, float]:
        if not self.fault_weights:
            return dict.fromkeys(INJECTED_FAULTS, 1.0)
        return {fault: float(self.fault_weights.get(fault, 0.0)) for fault in INJECTED_FAULTS}


class SimulatedIncident(BaseModel):
    """One incident and its ground truth (``root_cause`` is ``None`` for a healthy case).

    Generators other than this module's (``models.generators``) build the same class; the fields
    after ``decoys`` carry what only some of them know, with defaults that keep this simulator's
    incidents as they were.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    id: str
    seed: int
    telemetry: Telemetry
    topology: Topology
    observations: Observations
    #: The root cause; with several (``root_causes``), the main one.
    root_cause: tuple[str, FaultType] | None
    #: When the fault began (ground truth, for evaluation only).
    inject_time: float | None
    alert_time: float
    alert: dict[str, Any]
    decoys: list[str] = Field(default_factory=list)
    #: Every root cause, ``root_cause`` first; filled with ``(root_cause,)`` when not given.
    root_causes: tuple[tuple[str, FaultType], ...] = ()
    #: Which generator drew the incident (for leave-one-generator-out evaluation).
    generator: str = "simulator"
    #: The true causal graph over metric columns as ``(cause, effect)`` edges, when the generator knows it.
    metric_graph: tuple[tuple[str, str], ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _all_root_causes(cls, data: Any) -> Any:
        # Filled before validation because the model is frozen; the simulator's callers never pass it.
        if isinstance(data, dict) and not data.get("root_causes") and data.get("root_cause") is not None:
            data = {**data, "root_causes": (data["root_cause"],)}
        return data

    @model_validator(mode="after")
    def _main_root_cause_first(self) -> SimulatedIncident:
        first = self.root_causes[0] if self.root_causes else None
        if first != self.root_cause:
            raise ValueError(f"root_causes must start with root_cause {self.root_cause}, not {first}")
        return self
