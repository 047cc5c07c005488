"""Step 4, verification: run each likely hypothesis' verification tasks and confirm or refute it."""

from __future__ import annotations

import time

from contract import PlannedTask
from flows.context import ACTOR, IncidentContext
from flows.dispatch import run_batches
from flows.report import CycleReport
from flows.runtime import settings
from models import Hypothesis, Verification, interpret_verification, verification_tasks
from models.playbook import windowed

#: Hypotheses verified at most per cycle (the top one is always among them).
MAX_VERIFIED = 3


def verify_step(
    ctx: IncidentContext, hypotheses: list[Hypothesis], report: CycleReport, *, name: str = "verify"
) -> list[Verification]:
    step = report.begin(name)
    threshold = settings().verify_threshold
    chosen = [h for index, h in enumerate(hypotheses) if index == 0 or h.confidence >= threshold][:MAX_VERIFIED]
    plans = {id(h): _plan(ctx, h) for h in chosen}
    batch = [item for h in chosen for item in plans[id(h)]]
    environment = ctx.environment.name
    results = run_batches({environment: batch}, step=name, actor=ACTOR).get(environment, [])
    # Counters (a cache's evictions, hits, misses) are read over a window of this incident, never
    # over the server's lifetime: the tasks that read them run a second time, and the first look
    # becomes the baseline of the second.
    baseline: list[dict] = []
    again = [index for index, item in enumerate(batch) if windowed(item.task)]
    if again and len(results) == len(batch):
        time.sleep(settings().verify_window_seconds)
        second = run_batches({environment: [batch[i] for i in again]}, step=f"{name}-again", actor=ACTOR)
        baseline = [results[i] for i in again]
        for index, result in zip(again, second.get(environment, []), strict=False):
            results[index] = result
    verifications = []
    offset = 0
    for hypothesis in chosen:
        count = len(plans[id(hypothesis)])
        verifications.append(
            interpret_verification(hypothesis, results[offset : offset + count], ctx.target, baseline=baseline)
        )
        offset += count
    report.verifications = verifications
    report.hypotheses = rerank(hypotheses, verifications)
    report.end(step, "; ".join(f"{v.component}/{v.fault}: {v.status}" for v in verifications) or "nothing to verify")
    return verifications


def _plan(ctx: IncidentContext, hypothesis: Hypothesis) -> list[PlannedTask]:
    return [
        PlannedTask(
            label=f"verify {hypothesis.fault} of {hypothesis.component}: {_short(task)}",
            purpose="verification",
            service=hypothesis.component,
            task=task,
        )
        for task in verification_tasks(hypothesis, ctx.target)
    ]


def rerank(hypotheses: list[Hypothesis], verifications: list[Verification]) -> list[Hypothesis]:
    """Confirmed first, refuted last; the ranker's order inside each group."""
    status = {(v.component, v.fault): v.status for v in verifications}
    order = {"confirmed": 0, "inconclusive": 1, None: 1, "refuted": 2}
    ranked = sorted(hypotheses, key=lambda h: order.get(status.get((h.component, h.fault)), 1))
    return [h.model_copy(update={"rank": index}) for index, h in enumerate(ranked, start=1)]


def _short(task: dict) -> str:
    text = str(task.get("command") or task.get("params", {}).get("url") or task.get("type"))
    return text if len(text) <= 40 else text[:37] + "..."
