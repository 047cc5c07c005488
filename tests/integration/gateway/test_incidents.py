"""``/api/v1/incidents/{flow_run_id}/approve`` and ``/reject`` against a paused fix step: the
approver's token name is recorded as a checked identity (report, outcome, the fix task's audit
records), a name typed in the Prefect UI is recorded as typed and unverified, and the report with
how to answer is published before the run waits and updated in place afterwards."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.runtime import flow_run

from executors import AuditEvent, AuditQuery, AuditRecord, open_audit_log
from flows.alerts import INCIDENT_FLOW, AlertGroup, parse_alert_group
from flows.artifacts import artifact_keys, publish
from flows.context import incident_context
from flows.fix import fix_step
from flows.report import CycleReport
from models import FaultType, FixSuggestion, Hypothesis, Risk
from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import APPROVER, OPERATOR
from tests.spec_data import ALERTMANAGER_SAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

CLI = Path(sys.executable).parent / "cloud-agent"


@flow(name=INCIDENT_FLOW, persist_result=False)
def fix_waiting_for_a_person(alert: AlertGroup, marker: str) -> dict[str, Any]:
    """The cycle's fix step on a made-up diagnosis whose fix is a harmless write (a file touched)."""
    ctx = incident_context(alert)
    report = CycleReport(
        incident_id=str(flow_run.id), alertname=alert.alertname, service=alert.service,
        environment=ctx.environment.name, starts_at=alert.starts_at, flow_run_url=flow_run.ui_url,
    )  # fmt: skip
    root = Hypothesis(component=alert.service or "app", fault=FaultType.DB_POOL_EXHAUSTED, confidence=0.95)
    fix = FixSuggestion(
        action="touch_marker", description="touch a file (stands for a fix)",
        command={"type": "shell", "command": f"touch {marker}"}, confidence=0.6, risk=Risk.MEDIUM,
    )  # fmt: skip
    report.hypotheses, report.fixes = [root], [fix]
    publish(report)
    fix_step(ctx, root, [fix], report)
    return publish(report)


@dataclass
class PausedRun:
    id: str
    marker: Path
    thread: threading.Thread
    result: dict[str, Any] = field(default_factory=dict)

    def report(self, timeout: float = 120.0) -> dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end after the answer"
        return self.result


@pytest.fixture
def incident_env(
    prefect_api: str, config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_POLL_SECONDS", "1")
    monkeypatch.setenv("CLOUD_AGENT_FIX_SETTLE_SECONDS", "0")
    monkeypatch.setenv("CLOUD_AGENT_DISPATCH", "in-process")
    monkeypatch.delenv("CLOUD_AGENT_PREFECT_UI_AUTHENTICATED", raising=False)
    yield


def start_paused(shared_dir: Path) -> PausedRun:
    """Start the flow in a thread; return once it waits for a person."""
    alert = parse_alert_group(json.loads(ALERTMANAGER_SAMPLE.read_text()))
    name = f"fix-test-{uuid.uuid4().hex[:10]}"
    marker = shared_dir / f"{name}.fixed"
    holder: dict[str, Any] = {}
    named = fix_waiting_for_a_person.with_options(flow_run_name=name)
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(lambda: holder.update(named(alert, str(marker))),))
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(any_=[name]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                ),
                limit=1,
            )
        if runs:
            return PausedRun(str(runs[0].id), marker, thread, holder)
        if not thread.is_alive():
            raise AssertionError(f"the run ended without pausing: {holder}")
        time.sleep(0.3)
    raise AssertionError("the fix step never paused for approval")


def artifacts(key: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def fix_records(state_dir: Path, marker: Path) -> list[AuditRecord]:
    log = open_audit_log(f"sqlite:///{state_dir / 'audit.sqlite3'}")
    try:
        records = log.query(AuditQuery(limit=1000))
    finally:
        log.close()
    return [r for r in records if r.command == f"touch {marker}"]


def request_records(state_dir: Path, run_id: str) -> list[AuditRecord]:
    log = open_audit_log(f"sqlite:///{state_dir / 'audit.sqlite3'}")
    try:
        return log.query(AuditQuery(task_id=run_id, event=AuditEvent.API_REQUEST.value))
    finally:
        log.close()


def test_an_approvers_token_approves_the_paused_fix_as_a_checked_identity(
    incident_env: None, gateway_factory: GatewayFactory, shared_dir: Path, state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    gateway = gateway_factory()
    caplog.set_level(logging.INFO, logger="cloud_agent.cycle")
    paused = start_paused(shared_dir)
    report_key, _ = artifact_keys(paused.id)

    # While it waits: one report artifact, already saying how to answer.
    [waiting] = artifacts(report_key)
    assert "## Waiting for approval" in waiting.data and "**touch_marker** waits for a person" in waiting.data
    assert f"/api/v1/incidents/{paused.id}/approve" in waiting.data
    progress = "\n".join(r.getMessage() for r in caplog.records if r.name == "cloud_agent.cycle")
    assert f"cloud-agent approve {paused.id}" in progress and f"incidents/{paused.id}/approve" in progress

    with gateway.http(OPERATOR) as http:
        assert http.post(f"/api/v1/incidents/{paused.id}/approve", json={}).status_code == 403
    with gateway.http() as http:
        assert http.post(f"/api/v1/incidents/{paused.id}/approve", json={}).status_code == 401
    with gateway.http(APPROVER) as http:
        answer = http.post(f"/api/v1/incidents/{paused.id}/approve", json={"reason": "stuck sessions, go"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "approved" and answer.json()["decided_by"] == "boss"

    report = paused.report()
    fix = report["fix"]
    assert (fix["decision"], fix["decided_by"], fix["decided_through"]) == ("approved", "boss", "task-api")
    assert fix["identity_verified"] is True and fix["reason"] == "stuck sessions, go"
    assert fix["result"]["status"] == "succeeded" and fix["result"]["approval_verified"] is True
    assert paused.marker.exists()  # the fix ran
    records = fix_records(state_dir, paused.marker)
    assert {r.event for r in records} == {AuditEvent.STARTED, AuditEvent.FINISHED}
    assert {(r.approved_by, r.approval_verified) for r in records} == {("boss", True)}
    [request] = [r for r in request_records(state_dir, paused.id) if r.status == "200"]
    assert request.actor == "boss" and request.command == f"POST /api/v1/incidents/{paused.id}/approve"

    # The same artifact, updated: no second one beside it.
    [final] = artifacts(report_key)
    assert final.id == waiting.id and "## Waiting for approval" not in final.data
    assert "approved by boss through the task API." in final.data and "unverified" not in final.data.split("## Fix")[1]

    with gateway.http(APPROVER) as http:
        again = http.post(f"/api/v1/incidents/{paused.id}/approve", json={})
        unknown = http.post(f"/api/v1/incidents/{uuid.uuid4()}/reject", json={})
        not_a_run = http.post("/api/v1/incidents/not-a-uuid/approve", json={})
    assert again.status_code == 409 and "not waiting for an approval" in again.json()["error"]["message"]
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "incident_not_found"
    assert not_a_run.status_code == 422


def test_a_rejection_from_the_cli_is_recorded_with_the_tokens_name_and_nothing_runs(
    incident_env: None, gateway_factory: GatewayFactory, shared_dir: Path
) -> None:
    gateway = gateway_factory()
    paused = start_paused(shared_dir)

    cli = subprocess.run(
        [str(CLI), "reject", paused.id, "--reason", "not during the sale", "--server", gateway.url],
        env={**os.environ, "CLOUD_AGENT_TOKEN": APPROVER}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert cli.returncode == 0, cli.stderr
    assert f"rejected by boss: incident {paused.id} resumes" in cli.stdout
    fix = paused.report()["fix"]
    assert (fix["decision"], fix["decided_by"], fix["identity_verified"]) == ("rejected", "boss", True)
    assert fix["reason"] == "not during the sale" and fix["result"] is None
    assert not paused.marker.exists()


def test_the_cli_without_a_token_or_with_a_viewers_says_so_in_one_line(incident_env: None, gateway: Gateway) -> None:
    run_id = str(uuid.uuid4())
    env = {k: v for k, v in os.environ.items() if k != "CLOUD_AGENT_TOKEN"}
    command = [str(CLI), "approve", run_id, "--server", gateway.url]
    no_token = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    operator = subprocess.run(
        command, env={**env, "CLOUD_AGENT_TOKEN": OPERATOR}, capture_output=True, text=True, timeout=120
    )
    assert no_token.returncode == 2 and "an approver's token is needed" in no_token.stderr
    assert operator.returncode == 3 and "403" in operator.stderr and len(operator.stderr.strip().splitlines()) == 1


def test_a_name_typed_in_the_prefect_ui_is_recorded_as_typed_and_unverified(
    incident_env: None, shared_dir: Path, state_dir: Path
) -> None:
    paused = start_paused(shared_dir)

    # What the Prefect UI's form sends.
    resume_flow_run(paused.id, run_input={"approve": True, "approver": "mallory", "comment": "trust me"})

    report = paused.report()
    fix = report["fix"]
    assert (fix["decision"], fix["decided_by"], fix["decided_through"]) == ("approved", "mallory", "prefect-ui")
    assert fix["identity_verified"] is False and fix["result"]["approval_verified"] is False
    assert paused.marker.exists()  # an approval is an approval; the record says whose name nobody checked
    assert {(r.approved_by, r.approval_verified) for r in fix_records(state_dir, paused.marker)} == {("mallory", False)}
    report_key, _ = artifact_keys(paused.id)
    [artifact] = artifacts(report_key)
    assert "approved by mallory through the Prefect UI (**unverified**" in artifact.data
