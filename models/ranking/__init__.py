"""From evidence to ranked, explained hypotheses: the two models and ``analyze``.

``HypothesisRanker`` (scikit-learn) is what training fits; ``CompiledRanker`` is the same model as
arrays, what ``analyze`` runs without importing scikit-learn.
"""

from typing import TYPE_CHECKING, Any

from models.ranking._analysis import Analysis, CaseFeatures, DiagnosisModel, analyze, calibration_note
from models.ranking._compiled import CompiledRanker
from models.ranking._trained import TrainedModels

if TYPE_CHECKING:
    from models.ranking._ranker import HypothesisRanker

__all__ = [
    "Analysis",
    "CaseFeatures",
    "CompiledRanker",
    "DiagnosisModel",
    "HypothesisRanker",
    "TrainedModels",
    "analyze",
    "calibration_note",
]


def __getattr__(name: str) -> Any:
    # The estimator imports scikit-learn (a second): only those who fit or reload models pay for it.
    if name == "HypothesisRanker":
        from models.ranking._ranker import HypothesisRanker

        return HypothesisRanker
    raise AttributeError(f"module 'models.ranking' has no attribute {name!r}")
