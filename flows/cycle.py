"""``rca-incident``: the seven-step cycle for one alert group.

    detect → collect → analyze → verify → suggest → fix → feedback

Each step lives in its own module; this flow only says in which order they run and when the cycle
stops early (no anomaly, a duplicate run, nothing collected or ranked, nothing confirmed). Every
run leaves a Markdown RCA report and a table of ranked hypotheses as Prefect artifacts, published
as soon as the analysis and verification are done (before the fix waits for a person) and updated
after the fix and at the end (``flows.artifacts``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

from flows.alerts import INCIDENT_FLOW, AlertGroup
from flows.analyze import analyze_step
from flows.artifacts import publish
from flows.collect import collect_step
from flows.context import incident_context
from flows.detect import detect_step
from flows.feedback import feedback_step
from flows.fix import fix_step
from flows.report import CycleOutcome, CycleReport, FixRecord
from flows.runs import active_runs
from flows.suggest import suggest_step
from flows.verify import verify_step


def run_name_of(alert: Any) -> str:
    """``rca-<alertname>-<service>`` for the alert parameter as a run receives it.

    A run started in this process gets the ``AlertGroup`` itself; one a deployment trigger starts
    gets the group's JSON (a dict, or a string where the template was not parsed).
    """
    group = alert if isinstance(alert, AlertGroup) else None
    with contextlib.suppress(ValueError):
        if group is None and isinstance(alert, dict):
            group = AlertGroup.model_validate(alert)
        elif group is None and isinstance(alert, str | bytes):
            group = AlertGroup.model_validate_json(alert)
    if group is None:
        return "rca-alert-unknown"
    return f"rca-{group.alertname}-{group.service or 'unknown'}".lower()


def _run_name() -> str:
    return run_name_of(flow_run.parameters.get("alert"))


@flow(name=INCIDENT_FLOW, flow_run_name=_run_name, persist_result=True, log_prints=True)
def rca_incident(alert: AlertGroup) -> dict[str, Any]:
    """Diagnose one Alertmanager alert group and, when it is safe or approved, fix it."""
    logger = get_run_logger()
    duplicate = _claim_group(alert)
    ctx = incident_context(alert)
    report = CycleReport(
        incident_id=str(flow_run.id),
        alertname=alert.alertname,
        service=alert.service,
        environment=ctx.environment.name,
        summary=alert.summary,
        group_key=alert.groupKey,
        starts_at=alert.starts_at,
        flow_run_url=flow_run.ui_url,
        notes=list(ctx.notes),
    )
    if duplicate is not None:
        report.outcome = "duplicate"
        report.notes.append(f"flow run {duplicate} already handles this alert group")
        return publish(report)

    detection, metrics = detect_step(ctx, report)
    if detection is not None and not detection.is_anomaly:
        report.outcome = "no_anomaly"
        return publish(report)

    evidence = collect_step(ctx, detection, report)
    analysis = analyze_step(ctx, metrics, evidence, report)
    if analysis is None or not analysis.hypotheses:
        report.outcome, report.stopped_because = nothing_ranked(report)
        feedback_step(report, analysis)
        return publish(report)
    report.hypotheses, report.calibrated_on = analysis.hypotheses, analysis.calibrated_on

    verify_step(ctx, report.hypotheses, report)
    root = report.root_cause
    confirmed = root is not None and report.verification_of(root) == "confirmed"
    fixes = suggest_step(ctx, root, report)
    publish(report)  # the diagnosis, visible before the fix (which may wait for a person)
    if not confirmed:
        report.outcome = "root_cause_not_found"
    else:
        assert root is not None
        record = fix_step(ctx, root, fixes, report)
        report.outcome = _outcome_of(record)
        publish(report)
        if record is not None and record.worked is False:
            logger.warning("the fix did not resolve %s/%s; collecting again", root.component, root.fault)
            again = collect_step(ctx, detection, report, round_name="collect-again")
            second = analyze_step(ctx, metrics, again, report, name="analyze-again")
            report.reanalysis = second.hypotheses if second is not None else []

    feedback_step(report, analysis)
    return publish(report)


def nothing_ranked(report: CycleReport) -> tuple[CycleOutcome, str]:
    """The outcome of a cycle whose analysis ranked nothing, and why in a sentence."""
    collection = report.collection
    steps = {step.name: step.summary for step in report.timeline}
    if collection.succeeded == 0:
        if collection.planned == 0:
            why = "nothing was planned for collection"
            if "detect" in steps and "skipped" in steps["detect"]:
                why += f" ({steps['detect']})"
            return "nothing_collected", why
        failures = "; ".join(collection.failures[:3])
        return "nothing_collected", (
            f"none of the {collection.planned} collection tasks returned data" + (f": {failures}" if failures else "")
        )
    answered = f"{collection.succeeded} of {collection.planned} collection tasks returned data"
    if report.stopped_because:  # the analysis could not run, and said why
        return "no_hypothesis", f"{report.stopped_because} ({answered})"
    return "no_hypothesis", f"the analysis ranked no candidate root cause ({answered})"


def _outcome_of(record: FixRecord | None) -> CycleOutcome:
    if record is None:
        return "requires_manual_review"
    outcomes: dict[str, CycleOutcome] = {
        "rejected": "fix_rejected",
        "timed_out": "fix_timed_out",
        "not_runnable": "requires_manual_review",
    }
    return outcomes.get(record.decision, "fixed" if record.worked else "fix_failed")


def _claim_group(alert: AlertGroup) -> str | None:
    """Tag this run with its alert group; return an older active run of the group, if any."""
    me = flow_run.id
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(me)
        if alert.group_tag not in (current.tags or []):
            client.update_flow_run(me, tags=[*(current.tags or []), alert.group_tag])
    older = [
        run
        for run in active_runs(alert.group_tag, exclude=current.id)
        if run.created and current.created and run.created < current.created
    ]
    return str(older[0].id) if older else None
