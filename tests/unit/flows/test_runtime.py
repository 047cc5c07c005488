"""The process's settings and engine follow its ``CLOUD_AGENT_*`` variables (``flows._runtime``):
a test or a process that sets them needs no reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import _runtime


def test_the_settings_are_read_once_while_the_variables_stay(config_dir: Path, state_dir: Path) -> None:
    assert _runtime.settings() is _runtime.settings()
    assert _runtime.cloud_agent() is _runtime.cloud_agent()


def test_changed_variables_give_new_settings_and_a_new_engine(
    config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, engine = _runtime.settings(), _runtime.cloud_agent()
    closed: list[bool] = []
    monkeypatch.setattr(engine, "close", lambda: closed.append(True))
    monkeypatch.setenv("CLOUD_AGENT_AUTO_FIX_CONFIDENCE", "0.42")
    after = _runtime.settings()
    assert after is not before and after.auto_fix_confidence == 0.42
    assert closed == [True], "the engine of the old settings was left open"
    assert _runtime.cloud_agent() is not engine
    monkeypatch.delenv("CLOUD_AGENT_AUTO_FIX_CONFIDENCE")
    assert _runtime.settings().auto_fix_confidence == before.auto_fix_confidence


def test_an_environment_edited_in_place_takes_a_reset(config_dir: Path, state_dir: Path) -> None:
    engine = _runtime.cloud_agent()
    assert _runtime.cloud_agent() is engine  # the files are not watched
    _runtime.reset()
    assert _runtime.cloud_agent() is not engine
