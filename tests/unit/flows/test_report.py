"""The report says what happened: how far a cycle got while it runs, why nothing was ranked when
nothing was, who decided on a fix and whether that name was checked; the run is named after the
alert whichever way the alert reached it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flows.alerts import alert_event_payload, parse_alert_group
from flows.cycle import nothing_ranked, run_name_of
from flows.report import ApprovalWait, CycleReport, FixRecord, outcome_line, render_markdown
from models import FaultType, FixSuggestion, Hypothesis, Risk, Verification
from tests.spec_data import ALERTMANAGER_SAMPLE

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NOT_CONFIRMED = "no hypothesis passed verification"


def _report(**fields: object) -> CycleReport:
    return CycleReport(incident_id="0f1e2d3c-aaaa", alertname="HighLatency", environment="shop", starts_at=T0, **fields)


def _step(report: CycleReport, name: str, summary: str) -> None:
    step = report.begin(name)
    report.end(step, summary)


def _fix(**fields: object) -> FixRecord:
    suggestion = FixSuggestion(
        action="terminate_long_queries", description="end the stuck sessions",
        command={"type": "postgres", "command": "SELECT 1"}, confidence=0.8, risk=Risk.MEDIUM,
    )  # fmt: skip
    return FixRecord(suggestion=suggestion, **fields)  # type: ignore[arg-type]


def test_a_cycle_with_no_metrics_source_and_no_data_says_nothing_was_collected_and_why() -> None:
    report = _report()
    _step(report, "detect", "no metrics source configured for this environment: detection skipped")
    _step(report, "collect", "0 sources answered, 0 failed")
    report.stopped_because = "the analysis could not run: metrics: the frame has no rows"

    report.outcome, report.stopped_because = nothing_ranked(report)

    assert report.outcome == "nothing_collected"
    line = outcome_line(report)
    assert line.startswith("Nothing to analyse: nothing was planned for collection")
    markdown = render_markdown(report)
    assert "no metrics source configured" in line and NOT_CONFIRMED not in markdown
    assert "Nothing was planned for collection." in markdown and "| # | component |" not in markdown


def test_a_cycle_whose_sources_all_failed_names_the_failures() -> None:
    report = _report()
    report.collection.planned = 4
    report.collection.failures = ["metrics of db: failed: connection refused", "error logs: failed: no table"]

    report.outcome, report.stopped_because = nothing_ranked(report)

    assert report.outcome == "nothing_collected"
    assert "none of the 4 collection tasks returned data: metrics of db: failed: connection refused" in (
        outcome_line(report)
    )


def test_an_analysis_that_ranked_nothing_says_so_not_that_verification_failed() -> None:
    report = _report()
    report.collection.planned, report.collection.succeeded = 6, 5

    report.outcome, report.stopped_because = nothing_ranked(report)

    assert report.outcome == "no_hypothesis"
    assert outcome_line(report) == (
        "No hypothesis: the analysis ranked no candidate root cause (5 of 6 collection tasks returned data)"
    )
    assert NOT_CONFIRMED not in render_markdown(report)


def test_an_analysis_that_could_not_run_on_collected_data_gives_its_reason() -> None:
    report = _report(stopped_because="the analysis could not run: metrics: 12 samples are too few to analyse")
    report.collection.planned, report.collection.succeeded = 3, 3

    report.outcome, report.stopped_because = nothing_ranked(report)

    assert report.outcome == "no_hypothesis"
    assert "12 samples are too few" in outcome_line(report) and "3 of 3" in outcome_line(report)


def test_ranked_hypotheses_none_confirmed_keep_the_not_confirmed_line() -> None:
    hypothesis = Hypothesis(component="db", fault=FaultType.DB_POOL_EXHAUSTED, confidence=0.6)
    report = _report(
        outcome="root_cause_not_found",
        hypotheses=[hypothesis],
        verifications=[Verification(component="db", fault=FaultType.DB_POOL_EXHAUSTED, status="refuted", reason="ok")],
    )
    assert NOT_CONFIRMED in outcome_line(report)


@pytest.mark.parametrize(
    ("outcomes", "line"),
    [
        (0, "confidences: calibrated on generated systems, not yet on this one: read them as an order"),
        (1, "confidences: calibrated on 1 confirmed outcome of this system, beside generated ones"),
        (12, "confidences: calibrated on 12 confirmed outcomes of this system, beside generated ones"),
    ],
)
def test_the_ranking_says_what_its_confidences_are_calibrated_on(outcomes: int, line: str) -> None:
    hypothesis = Hypothesis(component="db", fault=FaultType.DB_POOL_EXHAUSTED, confidence=0.6)
    markdown = render_markdown(_report(hypotheses=[hypothesis], calibrated_on=outcomes)).splitlines()
    assert any(row.startswith(line) for row in markdown)
    # Nothing ranked, nothing to qualify.
    assert "confidences:" not in render_markdown(_report(calibrated_on=outcomes))


def test_a_report_published_while_the_fix_waits_says_how_to_answer() -> None:
    report = _report()
    _step(report, "suggest", "terminate_long_queries (medium, 0.80)")
    assert outcome_line(report) == "In progress: suggest done"
    report.awaiting_approval = ApprovalWait(
        action="terminate_long_queries", since=T0 + timedelta(minutes=2), timeout_seconds=900,
        instructions=["in the Prefect UI: http://ui/runs/flow-run/x", "with curl: curl -X POST http://gw/approve"],
    )  # fmt: skip

    markdown = render_markdown(report)

    assert "In progress: the fix **terminate_long_queries** waits for a person (since 10:02:00 UTC" in markdown
    assert "## Waiting for approval" in markdown
    assert "- in the Prefect UI: http://ui/runs/flow-run/x" in markdown and "- with curl: curl -X POST" in markdown


@pytest.mark.parametrize(
    ("fields", "expected", "unexpected"),
    [
        (
            {
                "decision": "approved",
                "decided_by": "mallory",
                "decided_through": "prefect-ui",
                "identity_verified": False,
            },
            "approved by mallory through the Prefect UI (**unverified**",
            None,
        ),
        (
            {"decision": "approved", "decided_by": "boss", "decided_through": "task-api", "identity_verified": True},
            "approved by boss through the task API.",
            "unverified",
        ),
        (
            {"decision": "rejected", "decided_by": "boss", "decided_through": "task-api", "identity_verified": True},
            "rejected by boss through the task API.",
            "unverified",
        ),
        (
            {
                "decision": "auto",
                "decided_by": "policy:auto-fix",
                "decided_through": "policy",
                "identity_verified": True,
            },
            "auto by policy:auto-fix through the auto-fix policy.",
            "unverified",
        ),
    ],
    ids=["ui-typed", "api-approved", "api-rejected", "auto"],
)
def test_the_fix_section_says_who_decided_through_what_and_whether_the_name_was_checked(
    fields: dict[str, object], expected: str, unexpected: str | None
) -> None:
    report = _report(outcome="fix_rejected", fix=_fix(**fields))
    markdown = render_markdown(report)
    assert expected in markdown
    if unexpected:
        assert unexpected not in markdown


def test_the_run_name_reads_the_alert_however_the_run_received_it() -> None:
    payload = json.loads(ALERTMANAGER_SAMPLE.read_text())
    group = parse_alert_group(payload)
    expected = f"rca-{group.alertname}-{group.service}".lower()
    as_the_trigger_sends_it = alert_event_payload(group)["alert"]

    assert run_name_of(group) == expected  # in-process: the AlertGroup itself
    assert run_name_of(as_the_trigger_sends_it) == expected  # a deployment run: its JSON, hydrated
    assert run_name_of(json.dumps(as_the_trigger_sends_it)) == expected  # the JSON left as text
    assert run_name_of({"not": "an alert"}) == run_name_of(None) == run_name_of("{") == "rca-alert-unknown"
