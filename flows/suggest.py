"""Step 5, suggestion: fixes for the root cause, with risk and a confidence learnt from outcomes."""

from __future__ import annotations

from flows._models import outcome_store
from flows.context import IncidentContext
from flows.report import CycleReport
from models import FixSuggestion, Hypothesis, Risk, fix_suggestions

_RISK_ORDER = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2}


def suggest_step(ctx: IncidentContext, root: Hypothesis | None, report: CycleReport) -> list[FixSuggestion]:
    step = report.begin("suggest")
    if root is None:
        report.end(step, "no root cause to fix")
        return []
    fixes = fix_suggestions(root, ctx.target, history=outcome_store().fix_history())
    report.fixes = fixes
    report.end(step, "; ".join(f"{f.action} ({f.risk}, {f.confidence:.2f})" for f in fixes) or "no fix known")
    return fixes


def best_fix(fixes: list[FixSuggestion]) -> FixSuggestion | None:
    """The spec's choice: runnable, lowest risk first, then highest confidence."""
    runnable = [fix for fix in fixes if fix.runnable]
    if not runnable:
        return None
    return min(runnable, key=lambda fix: (_RISK_ORDER[Risk(fix.risk)], -fix.confidence))
