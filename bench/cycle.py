"""Alert to ranked root cause: the Prefect cycle versus a plain asyncio fan-out of the same work.

A demo incident (a real fault on the local PostgreSQL, simulated telemetry of its service graph)
is diagnosed twice per round:

* through ``rca-incident`` on a local Prefect server, timed from the flow's start to the end of
  its ``analyze`` step (verification, fixes and feedback come after the ranked root cause);
* by the same collection plans run with ``asyncio.gather`` over the bare engine, followed by the
  same ``detect`` and ``analyze`` calls, with no Prefect at all.

Target (issue 5): the cycle within 1.5x the plain fan-out plus a fixed 3 s.

    .venv/bin/python bench/cycle.py [--rounds 3] [--services 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def plain_fan_out(alert: Any) -> tuple[float, int, str]:
    """The same plans, run concurrently with asyncio over the bare engine; seconds, tasks, top."""
    from flows._models import current_model, outcome_store
    from flows.context import incident_context
    from flows.runtime import engine
    from models import Telemetry, analyze, detect
    from models.playbook.collection import (
        evidence_from_results,
        metrics_from_results,
        plan_evidence,
        plan_follow_ups,
    )

    started = time.perf_counter()
    ctx = incident_context(alert)

    def run_one(task: dict[str, Any]) -> dict[str, Any]:
        with engine() as agent:
            return agent.run(task, actor="bench:plain").model_dump(mode="json")

    async def run_all(plan: list[Any]) -> list[dict[str, Any]]:
        async def one(item: Any) -> dict[str, Any]:
            return await asyncio.to_thread(run_one, {**item.task, "agent_id": ctx.agent_id})

        return list(await asyncio.gather(*(one(item) for item in plan)))

    assert ctx.sources.metrics is not None
    from models.playbook.collection import plan_metrics

    metrics_plan = plan_metrics(ctx.sources.metrics, ctx.services(), ctx.window)
    metrics = metrics_from_results(metrics_plan, asyncio.run(run_all(metrics_plan)))
    detection = detect(Telemetry(metrics=metrics), alert_time=ctx.alert_time)
    evidence_plan = plan_evidence(ctx.sources, ctx.topology, list(detection.involved_services), ctx.window)
    evidence = evidence_from_results(evidence_plan, asyncio.run(run_all(evidence_plan)), ctx.topology)
    follow_ups = plan_follow_ups(ctx.sources, evidence.logs, ctx.window)
    if follow_ups:
        asyncio.run(run_all(follow_ups))
    analysis = analyze(
        Telemetry(metrics=metrics, logs=evidence.logs, traces=evidence.traces),
        topology=ctx.topology,
        observations=evidence.observations,
        alert_time=ctx.alert_time,
        model=current_model(),
        target=ctx.target,
        alert_service=ctx.alert_service,
        history=outcome_store().fix_history(),
    )
    top = analysis.hypotheses[0]
    tasks = len(metrics_plan) + len(evidence_plan) + len(follow_ups)
    return time.perf_counter() - started, tasks, f"{top.component}/{top.fault}"


def prefect_cycle(alert: Any) -> tuple[float, int, str]:
    """The cycle flow; seconds from its start to the end of its analyze step."""
    from flows.cycle import rca_incident

    report = rca_incident(alert)
    steps = {step["name"]: step for step in report["timeline"]}
    from datetime import datetime

    start = datetime.fromisoformat(report["timeline"][0]["started_at"])
    end = datetime.fromisoformat(steps["analyze"]["finished_at"])
    top = report["hypotheses"][0] if report["hypotheses"] else {}
    return (end - start).total_seconds(), report["collection"]["planned"], f"{top.get('component')}/{top.get('fault')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from gateway.demo.prefect_server import local_prefect_server
    from gateway.demo.scenario import prepared_incident

    workdir = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    os.environ["CLOUD_AGENT_STATE_DIR"] = str(workdir / "state")
    # No approval wait and no fix in the timed part: it ends at the ranked root cause anyway.
    os.environ["CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS"] = "1"
    with (
        local_prefect_server(workdir / "prefect") as api_url,
        prepared_incident("pool", workdir, seed=args.seed) as demo,
    ):
        os.environ["PREFECT_API_URL"] = api_url
        os.environ["CLOUD_AGENT_CONFIG_DIR"] = str(demo.config_dir)
        from flows._models import current_model
        from flows.alerts import parse_alert_group

        started = time.perf_counter()
        current_model()  # loaded once (the shipped one), outside the timings
        print(f"model loaded in {time.perf_counter() - started:.2f} s (not timed below)")
        group = parse_alert_group(demo.alert)
        plain, cycle = [], []
        for index in range(args.rounds):
            seconds, tasks, top = plain_fan_out(group)
            plain.append(seconds)
            print(f"round {index + 1}: plain asyncio fan-out {seconds:6.2f} s  {tasks} tasks  top {top}")
            fresh = group.model_copy(update={"groupKey": f"{group.groupKey}#{index}"})
            seconds, tasks, top = prefect_cycle(fresh)
            cycle.append(seconds)
            print(f"round {index + 1}: Prefect cycle         {seconds:6.2f} s  {tasks} tasks  top {top}")
        p, c = statistics.median(plain), statistics.median(cycle)
        print(
            f"\nalert to ranked root cause, median of {args.rounds}: cycle {c:.2f} s, plain fan-out {p:.2f} s, "
            f"ratio {c / p:.2f}x, budget 1.5x + 3 s = {1.5 * p + 3:.2f} s -> {'OK' if c <= 1.5 * p + 3 else 'OVER'}"
        )


if __name__ == "__main__":
    main()
