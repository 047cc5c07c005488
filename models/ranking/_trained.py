"""The fitted estimators of both models, as scikit-learn objects (what training produces)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.ranking._analysis import DiagnosisModel
from models.ranking._compiled import compile_ranker

if TYPE_CHECKING:  # scikit-learn is imported where models are fitted or reloaded, not where they run
    from models.ranking._ranker import HypothesisRanker


@dataclass(frozen=True)
class TrainedModels:
    """The fitted ``HypothesisRanker`` of each step; ``compiled()`` is what ``analyze`` runs."""

    components: HypothesisRanker
    faults: HypothesisRanker

    def compiled(self, version: str | None = None) -> DiagnosisModel:
        return DiagnosisModel(compile_ranker(self.components), compile_ranker(self.faults), version)
