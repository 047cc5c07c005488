"""The vocabulary every other part of ``models`` speaks: fault types and kinds, telemetry, the
service graph, what executors observed, hypotheses, and where components live. No logic beyond
validation; imports nothing else of ``models``."""

from models.domain._errors import (
    GeneratorError,
    ModelsError,
    ModelStoreError,
    OutcomeStoreError,
    TelemetryError,
    TopologyError,
)
from models.domain._hypothesis import Evidence, FixSuggestion, Hypothesis, Verification
from models.domain._observations import (
    CacheStats,
    DbSnapshot,
    DeployEvent,
    HealthCheck,
    Observations,
    PodStatus,
    TopQuery,
    cache_stats_from_info,
    db_snapshot_from_result,
    health_check_from_result,
)
from models.domain._target import ServiceTarget, TargetContext
from models.domain._telemetry import Telemetry, known_components, metric_services, split_metric_column
from models.domain._topology import ServiceNode, Topology
from models.domain._types import FAULTS_BY_KIND, FaultType, MetricKind, Risk, ServiceKind, metric_kind

__all__ = [
    "FAULTS_BY_KIND",
    "CacheStats",
    "DbSnapshot",
    "DeployEvent",
    "Evidence",
    "FaultType",
    "FixSuggestion",
    "GeneratorError",
    "HealthCheck",
    "Hypothesis",
    "MetricKind",
    "ModelStoreError",
    "ModelsError",
    "Observations",
    "OutcomeStoreError",
    "PodStatus",
    "Risk",
    "ServiceKind",
    "ServiceNode",
    "ServiceTarget",
    "TargetContext",
    "Telemetry",
    "TelemetryError",
    "TopQuery",
    "Topology",
    "TopologyError",
    "Verification",
    "cache_stats_from_info",
    "db_snapshot_from_result",
    "health_check_from_result",
    "known_components",
    "metric_kind",
    "metric_services",
    "split_metric_column",
]
