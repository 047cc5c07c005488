"""Two risk scales and how they relate.

``RiskClass`` (read < write < destructive) is what a *task* does, decided by the executors'
policy; it gates whether a task needs an approval. ``Risk`` (low < medium < high) is how much a
*fix* may hurt if the hypothesis behind it is wrong; with the fix's confidence it gates whether the
cycle applies it by itself. They meet in one rule: a fix's task may do at most what its risk allows.
A low- or medium-risk fix never runs a destructive task; only a high-risk one may, and any fix
changes something (a fix that only reads is no fix).
"""

from __future__ import annotations

from enum import StrEnum

from contract._task import RiskClass


class Risk(StrEnum):
    """How much a fix may hurt if it is the wrong one."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: The most a fix's task may do, by the fix's risk.
MOST_A_FIX_MAY_DO: dict[Risk, RiskClass] = {
    Risk.LOW: RiskClass.WRITE,
    Risk.MEDIUM: RiskClass.WRITE,
    Risk.HIGH: RiskClass.DESTRUCTIVE,
}


def fix_fits_its_risk(risk: Risk, task: RiskClass) -> bool:
    """Whether a fix of ``risk`` may run a task the policy classed ``task``."""
    return task is not RiskClass.READ and task.rank <= MOST_A_FIX_MAY_DO[risk].rank
