"""A verification reader's answer: a signed vote, strong or weak, with the evidence behind it."""

from __future__ import annotations

from models.domain._hypothesis import Evidence

STRONG = 2
WEAK = 1


class _Vote:
    def __init__(self, weight: int, evidence: Evidence) -> None:
        self.weight = weight
        self.evidence = evidence
