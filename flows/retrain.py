"""``retrain-model``: the scheduled retraining from fix outcomes (cron in ``prefect.yaml``).

A new model version is trained from simulated incidents plus every outcome stored since; it is
promoted only when it is not worse than the current one on a held-out set, and the previous
version is kept either way.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows._models import model_store, outcome_store
from models import retrain


@flow(name="retrain-model", persist_result=True, log_prints=True)
def retrain_model(simulated_cases: int = 300, seed: int = 0) -> dict[str, Any]:
    """Train a candidate model from simulated cases and stored outcomes; promote it if not worse."""
    report = retrain(model_store(), outcome_store(), simulated_cases=simulated_cases, seed=seed)
    create_markdown_artifact(
        key="retrain-model-report",
        markdown=report.to_markdown(),
        description=f"retraining: version {report.candidate_version} "
        f"{'promoted' if report.promoted else 'kept as a candidate'}",
    )
    return report.model_dump(mode="json")
