"""The example monitoring files are valid for the tools that read them, and the private stack built
from them scrapes every exporter with the labels the agent reads."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import yaml

from models.playbook.collection import TelemetrySources
from tests.integration.monitoring import (
    BINARIES,
    EXAMPLES,
    MonitoringStack,
    WebhookReceiver,
    missing_binaries,
    scaled,
)
from tests.servers import PrivateRedis

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _packages() -> None:
    missing = missing_binaries()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (.ci/run installs Debian's prometheus packages)")


def _check(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=EXAMPLES / "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_and_amtool_accept_the_example_files() -> None:
    assert "SUCCESS: 14 rules found" in _check(BINARIES["promtool"], "check", "rules", "rules.yml")
    assert "is valid prometheus config file" in _check(BINARIES["promtool"], "check", "config", "prometheus.yml")
    assert "SUCCESS" in _check("amtool", "check-config", "alertmanager.yml")


def test_the_scaled_rules_the_tests_run_are_valid_too(tmp_path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(scaled((EXAMPLES / "prometheus" / "rules.yml").read_text()))
    assert "SUCCESS: 14 rules found" in _check(BINARIES["promtool"], "check", "rules", str(rules))
    durations = {rule["for"] for group in yaml.safe_load(rules.read_text())["groups"] for rule in group["rules"]}
    assert durations == {"4s", "8s", "20s", "40s", "60s"}


def test_the_exporters_environment_is_a_telemetry_section_the_cycle_reads() -> None:
    environment = yaml.safe_load((EXAMPLES / "exporters" / "environment.yaml").read_text())
    sources = TelemetrySources.model_validate(environment["telemetry"])
    assert sources.metrics is not None and sources.metrics.type == "prometheus"
    assert all("{service}" in query for query in sources.metrics.queries.values())


@pytest.fixture(scope="module")
def stack() -> Iterator[MonitoringStack]:
    receiver = WebhookReceiver()
    try:
        with PrivateRedis() as cache, MonitoringStack(webhook_url=receiver.url, redis_url=cache.url()) as running:
            running.wait_scraping()
            yield running
    finally:
        receiver.close()


def test_every_exporter_is_scraped_with_the_service_and_env_labels(stack: MonitoringStack) -> None:
    up = {(s["metric"]["job"], s["metric"]["service"], s["metric"]["env"]) for s in stack.prometheus.query("up == 1")}
    assert up == {
        ("postgres", "orders-db", "exporters"),
        ("redis", "session-cache", "exporters"),
        ("mysqld", "ledger-db", "exporters"),
        ("node", "host", "exporters"),
        ("services", "checkout", "exporters"),
    }
    # the series the environment's queries read are there, under the component's name
    for promql in (
        'pg_settings_max_connections{service="orders-db"}',
        'redis_connected_clients{service="session-cache"}',
        'mysql_global_variables_max_connections{service="ledger-db"}',
        'node_cpu_seconds_total{service="host", mode="idle"}',
        'http_requests_total{service="checkout"}',
    ):
        assert stack.prometheus.query(promql), promql
