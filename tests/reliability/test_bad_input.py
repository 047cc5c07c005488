"""Bad input: malformed and hostile task JSON, alert payloads and WebSocket messages, and output that
is not text or is huge. Each gets a specific 4xx or a clear error, never a 500 or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import OPERATOR, TOKENS, VIEWER
from tests.reliability import corpus, scenarios
from tests.servers import ServedGateway

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    # An alert the webhook accepts would start a cycle by a Prefect event: none is accepted here
    # but the resolved one, which starts nothing.
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "event")
    return gateway_factory(gateway_run_as="engine")


def test_hostile_task_requests_get_specific_errors(gateway: Gateway) -> None:
    outcome = scenarios.hostile_requests(gateway.url, OPERATOR, corpus.HOSTILE_TASKS, scenario="bad input: tasks")

    scenarios.check(outcome)


def test_hostile_alert_payloads_get_specific_errors(gateway: Gateway) -> None:
    outcome = scenarios.hostile_requests(gateway.url, OPERATOR, corpus.hostile_alerts(), scenario="bad input: alerts")

    scenarios.check(outcome)


def test_hostile_websocket_messages_are_answered(gateway: Gateway) -> None:
    outcome = scenarios.hostile_websocket(gateway.url, VIEWER, corpus.HOSTILE_WS_MESSAGES)

    scenarios.check(outcome)


def test_binary_and_non_utf8_output_comes_back_as_json(gateway: Gateway) -> None:
    outcome = scenarios.hostile_output(gateway.url, OPERATOR, corpus.HOSTILE_OUTPUT)

    scenarios.check(outcome)


@pytest.mark.slow
def test_100_mb_of_output_keeps_the_gateways_memory_bounded(config_dir: Path, state_dir: Path, tmp_path: Path) -> None:
    env = {"CLOUD_AGENT_TOKENS": TOKENS, "CLOUD_AGENT_GATEWAY_RUN_AS": "engine",
           "CLOUD_AGENT_CONFIG_DIR": str(config_dir), "CLOUD_AGENT_STATE_DIR": str(state_dir)}  # fmt: skip
    with ServedGateway(env, tmp_path / "gateway.log") as served:
        outcome = scenarios.huge_output(served.url, OPERATOR, served)

    scenarios.check(outcome)
