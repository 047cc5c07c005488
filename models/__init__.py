"""What the data say about an incident: detection, ranked hypotheses with evidence, verification
plans and fixes, a simulator of incidents with known root causes, evaluation and retraining.

Pure data science: no Prefect, no network, no executors. ``models.store`` is the only module that
reads or writes files.

    from models import analyze, load_telemetry, Topology, default_ranker, ModelStore
    analysis = analyze(load_telemetry("metrics.csv"), topology=Topology.load("topology.yaml"),
                       ranker=default_ranker(ModelStore("state/models")))
    for hypothesis in analysis.hypotheses:
        print(hypothesis.component, hypothesis.fault, hypothesis.confidence)
"""

from models._analysis import Analysis, CaseFeatures, analyze
from models._baseline import BaselineEntry
from models._catalog import FIX_PRIORS, FixHistory, fix_suggestions, success_rate, verification_tasks
from models._detection import Detection, detect
from models._errors import ModelsError, ModelStoreError, OutcomeStoreError, TelemetryError, TopologyError
from models._evaluation import (
    EvaluationReport,
    ReliabilityBin,
    Scores,
    ac_at_k,
    avg_at_k,
    brier_score,
    evaluate,
    expected_calibration_error,
    reliability_table,
)
from models._hypothesis import Evidence, FixSuggestion, Hypothesis, Verification
from models._observations import (
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
from models._ranker import HypothesisRanker
from models._simulator import SPEC_SCENARIOS, SimulatedIncident, SimulationConfig, simulate_cases, simulate_incident
from models._target import ServiceTarget, TargetContext
from models._telemetry import Telemetry, split_metric_column
from models._topology import ServiceNode, Topology
from models._training import (
    COLD_START_SEED,
    RetrainReport,
    TrainingSet,
    cold_start_ranker,
    default_ranker,
    retrain,
    simulated_training_set,
    train_ranker,
)
from models._types import FaultType, MetricKind, Risk, ServiceKind
from models._verification import interpret_verification
from models.store import ModelMetadata, ModelStore, Outcome, OutcomeStore, load_telemetry

__all__ = [
    "COLD_START_SEED",
    "FIX_PRIORS",
    "SPEC_SCENARIOS",
    "Analysis",
    "BaselineEntry",
    "CacheStats",
    "CaseFeatures",
    "DbSnapshot",
    "DeployEvent",
    "Detection",
    "EvaluationReport",
    "Evidence",
    "FaultType",
    "FixHistory",
    "FixSuggestion",
    "HealthCheck",
    "Hypothesis",
    "HypothesisRanker",
    "MetricKind",
    "ModelMetadata",
    "ModelStore",
    "ModelStoreError",
    "ModelsError",
    "Observations",
    "Outcome",
    "OutcomeStore",
    "OutcomeStoreError",
    "PodStatus",
    "ReliabilityBin",
    "RetrainReport",
    "Risk",
    "Scores",
    "ServiceKind",
    "ServiceNode",
    "ServiceTarget",
    "SimulatedIncident",
    "SimulationConfig",
    "TargetContext",
    "Telemetry",
    "TelemetryError",
    "TopQuery",
    "Topology",
    "TopologyError",
    "TrainingSet",
    "Verification",
    "ac_at_k",
    "analyze",
    "avg_at_k",
    "brier_score",
    "cache_stats_from_info",
    "cold_start_ranker",
    "db_snapshot_from_result",
    "default_ranker",
    "detect",
    "evaluate",
    "expected_calibration_error",
    "fix_suggestions",
    "health_check_from_result",
    "interpret_verification",
    "load_telemetry",
    "reliability_table",
    "retrain",
    "simulate_cases",
    "simulate_incident",
    "simulated_training_set",
    "split_metric_column",
    "success_rate",
    "train_ranker",
    "verification_tasks",
]
