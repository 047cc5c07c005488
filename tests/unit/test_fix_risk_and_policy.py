"""The two risk scales agree on every fix the catalog offers: the policy classes each fix's task
(read, write, destructive) and the contract's rule says a fix of that risk may run it. Every task
also passes the verification side's contract: the policy classes each verification task ``read``.

This joins two rooms (the playbook's fixes and the executors' policy) through the contract only."""

from __future__ import annotations

import pytest

from contract import Risk, RiskClass, TaskSpec, fix_fits_its_risk
from executors import PolicyConfig
from executors._policy import Policy
from models import (
    Evidence,
    FaultType,
    Hypothesis,
    fix_suggestions,
    verification_tasks,
)
from tests.playbook_targets import SHOP as TARGET

COMPONENTS = ("orders-db", "items-db", "session-cache", "checkout")
POLICY = Policy(PolicyConfig(), environment="prod")
#: Evidence some fixes are filled from (a slow statement's query id, the table it scans).
EVIDENCE = [
    Evidence(
        kind="db",
        source="orders-db",
        summary="a statement running for 320 s",
        score=0.9,
        details={"pid": 4242, "query_id": "8211", "table": "orders"},
    )
]


def _cases() -> list[tuple[str, FaultType]]:
    return [(component, fault) for component in COMPONENTS for fault in FaultType]


@pytest.mark.parametrize(("component", "fault"), _cases(), ids=lambda value: str(value))
def test_every_fix_runs_a_task_its_risk_allows(component: str, fault: FaultType) -> None:
    hypothesis = Hypothesis(component=component, fault=fault, confidence=0.8, evidence=EVIDENCE, affected=[])
    for fix in fix_suggestions(hypothesis, TARGET):
        if not fix.runnable:
            continue
        assessed = POLICY.assess(TaskSpec.parse(fix.command))
        assert fix_fits_its_risk(Risk(fix.risk), assessed.risk), (
            f"{fix.action} ({fix.risk}) runs a {assessed.risk.value} task: {fix.command} ({assessed.reasons})"
        )


@pytest.mark.parametrize(("component", "fault"), _cases(), ids=lambda value: str(value))
def test_every_verification_task_is_a_read(component: str, fault: FaultType) -> None:
    hypothesis = Hypothesis(component=component, fault=fault, confidence=0.8, evidence=EVIDENCE, affected=[])
    for task in verification_tasks(hypothesis, TARGET):
        assessed = POLICY.assess(TaskSpec.parse(task))
        assert assessed.risk is RiskClass.READ, f"{task} is {assessed.risk.value}: {assessed.reasons}"
