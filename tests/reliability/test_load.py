"""Load: many tasks and many incident cycles at once through the API; nothing lost, nothing twice.

The task load runs at the issue's size (1000 tasks, 3 agents, 50 clients) on the bare engine, and
at a tenth of it through Prefect task runs (the default dispatch, ~10x slower on this machine).
The cycle load runs 4 cycles at once here; ``bench/reliability.py`` runs the issue's 50.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from executors import AuditLog
from gateway.demo.scenario import DemoIncident
from tests.gateway_fixtures import GatewayFactory
from tests.identities import OPERATOR
from tests.reliability import scenarios

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

AGENTS = ["agent-local-001", "agent-prod-001", "agent-staging-001"]
#: Cycles at once in CI (the benchmark's full run: 50).
CI_CYCLES = 4


def test_1000_tasks_from_50_clients_each_end_once(
    gateway_factory: GatewayFactory, state_dir: Path, audit_of: Callable[[Path], AuditLog]
) -> None:
    gateway = gateway_factory(gateway_run_as="engine", queue_per_agent=200)

    outcome = scenarios.task_load(gateway.url, OPERATOR, AGENTS, audit_of(state_dir), tasks=1000, clients=50)
    outcome.scenario += " (engine)"

    scenarios.check(outcome)
    print(outcome.figures)


def test_tasks_dispatched_as_prefect_task_runs_each_end_once(
    prefect_api: str, gateway_factory: GatewayFactory, state_dir: Path, audit_of: Callable[[Path], AuditLog]
) -> None:
    gateway = gateway_factory(gateway_run_as="task-run")

    outcome = scenarios.task_load(gateway.url, OPERATOR, AGENTS, audit_of(state_dir), tasks=100, clients=10)
    outcome.scenario += " (task-run)"

    scenarios.check(outcome)


def test_concurrent_cycles_each_run_once_and_report(
    cycle_state: Path,
    incident_config: Path,
    demo_incident: DemoIncident,
    gateway_factory: GatewayFactory,
    audit_of: Callable[[Path], AuditLog],
) -> None:
    gateway = gateway_factory(gateway_run_as="engine")

    outcome = scenarios.cycle_load(
        gateway.url, OPERATOR, demo_incident.alert, audit_of(cycle_state), cycles=CI_CYCLES, timeout=150
    )

    scenarios.check(outcome)
    print(outcome.figures)
