"""Step 1, detection: collect every component's metrics around the alert, then decide whether the
alert is a real anomaly, since when, and which services look involved."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.context import ACTOR, IncidentContext
from flows.dispatch import run_batches
from flows.report import CycleReport
from models import Detection, Telemetry, TelemetryError, detect
from models.playbook.collection import failure_line, metrics_from_results, plan_metrics


@task(name="detect-anomaly", cache_policy=NO_CACHE, persist_result=False)
def detect_anomaly(metrics: pd.DataFrame, alert_time: float, services: list[str]) -> Detection:
    return detect(Telemetry(metrics=metrics), alert_time=alert_time, services=services)


def detect_step(ctx: IncidentContext, report: CycleReport) -> tuple[Detection | None, pd.DataFrame]:
    """The detection of the cycle, and the metrics frame the analysis reuses."""
    step = report.begin("detect")
    if ctx.sources.metrics is None:
        report.end(step, "no metrics source configured for this environment: detection skipped")
        return None, pd.DataFrame({"time": []})
    plan = plan_metrics(ctx.sources.metrics, ctx.services(), ctx.metrics_window)
    results = run_batches({ctx.environment.name: plan}, step="detect", actor=ACTOR).get(ctx.environment.name, [])
    failed = [
        failure_line(item, result)
        for item, result in zip(plan, results, strict=True)
        if result.get("status") != "succeeded"
    ]
    report.collection.failures += failed
    report.collection.planned += len(plan)
    report.collection.succeeded += len(plan) - len(failed)
    report.collection.by_purpose["metrics"] = report.collection.by_purpose.get("metrics", 0) + len(plan) - len(failed)
    metrics = metrics_from_results(plan, results)
    try:
        # Checked here first: a frame with nothing in it is an outcome of the step, not a task run
        # that fails with a traceback in the log.
        Telemetry(metrics=metrics)
        detection = detect_anomaly(metrics, ctx.alert_time, ctx.services())
    except TelemetryError as exc:
        report.end(step, f"detection impossible: {exc}")
        return None, metrics
    report.detection = detection.model_dump(mode="json")
    verdict = "anomaly" if detection.is_anomaly else "no anomaly"
    report.end(
        step,
        f"{verdict} (score {detection.score:.2f}) from {metrics.shape[1] - 1} metrics of {len(plan) - len(failed)} "
        f"components; involved: {', '.join(detection.involved_services[:5]) or '-'}",
    )
    return detection, metrics
