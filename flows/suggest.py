"""Step 5, suggestion: fixes for the root cause, with risk and a confidence learnt from outcomes."""

from __future__ import annotations

import os

from executors import Environment
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
    fixes = [
        _here(fix, ctx.environment) for fix in fix_suggestions(root, ctx.target, history=outcome_store().fix_history())
    ]
    report.fixes = fixes
    report.end(step, "; ".join(f"{f.action} ({f.risk}, {f.confidence:.2f})" for f in fixes) or "no fix known")
    return fixes


#: Task types that need no named connection to run.
_CONNECTIONLESS = frozenset({"shell", "api"})


def _here(fix: FixSuggestion, environment: Environment) -> FixSuggestion:
    """The fix, marked not runnable when this environment has no connection for its task."""
    if not fix.runnable:
        return fix
    task_type = str(fix.command.get("type", ""))
    name = (fix.command.get("params") or {}).get("connection") or "default"
    if task_type in _CONNECTIONLESS or name in environment.connections.get(task_type, {}):
        return fix
    if task_type == "k8s" and (os.environ.get("KUBECONFIG") or os.environ.get("KUBERNETES_SERVICE_HOST")):
        return fix  # the k8s executor falls back to the kubeconfig or the in-cluster account
    return fix.model_copy(
        update={
            "runnable": False,
            "description": (
                f"{fix.description} (not runnable in {environment.name}: no {task_type} connection {name!r})"
            ),
        }
    )


def best_fix(fixes: list[FixSuggestion]) -> FixSuggestion | None:
    """The spec's choice: runnable, lowest risk first, then highest confidence."""
    runnable = [fix for fix in fixes if fix.runnable]
    if not runnable:
        return None
    return min(runnable, key=lambda fix: (_RISK_ORDER[Risk(fix.risk)], -fix.confidence))
