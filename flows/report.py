"""The record of one cycle, and the RCA report made from it (Prefect artifacts and the CLI)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from models import FixSuggestion, Hypothesis, Verification, calibration_note

#: One line per step as the cycle goes (the demo and the CLI show them as progress).
progress = logging.getLogger("cloud_agent.cycle")

CycleOutcome = Literal[
    #: The cycle is still running (a report published on the way).
    "in_progress",
    "no_anomaly",
    "duplicate",
    #: No data reached the analysis (``stopped_because`` says why).
    "nothing_collected",
    #: The analysis ranked nothing, or could not run on what was collected.
    "no_hypothesis",
    #: Hypotheses were ranked, none passed verification.
    "root_cause_not_found",
    "requires_manual_review",
    "fix_rejected",
    "fix_timed_out",
    "fixed",
    "fix_failed",
]


class Step(BaseModel):
    name: str
    started_at: datetime
    finished_at: datetime | None = None
    summary: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()


class CollectionSummary(BaseModel):
    planned: int = 0
    succeeded: int = 0
    #: One line per source that failed; the cycle went on without it.
    failures: list[str] = Field(default_factory=list)
    by_purpose: dict[str, int] = Field(default_factory=dict)
    follow_ups: list[str] = Field(default_factory=list)


class FixRecord(BaseModel):
    suggestion: FixSuggestion
    #: How it was decided: by itself (low risk, high confidence) or by a person.
    decision: Literal["auto", "approved", "rejected", "timed_out", "not_runnable"]
    decided_by: str | None = None
    #: Where the decision came from: the auto-fix policy, the task API, the Prefect UI's form.
    decided_through: Literal["policy", "task-api", "prefect-ui"] | None = None
    #: Whether the system checked ``decided_by`` (``False``: a name typed in the Prefect UI).
    identity_verified: bool | None = None
    reason: str = ""
    result: dict[str, Any] | None = None
    worked: bool | None = None
    verification: str = ""


class ApprovalWait(BaseModel):
    """A fix waiting for a person: what, since when, until when, and how to answer."""

    action: str
    since: datetime
    timeout_seconds: int
    #: Where and how to approve or reject, one line each.
    instructions: list[str] = Field(default_factory=list)


class CycleReport(BaseModel):
    """Everything a person needs to understand an incident run, step by step."""

    incident_id: str
    alertname: str
    service: str | None = None
    environment: str
    summary: str = ""
    group_key: str = ""
    starts_at: datetime
    flow_run_url: str | None = None
    outcome: CycleOutcome = "in_progress"
    #: Why the cycle stopped before ranking anything, in a sentence.
    stopped_because: str = ""
    detection: dict[str, Any] = Field(default_factory=dict)
    timeline: list[Step] = Field(default_factory=list)
    collection: CollectionSummary = Field(default_factory=CollectionSummary)
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    #: Confirmed outcomes of this system the ranker's confidences are calibrated on (None: not ranked).
    calibrated_on: int | None = None
    verifications: list[Verification] = Field(default_factory=list)
    fixes: list[FixSuggestion] = Field(default_factory=list)
    fix: FixRecord | None = None
    #: Set while the fix waits for a person.
    awaiting_approval: ApprovalWait | None = None
    reanalysis: list[Hypothesis] = Field(default_factory=list)
    #: Views of other analysers (the LLM's), shown beside the ranker's.
    other_views: dict[str, list[Hypothesis]] = Field(default_factory=dict)
    #: What each other analyser did and where it disagrees with the ranker, one line each.
    other_view_notes: dict[str, list[str]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    #: Where this report is published (artifact ids by key), so that publishing again updates it.
    _published: dict[str, Any] = PrivateAttr(default_factory=dict)

    def begin(self, name: str) -> Step:
        step = Step(name=name, started_at=datetime.now(UTC))
        self.timeline.append(step)
        progress.info("%s ...", name)
        return step

    @staticmethod
    def end(step: Step, summary: str) -> None:
        step.finished_at = datetime.now(UTC)
        step.summary = summary
        progress.info("%s: %s", step.name, summary)

    @property
    def root_cause(self) -> Hypothesis | None:
        confirmed = [h for h in self.hypotheses if self.verification_of(h) == "confirmed"]
        return confirmed[0] if confirmed else (self.hypotheses[0] if self.hypotheses else None)

    def verification_of(self, hypothesis: Hypothesis) -> str | None:
        for verification in self.verifications:
            if verification.component == hypothesis.component and verification.fault == hypothesis.fault:
                return verification.status
        return None


def hypotheses_table(report: CycleReport, limit: int = 10) -> list[dict[str, Any]]:
    """Rows of the ranked-hypotheses table artifact."""
    return [
        {
            "rank": index,
            "component": h.component,
            "fault": str(h.fault),
            "confidence": round(h.confidence, 3),
            "verification": report.verification_of(h) or "not run",
            "proposed_by": ", ".join(h.proposed_by),
            "evidence": "; ".join(e.summary for e in h.evidence[:3]),
        }
        for index, h in enumerate(report.hypotheses[:limit], start=1)
    ]


_OUTCOME_LINE = {
    "in_progress": "In progress.",
    "no_anomaly": "No anomaly: the alert's metrics show no significant change.",
    "duplicate": "Duplicate: another run is already handling this alert group.",
    "nothing_collected": "Nothing to analyse: no data reached the analysis.",
    "no_hypothesis": "No hypothesis: the analysis ranked no candidate root cause.",
    "root_cause_not_found": "Root cause not confirmed: no hypothesis passed verification.",
    "requires_manual_review": "Root cause found; the fix needs a person.",
    "fix_rejected": "Root cause found; the fix was rejected by a person.",
    "fix_timed_out": "Root cause found; nobody approved the fix in time, so it was not applied.",
    "fixed": "Root cause found and fixed; the fix was verified.",
    "fix_failed": "Root cause found; the fix did not resolve it (re-analysed below).",
}


_NO_HYPOTHESIS = {
    "no_hypothesis": "None: the analysis ranked no hypothesis.",
    "nothing_collected": "None: no data reached the analysis.",
}


def outcome_line(report: CycleReport) -> str:
    """The report's first sentence: how the cycle ended (or how far it got), and why."""
    if report.outcome == "in_progress":
        if report.awaiting_approval is not None:
            wait = report.awaiting_approval
            return (
                f"In progress: the fix **{wait.action}** waits for a person (since {wait.since:%H:%M:%S} UTC, "
                f"for up to {wait.timeout_seconds} s; how to answer is below)."
            )
        if not report.timeline:
            return "In progress: starting …"
        last = report.timeline[-1]
        return f"In progress: {last.name} {'done' if last.finished_at else '…'}"
    line = _OUTCOME_LINE[report.outcome]
    if report.stopped_because and report.outcome in ("nothing_collected", "no_hypothesis"):
        line = f"{line.split(':')[0]}: {report.stopped_because}"
    return line


def render_markdown(report: CycleReport) -> str:
    """The RCA report as Markdown (the Prefect UI renders it as an artifact)."""
    lines = [
        f"# RCA: {report.alertname} on {report.service or 'unknown service'} ({report.environment})",
        "",
        f"**Outcome:** {outcome_line(report)}",
        "",
        f"- Alert: {report.summary or report.alertname} — started {report.starts_at:%Y-%m-%d %H:%M:%S} UTC",
        f"- Incident: `{report.incident_id}`"
        + (f" — [flow run]({report.flow_run_url})" if report.flow_run_url else ""),
    ]
    root = report.root_cause
    if root is not None:
        lines.append(
            f"- **Root cause:** `{root.component}` — {root.fault} (confidence {root.confidence:.2f}, "
            f"verification: {report.verification_of(root) or 'not run'})"
        )
    if report.detection:
        detection = report.detection
        when = detection.get("change_point")
        when_text = datetime.fromtimestamp(when, UTC).strftime("%H:%M:%S") if isinstance(when, int | float) else "?"
        lines += [
            "",
            "## Detection",
            f"Anomaly: **{'yes' if detection.get('is_anomaly') else 'no'}** (score {detection.get('score', 0):.2f}), "
            f"since {when_text} UTC; involved: {', '.join(detection.get('involved_services', [])[:8]) or '-'}",
        ]
    lines += ["", "## Timeline", "| step | started (UTC) | seconds | what happened |", "|---|---|---|---|"]
    for step in report.timeline:
        seconds = f"{step.seconds:.1f}" if step.seconds is not None else "…"
        lines.append(f"| {step.name} | {step.started_at:%H:%M:%S} | {seconds} | {_cell(step.summary)} |")
    collection = report.collection
    lines += [
        "",
        "## Collection",
        (
            f"{collection.succeeded} of {collection.planned} tasks returned data "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(collection.by_purpose.items())) or 'none'})."
            if collection.planned
            else "Nothing was planned for collection."
        ),
    ]
    if collection.follow_ups:
        lines.append("Follow-ups (cross-source chain): " + "; ".join(collection.follow_ups))
    if collection.failures:
        lines.append("Sources that failed (the cycle went on without them):")
        lines += [f"- {failure}" for failure in collection.failures]
    lines += ["", "## Ranked hypotheses"]
    if report.hypotheses:
        lines += ["| # | component | fault | confidence | verification | proposed by |", "|---|---|---|---|---|---|"]
    elif report.outcome != "in_progress":
        lines.append(_NO_HYPOTHESIS.get(report.outcome, "None: the cycle stopped before the analysis."))
    for row in hypotheses_table(report):
        lines.append(
            f"| {row['rank']} | {row['component']} | {row['fault']} | {row['confidence']:.2f} | "
            f"{row['verification']} | {row['proposed_by']} |"
        )
    if report.hypotheses and report.calibrated_on is not None:
        lines += ["", calibration_note(report.calibrated_on)]
    for hypothesis in report.hypotheses[:3]:
        lines += ["", f"### {hypothesis.component} — {hypothesis.fault} ({hypothesis.confidence:.2f})"]
        lines += [f"- [{e.kind}] {e.summary}" for e in hypothesis.evidence[:6]]
    if report.other_views or report.other_view_notes:
        lines += ["", "## Other analysers"]
        for analyser in dict.fromkeys([*report.other_views, *report.other_view_notes]):
            view = report.other_views.get(analyser, [])
            lines.append(
                f"**{analyser}:** "
                + ("; ".join(f"{h.component}/{h.fault} ({h.confidence:.2f})" for h in view[:5]) or "no opinion")
            )
            notes = report.other_view_notes.get(analyser, [])
            if notes:
                lines += ["", *(f"- {_cell(note)}" for note in notes), ""]
    if report.verifications:
        lines += ["", "## Verification"]
        lines += [f"- `{v.component}` {v.fault}: **{v.status}** — {v.reason}" for v in report.verifications]
    if report.fixes:
        lines += [
            "",
            "## Fix suggestions",
            "| action | risk | confidence | runnable | command |",
            "|---|---|---|---|---|",
        ]
        for suggestion in report.fixes:
            command = suggestion.command.get("command") or suggestion.command.get("params", {})
            lines.append(
                f"| {suggestion.action} | {suggestion.risk} | {suggestion.confidence:.2f} "
                f"| {'yes' if suggestion.runnable else 'no'} "
                f"| `{_cell(str(command))[:120]}` |"
            )
    if report.awaiting_approval is not None:
        wait = report.awaiting_approval
        lines += ["", "## Waiting for approval", f"The fix **{wait.action}** runs only if a person approves it:"]
        lines += [f"- {_cell(line)}" for line in wait.instructions]
    if report.fix is not None:
        fix = report.fix
        lines += [
            "",
            "## Fix",
            f"- **{fix.suggestion.action}** ({fix.suggestion.risk} risk): "
            f"{fix.decision}{_decided_by(fix)}. {fix.reason}".rstrip(),
        ]
        if fix.result is not None:
            error = fix.result.get("error") or {}
            lines.append(f"- Execution: {fix.result.get('status')}" + (f" — {error.get('message')}" if error else ""))
        if fix.worked is not None:
            lines.append(f"- After the fix: **{'resolved' if fix.worked else 'not resolved'}** — {fix.verification}")
    if report.reanalysis:
        lines += ["", "## Second analysis (after the failed fix)"]
        lines += [f"- {h.component} — {h.fault} ({h.confidence:.2f})" for h in report.reanalysis[:5]]
    if report.notes:
        lines += ["", "## Notes"] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


_THROUGH = {"policy": "the auto-fix policy", "task-api": "the task API", "prefect-ui": "the Prefect UI"}


def _decided_by(fix: FixRecord) -> str:
    if not fix.decided_by:
        return ""
    text = f" by {fix.decided_by}"
    if fix.decided_through is not None:
        text += f" through {_THROUGH[fix.decided_through]}"
    if fix.identity_verified is False:
        text += " (**unverified**: a name typed in a form nobody logged in to)"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
