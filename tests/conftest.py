"""Shared fixtures: an isolated state folder, test environments pointing at the local servers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Prefect: no telemetry (no internet here), and a private Prefect home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))

import pytest

from executors import CloudAgent, EnvironmentCatalog, open_audit_log
from tests.environments import write_test_environments

# A task API server per test, for the gateway's tests (unit and integration) and the reliability suite.
from tests.gateway_fixtures import gateway, gateway_factory  # noqa: F401


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect server for the whole session (starting one costs ~10 s): its API URL.

    Flows and tasks run against it; worker subprocesses started by tests get the URL through
    ``PREFECT_API_URL``. Use ``task.fn(...)`` for logic-only tests instead of this fixture.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(state))
    return state


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder a shell read task can see: read tasks run sandboxed as an unprivileged user with a
    private /tmp, so a file they read must live elsewhere and be readable by everyone."""
    folder = Path(tempfile.mkdtemp(prefix="ca-test-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environments ``local``, ``prod`` (agent-prod-001) and ``staging``, all on local servers."""
    folder = write_test_environments(tmp_path / "deployments")
    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def agent(config_dir: Path, state_dir: Path) -> Iterator[CloudAgent]:
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'audit.sqlite3'}")) as running:
        yield running
