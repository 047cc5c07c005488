"""Fixtures of the reliability suite.

Gateways come from the task API's tests (``gateway_factory``); cycles diagnose with the model
shipped in the package (the state folder's model store is empty). This file adds what only this
suite needs: a private PostgreSQL holding a demo incident's telemetry (shared by the suite's cycles,
so that no other test run rewrites its tables under them), the cycle's state folder, and the audit
log of a gateway's state folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from executors import AuditLog, open_audit_log
from gateway.demo.scenario import DemoIncident, prepared_incident
from tests.reliability.scenarios import CHECKED, table
from tests.servers import PrivatePostgres


@pytest.fixture(scope="session")
def telemetry_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of the suite's own for the demo incident's telemetry tables."""
    with PrivatePostgres() as server:
        yield server


@pytest.fixture(scope="session")
def demo_incident(
    telemetry_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoIncident]:
    """The "errors" scenario (a dependency answering 500), its telemetry on the private PostgreSQL.

    Its cycles need no approval (the fix needs Kubernetes, which the environment has no connection
    to), so many can run at once without anyone answering them.
    """
    with prepared_incident(
        "errors", tmp_path_factory.mktemp("incident"), postgres=telemetry_postgres.connection()
    ) as incident:
        yield incident


@pytest.fixture
def incident_config(demo_incident: DemoIncident, config_dir: Path) -> Path:
    """The test environments with ``local`` replaced by the incident's (telemetry, topology); the
    folder is this test's to edit. Returns ``local``'s folder."""
    local = config_dir / "local"
    shutil.copytree(demo_incident.config_dir / "local", local, dirs_exist_ok=True)
    return local


@pytest.fixture
def cycle_state(
    prefect_api: str,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The state folder; cycles run in this process, started by the webhook."""
    state = state_dir
    monkeypatch.setenv("CLOUD_AGENT_DISPATCH", "in-process")
    monkeypatch.setenv("CLOUD_AGENT_CYCLE_START", "in-process")
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_POLL_SECONDS", "1")
    return state


@pytest.fixture
def audit_of() -> Iterator[Callable[[Path], AuditLog]]:
    """``audit_of(state_dir)``: the audit log in a state folder, closed at the end of the test."""
    opened: list[AuditLog] = []

    def open_in(state: Path) -> AuditLog:
        log = open_audit_log(f"sqlite:///{state / 'audit.sqlite3'}")
        opened.append(log)
        return log

    yield open_in
    for log in opened:
        log.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The suite's table, as ``bench/reliability.py`` prints it, for the scenarios this session ran."""
    if CHECKED:
        terminalreporter.section("reliability and security (bounded sizes; bench/reliability.py for the issue's)")
        terminalreporter.write_line(table(CHECKED))
