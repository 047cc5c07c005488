"""Without a Prefect server: tasks run on the engine, settings that need one are refused in one
line, and answering an incident starts nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import flows.prefect_internals
from executors import ConfigurationError
from gateway.settings import GatewaySettings
from tests.gateway_fixtures import GatewayFactory
from tests.identities import APPROVER, OPERATOR
from tests.spec_data import ALERTMANAGER_SAMPLE

API = "http://prefect.internal:4200/api"


def test_tasks_run_on_the_engine_without_a_prefect_api_and_as_task_runs_with_one() -> None:
    assert GatewaySettings().for_prefect_api(None).gateway_run_as == "engine"
    assert GatewaySettings().for_prefect_api(API).gateway_run_as == "task-run"
    assert GatewaySettings(gateway_run_as="engine").for_prefect_api(API).gateway_run_as == "engine"
    assert GatewaySettings(gateway_run_as="flow-run").for_prefect_api(API).gateway_run_as == "flow-run"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dispatch": "work-pool"}, "CLOUD_AGENT_DISPATCH=work-pool needs a Prefect server: set PREFECT_API_URL"),
        ({"gateway_run_as": "task-run"}, "CLOUD_AGENT_GATEWAY_RUN_AS=task-run needs a Prefect server"),
        (
            {"dispatch": "work-pool", "gateway_run_as": "flow-run"},
            "CLOUD_AGENT_DISPATCH=work-pool and CLOUD_AGENT_GATEWAY_RUN_AS=flow-run need a Prefect server",
        ),
    ],
)
def test_settings_that_need_a_prefect_server_are_refused_in_one_line(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as refused:
        GatewaySettings(**settings).for_prefect_api(None)  # type: ignore[arg-type]
    assert "\n" not in str(refused.value)
    GatewaySettings(**settings).for_prefect_api(API)  # type: ignore[arg-type]  # fine with one


@pytest.fixture
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process has no Prefect API (a session's test harness may have set one)."""
    monkeypatch.setattr(flows.prefect_internals, "configured_api_url", lambda: None)


def test_answering_an_unknown_incident_is_a_404_and_starts_no_prefect_server(
    no_prefect: None, gateway_factory: GatewayFactory, state_dir: Path
) -> None:
    gateway = gateway_factory()
    with gateway.http(APPROVER) as http:
        answer = http.post(f"/api/v1/incidents/{uuid.uuid4()}/approve", json={"reason": "x"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "incident_not_found"
    assert not (state_dir / "prefect" / "api-url").exists()


def test_an_alert_for_a_deployment_without_a_prefect_server_is_a_clear_503(
    no_prefect: None, gateway_factory: GatewayFactory, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "event")
    payload = json.loads(ALERTMANAGER_SAMPLE.read_text())
    with gateway_factory().http(OPERATOR) as http:
        answer = http.post("/api/v1/alerts", json=payload)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "cycle_unavailable"
    assert "CLOUD_AGENT_CYCLE_START=event needs a Prefect server" in answer.json()["error"]["message"]
    assert not (state_dir / "prefect").exists()


def test_the_incident_routes_are_documented_for_approvers(gateway_factory: GatewayFactory) -> None:
    with gateway_factory().http() as http:
        spec = http.get("/openapi.json").json()
    for verb in ("approve", "reject"):
        operation = spec["paths"][f"/api/v1/incidents/{{flow_run_id}}/{verb}"]["post"]
        assert operation["operationId"] == f"{verb}_incident"
        assert {"200", "401", "403", "404", "409", "503"} <= set(operation["responses"])
        assert operation["security"] == [{"HTTPBearer": []}]
