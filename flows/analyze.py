"""Step 3, analysis: ranked (component, fault) hypotheses with calibrated confidence and evidence,
and, when an LLM is configured, its second opinion merged in (``flows.llm``)."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows._models import current_model, outcome_store
from flows.collect import CollectedEvidence
from flows.context import IncidentContext
from flows.llm import incident_facts, second_opinion
from flows.report import CycleReport
from flows.runtime import settings
from models import Analysis, Observations, TargetContext, Telemetry, TelemetryError, Topology, analyze


@task(name="rank-hypotheses", cache_policy=NO_CACHE, persist_result=False)
def rank_hypotheses(
    telemetry: Telemetry,
    topology: Topology | None,
    observations: Observations,
    alert_time: float,
    target: TargetContext,
    alert_service: str | None = None,
) -> Analysis:
    return analyze(
        telemetry,
        topology=topology,
        observations=observations,
        alert_time=alert_time,
        model=current_model(),
        target=target,
        alert_service=alert_service,
        history=outcome_store().fix_history(),
    )


def analyze_step(
    ctx: IncidentContext,
    metrics: pd.DataFrame,
    evidence: CollectedEvidence,
    report: CycleReport,
    *,
    name: str = "analyze",
) -> Analysis | None:
    step = report.begin(name)
    try:
        telemetry = Telemetry(metrics=metrics, logs=evidence.logs, traces=evidence.traces)
        analysis = rank_hypotheses(
            telemetry, ctx.topology, evidence.observations, ctx.alert_time, ctx.target, ctx.alert_service
        )
    except TelemetryError as exc:  # too little to analyse: an outcome of the cycle, not a crash
        report.stopped_because = f"the analysis could not run: {exc}"
        report.end(step, f"no analysis: {exc}")
        return None
    top = analysis.hypotheses[:3]
    report.end(
        step,
        "top: " + "; ".join(f"{h.component}/{h.fault} {h.confidence:.2f}" for h in top) if top else "no hypothesis",
    )
    if settings().llm_enabled:
        facts = incident_facts(ctx, telemetry, evidence.observations)
        analysis = second_opinion(ctx, analysis, facts, report, name=name)
    return analysis
