"""Fixtures for the cycle's integration tests: a fresh state folder per test (its model store empty,
so the cycle diagnoses with the model shipped in the package, as a fresh deployment does), and the
Prefect server of the session."""

from __future__ import annotations

from pathlib import Path

import pytest


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
