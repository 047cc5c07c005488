"""``retrain-model``: the scheduled retraining from fix outcomes (cron in ``prefect.yaml``).

A new model version is trained from generated incidents plus every outcome stored since; it is
promoted only when it passes the leave-one-generator-out gate (``models.learning._retrain``), and
the previous version is kept either way.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows._models import model_store, outcome_store
from models import COLD_START_CASES, COLD_START_SEED, retrain


@flow(name="retrain-model", persist_result=True, log_prints=True)
def retrain_model(cases: int = COLD_START_CASES, seed: int = COLD_START_SEED) -> dict[str, Any]:
    """Train a candidate from generated incidents and stored outcomes; promote it if it passes the gate."""
    report = retrain(model_store(), outcome_store(), cases=cases, seed=seed, n_jobs=2)
    create_markdown_artifact(
        key="retrain-model-report",
        markdown=report.to_markdown(),
        description=f"retraining: version {report.candidate_version} "
        f"{'promoted' if report.promoted else 'kept as a candidate'}",
    )
    return report.model_dump(mode="json")
