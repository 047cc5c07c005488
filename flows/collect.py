"""Step 2, collection: the evidence the candidate faults call for, planned from the detection,
then the spec's cross-source chain as follow-ups. A failed source is recorded; the cycle goes on."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from contract import PlannedTask
from flows.context import ACTOR, IncidentContext
from flows.dispatch import run_batches
from flows.report import CycleReport
from models import Detection
from models.playbook.collection import (
    CollectedEvidence,
    evidence_from_results,
    plan_error_context,
    plan_evidence,
    plan_follow_ups,
)


def collect_step(
    ctx: IncidentContext, detection: Detection | None, report: CycleReport, *, round_name: str = "collect"
) -> CollectedEvidence:
    step = report.begin(round_name)
    involved = list(detection.involved_services) if detection is not None else []
    if ctx.alert.service and ctx.alert.service not in involved:
        involved.insert(0, ctx.alert.service)
    plan = plan_evidence(ctx.sources, ctx.topology, involved, ctx.window)
    evidence = _run_and_read(ctx, plan, round_name, report)

    follow_ups = plan_follow_ups(ctx.sources, evidence.logs, ctx.window)
    if follow_ups:
        more = _run_and_read(ctx, follow_ups, f"{round_name}-traces", report)
        evidence = _combine(evidence, more)
        context = plan_error_context(ctx.sources, evidence.logs, evidence.traces)
        if context:
            _run_and_read(ctx, context, f"{round_name}-context", report)
        report.collection.follow_ups += [item.label for item in follow_ups]
        report.collection.follow_ups.append(f"{len(context)} metric queries around the first error")
    report.end(
        step,
        f"{evidence.succeeded} sources answered, {len(evidence.failures)} failed; "
        f"{0 if evidence.logs is None else len(evidence.logs)} log lines, "
        f"{0 if evidence.traces is None else len(evidence.traces)} spans, "
        f"{len(evidence.observations.db)} databases, {len(evidence.observations.cache)} caches, "
        f"{len(evidence.observations.health)} health checks",
    )
    return evidence


def _run_and_read(
    ctx: IncidentContext, plan: list[PlannedTask], step_name: str, report: CycleReport
) -> CollectedEvidence:
    results = run_batches({ctx.environment.name: plan}, step=step_name, actor=ACTOR).get(ctx.environment.name, [])
    evidence = evidence_from_results(plan, results, ctx.topology)
    report.collection.planned += len(plan)
    report.collection.succeeded += evidence.succeeded
    report.collection.failures += evidence.failures
    for purpose, count in Counter(
        item.purpose for item, r in zip(plan, results, strict=True) if r.get("status") == "succeeded"
    ).items():
        report.collection.by_purpose[purpose] = report.collection.by_purpose.get(purpose, 0) + count
    return evidence


def _combine(first: CollectedEvidence, second: CollectedEvidence) -> CollectedEvidence:
    def both(a: pd.DataFrame | None, b: pd.DataFrame | None) -> pd.DataFrame | None:
        frames = [f for f in (a, b) if f is not None and not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else None

    traces = both(first.traces, second.traces)
    if traces is not None:
        traces = traces.drop_duplicates(subset=["trace_id", "span_id"])
    return CollectedEvidence(
        logs=both(first.logs, second.logs),
        traces=traces,
        observations=first.observations.merged(second.observations),
        failures=[*first.failures, *second.failures],
        succeeded=first.succeeded + second.succeeded,
    )
