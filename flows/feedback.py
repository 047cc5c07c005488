"""Step 7, feedback: the outcome (root cause confirmed? fix worked?) goes to the outcome store,
from which the scheduled ``retrain-model`` flow learns."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows._models import outcome_store
from flows.report import CycleReport
from models import Analysis, Outcome


@task(name="record-outcome", cache_policy=NO_CACHE, persist_result=False)
def record_outcome(report: CycleReport, analysis: Analysis | None) -> str | None:
    root = report.root_cause
    confirmed = root is not None and report.verification_of(root) == "confirmed"
    outcome = Outcome(
        incident_id=report.incident_id,
        environment=report.environment,
        hypotheses=[(h.component, h.fault, h.confidence) for h in report.hypotheses[:10]],
        candidates=analysis.candidates if analysis is not None else None,
        verification=report.verification_of(root) if root is not None else None,
        root_cause=(root.component, root.fault) if confirmed and root is not None else None,
        fix_action=report.fix.suggestion.action if report.fix else None,
        fix_fault=root.fault if report.fix is not None and root is not None else None,
        fix_worked=report.fix.worked if report.fix else None,
        model_version=analysis.model_version if analysis is not None else None,
    )
    return outcome_store().record(outcome)


def feedback_step(report: CycleReport, analysis: Analysis | None) -> None:
    step = report.begin("feedback")
    outcome_id = record_outcome(report, analysis)
    report.end(step, f"outcome {outcome_id} stored for retraining" if outcome_id else "nothing to learn from")
