"""Fixtures for the cycle's integration tests: a trained model (cached per version of models/), a
fresh state folder per test, and the Prefect server of the session."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import flows._runtime
from models import ModelStore, default_ranker

MODELS_SOURCE = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="session")
def trained_model_dir() -> Path:
    """The cold-start model, trained once per version of the models' code on this machine."""
    return cold_start_model_dir()


def cold_start_model_dir() -> Path:
    """The folder of the cold-start model, trained if this version of ``models/`` has none yet.

    Training takes 15-30 s on 2 cores; it is deterministic, so a copy kept under the user's cache
    keyed by a digest of ``models/*.py`` is the same model (a code change makes a new key). The
    benchmarks use it too.
    """
    digest = hashlib.sha256()
    for source in sorted(MODELS_SOURCE.glob("*.py")):
        digest.update(source.read_bytes())
    cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cloud-agent-rca"
    folder = cache_root / f"cold-start-{digest.hexdigest()[:16]}"
    store = ModelStore(folder)
    if store.current_version() is None:
        default_ranker(store)
    return folder


@pytest.fixture
def cycle_env(
    prefect_api: str, trained_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh state folder holding a copy of the trained model; short waits for approvals."""
    state = tmp_path / "state"
    shutil.copytree(trained_model_dir, state / "models")
    monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(state))
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("CLOUD_AGENT_APPROVAL_POLL_SECONDS", "1")
    monkeypatch.setenv("CLOUD_AGENT_FIX_SETTLE_SECONDS", "0.5")
    monkeypatch.setenv("CLOUD_AGENT_DISPATCH", "in-process")
    flows._runtime.reset()
    yield state
    flows._runtime.reset()
