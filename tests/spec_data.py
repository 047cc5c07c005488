"""The spec's example payloads, kept with the tests (copies of ``shared/spec``) so that the suite
runs wherever the repository is checked out."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
#: The 44 task JSON examples of the spec, parsed.
TASK_EXAMPLES = DATA / "task-examples.json"
#: An Alertmanager webhook (version 4) for the spec's first scenario.
ALERTMANAGER_SAMPLE = DATA / "alertmanager-webhook.json"
