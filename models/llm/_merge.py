"""Merging the model's view with the ranker's: agreement raises confidence (a capped noisy-OR),
disagreement is spelled out, and the final ranking says which analyser proposed what."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from models.domain._hypothesis import Hypothesis
from models.domain._target import TargetContext
from models.domain._types import FaultType
from models.playbook._catalog import FixHistory, fix_suggestions, verification_tasks

#: How much a model's confidence counts beside the ranker's calibrated one: its probabilities are
#: not calibrated, and it saw some of the same evidence, so it is discounted before combining.
LLM_WEIGHT = 0.5
#: Agreement never makes a hypothesis certain: verification decides.
AGREEMENT_CAP = 0.95


class Agreement(BaseModel):
    """Both analysers name this root cause: each one's confidence and the combined one."""

    model_config = ConfigDict(frozen=True)

    component: str
    fault: FaultType
    ranker: float
    llm: float
    merged: float


class MergedRanking(BaseModel):
    """The final ranking, and where the analysers agreed and disagreed."""

    model_config = ConfigDict(frozen=True)

    hypotheses: list[Hypothesis]
    agreements: list[Agreement] = Field(default_factory=list)
    #: One line per disagreement, for the report.
    disagreements: list[str] = Field(default_factory=list)


def agreement_confidence(ranker: float, llm: float, *, weight: float = LLM_WEIGHT, cap: float = AGREEMENT_CAP) -> float:
    """Noisy-OR of the ranker's confidence and the model's discounted one, capped below 1.

    ``1 - (1 - ranker) * (1 - weight * llm)``, at most ``cap``, never below ``ranker``: agreement
    only raises a confidence (0.6 and 0.8 give 0.76 at weight 0.5).
    """
    combined = 1.0 - (1.0 - ranker) * (1.0 - weight * llm)
    return round(max(ranker, min(cap, combined)), 4)


def merge_rankings(
    ranker: Sequence[Hypothesis],
    llm: Sequence[Hypothesis],
    *,
    weight: float = LLM_WEIGHT,
    cap: float = AGREEMENT_CAP,
    target: TargetContext | None = None,
    history: FixHistory | None = None,
) -> MergedRanking:
    """The ranker's hypotheses and the model's, as one ranking that says who proposed what.

    * Both name it: ``proposed_by=["ranker", "llm"]``, confidence ``agreement_confidence``, the
      ranker's evidence, verification and fixes.
    * Only the ranker: unchanged.
    * Only the model: ``proposed_by=["llm"]``, confidence ``weight`` x its own (at most ``cap``),
      and the catalog's verification tasks and fixes for the pair, never the model's: what runs
      against the world comes from the catalog and the policy.

    Sorted by confidence (stable: the ranker's order on ties), ranks renumbered.

    Args:
        ranker: the ranker's hypotheses, most likely first.
        llm: the model's, most likely first (``LLMView.hypotheses``).
        weight: how much the model's confidence counts.
        cap: the most an agreement or a model-only hypothesis may reach.
        target: where components live, for the catalog's tasks.
        history: past fix outcomes, for the catalog's fix confidences.
    """
    theirs = {h.key: h for h in llm}
    ours = {h.key for h in ranker}
    merged: list[Hypothesis] = []
    agreements: list[Agreement] = []
    for hypothesis in ranker:
        other = theirs.get(hypothesis.key)
        if other is None:
            merged.append(hypothesis)
            continue
        confidence = agreement_confidence(hypothesis.confidence, other.confidence, weight=weight, cap=cap)
        agreements.append(
            Agreement(
                component=hypothesis.component,
                fault=hypothesis.fault,
                ranker=hypothesis.confidence,
                llm=other.confidence,
                merged=confidence,
            )
        )
        merged.append(hypothesis.model_copy(update={"confidence": confidence, "proposed_by": ["ranker", "llm"]}))
    for hypothesis in llm:
        if hypothesis.key in ours:
            continue
        draft = Hypothesis(
            component=hypothesis.component,
            fault=hypothesis.fault,
            confidence=round(min(cap, weight * hypothesis.confidence), 4),
            proposed_by=["llm"],
        )
        merged.append(
            draft.model_copy(
                update={
                    "verification": verification_tasks(draft, target),
                    "fixes": fix_suggestions(draft, target, history),
                }
            )
        )
    merged.sort(key=lambda h: -h.confidence)
    ranked = [h.model_copy(update={"rank": index}) for index, h in enumerate(merged, start=1)]
    return MergedRanking(hypotheses=ranked, agreements=agreements, disagreements=_disagreements(ranker, llm))


def _disagreements(ranker: Sequence[Hypothesis], llm: Sequence[Hypothesis]) -> list[str]:
    if not ranker or not llm:
        return []
    lines = []

    def name(h: Hypothesis) -> str:
        return f"{h.component}/{h.fault.value} ({h.confidence:.2f})"

    if ranker[0].key != llm[0].key:
        lines.append(f"top cause differs: the ranker says {name(ranker[0])}, the llm says {name(llm[0])}")
    theirs = {h.key for h in llm}
    if ranker[0].key not in theirs:
        lines.append(f"the llm does not name the ranker's top cause {name(ranker[0])}")
    ours = {h.key for h in ranker}
    lines += [
        f"only the llm proposes {name(h)}; it is not among the ranker's top {len(ranker)}"
        for h in llm
        if h.key not in ours
    ]
    return lines
