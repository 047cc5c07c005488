"""The RCA report in the Prefect UI, published while the cycle runs.

Two artifacts per run under stable keys, ``rca-<run>-report`` (Markdown) and
``rca-<run>-hypotheses`` (a table): created the first time the cycle publishes and updated in
place afterwards — after the analysis and verification, before the fix waits for a person, after
the fix and at the end — so the page someone opens while the run waits for approval already shows
the diagnosis, and becomes the complete report without a second artifact beside it.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactUpdate

from flows.report import CycleReport, hypotheses_table, render_markdown


def artifact_keys(incident_id: str) -> tuple[str, str]:
    """The keys of an incident's report and table artifacts (lowercase letters, digits, dashes)."""
    key = f"rca-{incident_id[:8]}".lower()
    return f"{key}-report", f"{key}-hypotheses"


def publish(report: CycleReport) -> dict[str, Any]:
    """Create or update the report's artifacts; the report as JSON (the flow's result).

    A Prefect API that refuses the artifact costs the UI its page, not the cycle its result: the
    failure is logged and the cycle goes on.
    """
    markdown_key, table_key = artifact_keys(report.incident_id)
    try:
        _put(report, markdown_key, render_markdown(report), f"RCA report: {report.alertname}")
        rows = hypotheses_table(report)
        if rows:
            _put(report, table_key, rows, "Ranked root-cause hypotheses")
    except Exception as exc:
        get_run_logger().warning("could not publish the RCA report artifacts: %s: %s", type(exc).__name__, exc)
    return report.model_dump(mode="json")


def _put(report: CycleReport, key: str, content: str | list[dict[str, Any]], description: str) -> None:
    published = report._published
    if key in published:
        data = content if isinstance(content, str) else json.dumps(content)
        with get_client(sync_client=True) as client:
            client.update_artifact(published[key], ArtifactUpdate(data=data, description=description))
        return
    if isinstance(content, str):
        published[key] = create_markdown_artifact(markdown=content, key=key, description=description)
    else:
        published[key] = create_table_artifact(table=content, key=key, description=description)
