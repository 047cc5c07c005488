"""``POST /api/v1/alerts``: Alertmanager's webhook starts one cycle per alert group."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.alerts import parse_alert_group
from flows.intake import wait_for_cycles
from tests.gateway_fixtures import GatewayFactory
from tests.identities import OPERATOR, VIEWER
from tests.spec_data import ALERTMANAGER_SAMPLE

SAMPLE = ALERTMANAGER_SAMPLE


def sample(group_key: str) -> dict[str, Any]:
    payload = json.loads(SAMPLE.read_text())
    payload["groupKey"] = group_key
    return payload


def test_bad_payloads_get_a_specific_4xx(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory()
    with gateway.http(OPERATOR) as http:
        not_alertmanager = http.post("/api/v1/alerts", json={"version": "4", "status": "firing"})
        wrong_type = http.post("/api/v1/alerts", json=[1, 2, 3])
        not_json = http.post(
            "/api/v1/alerts", content=b"\xff\xfe garbage", headers={"Content-Type": "application/json"}
        )
    assert not_alertmanager.status_code == 422
    assert "not an Alertmanager v4 webhook" in not_alertmanager.json()["error"]["message"]
    assert wrong_type.status_code == 422 and not_json.status_code in (400, 422)
    with gateway.http(VIEWER) as http:
        assert http.post("/api/v1/alerts", json=sample("g")).status_code == 403  # a viewer cannot start cycles
    with gateway.http() as http:
        assert http.post("/api/v1/alerts", json=sample("g")).status_code == 401


def test_a_resolved_group_is_acknowledged_and_ignored(gateway_factory: GatewayFactory) -> None:
    payload = sample("resolved-group")
    payload["status"] = "resolved"
    for alert in payload["alerts"]:
        alert["status"] = "resolved"
    with gateway_factory().http(OPERATOR) as http:
        answer = http.post("/api/v1/alerts", json=payload)
    assert answer.status_code == 202 and answer.json()["status"] == "ignored"


@pytest.mark.integration
@pytest.mark.prefect
def test_one_cycle_per_alert_group_while_it_runs(
    prefect_api: str, gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "in-process")
    payload = sample(f'{{}}:{{alertname="HighP99Latency", service="payment-service"}}-{time.time()}')
    another = sample(f"another-group-{time.time()}")
    group = parse_alert_group(payload)
    with gateway_factory().http(OPERATOR) as http:
        first = http.post("/api/v1/alerts", json=payload)
        second = http.post("/api/v1/alerts", json=payload)
        other = http.post("/api/v1/alerts", json=another)

    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert first.json()["started_by"] == "in-process"
    assert second.status_code == 202 and second.json()["status"] == "duplicate"
    assert other.json()["status"] == "accepted"
    assert wait_for_cycles(timeout=120)
    run = _finished_run(group.group_tag)
    assert run.state is not None and run.state.is_completed()
    assert _finished_run(parse_alert_group(another).group_tag).state.is_completed()


def _finished_run(tag: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])), limit=5)
        done = [run for run in runs if run.state is not None and run.state.is_final()]
        if done:
            return done[0]
        time.sleep(0.5)
    raise AssertionError("the cycle started by the webhook did not finish")
