"""Fixtures for the cycle's integration tests: a fresh state folder per test (its model store empty,
so the cycle diagnoses with the model shipped in the package, as a fresh deployment does), the
Prefect server of the session, and private database servers for the incidents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import IncidentServers, PrivateMariaDB, PrivatePostgres


@pytest.fixture(scope="module")
def incident_servers() -> Iterator[IncidentServers]:
    """Servers of this module's own: on the machine's shared ones another test run would rewrite
    the telemetry tables under a cycle, and its stuck sessions would show in the process lists
    a cycle reads (a second run's fault ranked as this one's)."""
    with PrivatePostgres() as postgres, PrivateMariaDB() as mariadb:
        yield IncidentServers(postgres, mariadb)


@pytest.fixture
def cycle_env(prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state folder; short waits for approvals."""
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(state))
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_POLL_SECONDS", "1")
    monkeypatch.setenv("CLOUD_AGENT_FIX_SETTLE_SECONDS", "0.5")
    monkeypatch.setenv("CLOUD_AGENT_VERIFY_WINDOW_SECONDS", "0.5")
    monkeypatch.setenv("CLOUD_AGENT_DISPATCH", "in-process")
    return state
