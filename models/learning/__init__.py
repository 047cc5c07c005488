"""Training and judging the models: labelled rows from generated incidents, fitting, evaluation,
leave-one-generator-out, and retraining from real outcomes."""

from models.learning._datasets import (
    SCORED_VIEWS,
    VIEWS,
    TrainingSet,
    generated_training_set,
    labelled_rows,
    training_set,
)
from models.learning._evaluation import (
    EvaluationReport,
    Fold,
    ReliabilityBin,
    ac_at_k,
    avg_at_k,
    brier_score,
    calibrated_ece,
    evaluate,
    expected_calibration_error,
    leave_one_generator_out,
    reliability_table,
)
from models.learning._retrain import RetrainReport, gate_scores, promotion_decision, retrain, ship_model
from models.learning._training import COLD_START_CASES, COLD_START_SEED, REAL_WEIGHT, TrainedModels, train_models

__all__ = [
    "COLD_START_CASES",
    "COLD_START_SEED",
    "REAL_WEIGHT",
    "SCORED_VIEWS",
    "VIEWS",
    "EvaluationReport",
    "Fold",
    "ReliabilityBin",
    "RetrainReport",
    "TrainedModels",
    "TrainingSet",
    "ac_at_k",
    "avg_at_k",
    "brier_score",
    "calibrated_ece",
    "evaluate",
    "expected_calibration_error",
    "gate_scores",
    "generated_training_set",
    "labelled_rows",
    "leave_one_generator_out",
    "promotion_decision",
    "reliability_table",
    "retrain",
    "ship_model",
    "train_models",
    "training_set",
]
