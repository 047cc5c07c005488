"""Step 6, fix: low risk and high confidence runs by itself; anything else waits for a person.

The wait is Prefect's: the flow run pauses with ``pause_flow_run(wait_for_input=FixDecision)``; a
person answers through the task API (an approver's token: the name is checked) or in the Prefect
UI's form (the name is recorded as typed, unverified unless the UI sits behind a login; see
``flows.approvals``). Before pausing, the report is published with where and how to answer, and
the same lines go to the run's log and the cycle's progress. Nobody answering within the timeout
is an outcome of its own — the fix is not applied and the report says so. Every applied fix
carries an ``Approval`` (the person, or the auto-fix policy, and whether that name was checked),
because the executors refuse a ``write`` task without one; afterwards the root cause's
verification runs again to see whether the fault is gone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.runtime import flow_run
from prefect.states import Running

from contract import Approval, PlannedTask
from flows.approvals import FixDecision, approval_instructions, read_decision
from flows.artifacts import publish
from flows.context import ACTOR, IncidentContext
from flows.dispatch import run_batches
from flows.report import ApprovalWait, CycleReport, FixRecord, progress
from flows.runtime import settings
from flows.suggest import best_fix
from models import FixSuggestion, Hypothesis, Risk, interpret_verification, verification_tasks


def fix_step(
    ctx: IncidentContext, root: Hypothesis, fixes: list[FixSuggestion], report: CycleReport
) -> FixRecord | None:
    step = report.begin("fix")
    fix = best_fix(fixes)
    if fix is None:
        report.end(step, "no runnable fix: a person has to act (see the suggestions)")
        return None
    current = settings()
    if Risk(fix.risk) is Risk.LOW and fix.confidence > current.auto_fix_confidence:
        record = FixRecord(
            suggestion=fix,
            decision="auto",
            decided_by="policy:auto-fix",
            decided_through="policy",
            identity_verified=True,
            reason=f"low risk and confidence {fix.confidence:.2f} > {current.auto_fix_confidence:.2f}",
        )
    else:
        record = _ask_a_person(fix, root, report)
    if record.decision in ("auto", "approved"):
        _apply(ctx, root, record)
    report.fix = record
    report.end(
        step, f"{fix.action}: {record.decision}" + (f", worked: {record.worked}" if record.worked is not None else "")
    )
    return record


def _ask_a_person(fix: FixSuggestion, root: Hypothesis, report: CycleReport) -> FixRecord:
    current = settings()
    pause_key = f"fix-{fix.action.replace('_', '-').lower()}"
    instructions = approval_instructions(str(flow_run.id), flow_run.ui_url)
    report.awaiting_approval = ApprovalWait(
        action=fix.action,
        since=datetime.now(UTC),
        timeout_seconds=current.approval_timeout_seconds,
        instructions=instructions,
    )
    publish(report)  # the diagnosis and how to answer, visible while the run waits
    waiting = (
        f"the fix {fix.action} ({fix.risk} risk) waits for a person, up to {current.approval_timeout_seconds} s; "
        "approve or reject it:\n" + "\n".join(f"  - {line}" for line in instructions)
    )
    # The lines ride along whole: a terminal must not break the curl line it shows to be copied.
    progress.info("fix: %s", waiting, extra={"instructions": instructions})
    get_run_logger().info("%s", waiting[0].upper() + waiting[1:])
    unverified = (
        ""
        if current.prefect_ui_authenticated
        else "A name typed here is recorded as typed and marked **unverified** (this form does not check who "
        "you are); approving through the task API records the approver's token.\n\n"
    )
    description = (
        f"### Approve a fix for `{root.component}` ({root.fault}, confidence {root.confidence:.2f})\n\n"
        f"**{fix.action}** — {fix.description}\n\n"
        f"- risk: **{fix.risk}**, confidence {fix.confidence:.2f}\n"
        f"- task: `{fix.command}`\n\n"
        f"{unverified}"
        f"Waiting {current.approval_timeout_seconds} s; without an answer the fix is not applied."
    )
    try:
        decision = pause_flow_run(
            wait_for_input=FixDecision.with_initial_data(description=description, approve=False),
            timeout=current.approval_timeout_seconds,
            poll_interval=current.approval_poll_seconds,
            key=pause_key,
        )
    except FlowPauseTimeout:
        _resume_after_timeout()
        return FixRecord(
            suggestion=fix,
            decision="timed_out",
            reason=f"nobody answered within {current.approval_timeout_seconds} s; the fix was not applied",
        )
    finally:
        report.awaiting_approval = None
    decided = read_decision(decision, str(flow_run.id), pause_key)
    if decided.note:
        report.notes.append(f"fix decision: {decided.note}; taken as typed in the Prefect UI")
    return FixRecord(
        suggestion=fix,
        decision="approved" if decided.approve else "rejected",
        decided_by=decided.decided_by,
        decided_through=decided.through,
        identity_verified=decided.verified,
        reason=decided.comment,
    )


def _resume_after_timeout() -> None:
    """A pause that timed out leaves the run Paused; the cycle goes on (and reports) without the fix."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            flow_run.id, Running(message="no approval in time; continuing without the fix"), force=True
        )


def _apply(ctx: IncidentContext, root: Hypothesis, record: FixRecord) -> None:
    fix = record.suggestion
    approval = Approval(
        approved_by=record.decided_by or "unknown",
        reason=f"fix {fix.action} for {root.component}/{root.fault}" + (f": {record.reason}" if record.reason else ""),
        verified=record.identity_verified is True,
    )
    items = [
        PlannedTask(
            label=f"fix {fix.action} on {root.component}",
            purpose="fix",
            service=root.component,
            task=dict(fix.command),
            approval=approval,
        )
    ]
    checks = [
        PlannedTask(
            label=f"re-verify {root.fault} of {root.component}", purpose="verification", service=root.component, task=t
        )
        for t in verification_tasks(root, ctx.target)
    ]
    [result] = run_batches({ctx.environment.name: items}, step="fix", actor=ACTOR)[ctx.environment.name]
    record.result = result
    if result.get("status") != "succeeded":
        record.worked = False
        record.verification = "the fix task itself did not succeed"
        return
    # A look right after the fix, and one after the system has had time to react: counters such
    # as Redis's evictions are then read over that window, not over the server's lifetime.
    environment = ctx.environment.name
    baseline = run_batches({environment: checks}, step="fix-baseline", actor=ACTOR).get(environment, [])
    time.sleep(settings().fix_settle_seconds)
    after = run_batches({environment: checks}, step="verify-fix", actor=ACTOR).get(environment, [])
    verification = interpret_verification(root, after, ctx.target, baseline=baseline)
    # The fault's verification confirming it again means the fix did not take.
    record.worked = verification.status == "refuted"
    record.verification = verification.reason
