"""The process's settings and engine follow what they were read from (``flows.runtime``): the
``CLOUD_AGENT_*`` variables and the environments' files. Nothing resets them; an engine replaced
while a task runs finishes that task before it closes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from executors import CloudAgent, ConfigurationError
from flows import runtime


def _closes_recorded(engine: CloudAgent, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    closed: list[bool] = []
    real_close = engine.close

    def close() -> None:
        closed.append(True)
        real_close()

    monkeypatch.setattr(engine, "close", close)
    return closed


def _add_agent(config_dir: Path, agent: str) -> None:
    path = config_dir / "local" / "environment.yaml"
    environment = yaml.safe_load(path.read_text())
    environment["agents"] = [*environment.get("agents", []), agent]
    path.write_text(yaml.safe_dump(environment))


def test_the_settings_and_the_engine_are_read_once_while_nothing_changes(config_dir: Path, state_dir: Path) -> None:
    assert runtime.settings() is runtime.settings()
    with runtime.engine() as first, runtime.engine() as second:
        assert first is second


def test_changed_variables_give_new_settings_and_a_new_engine(
    config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = runtime.settings()
    with runtime.engine() as engine:
        closed = _closes_recorded(engine, monkeypatch)
    monkeypatch.setenv("CLOUD_AGENT_AUTO_FIX_CONFIDENCE", "0.42")
    after = runtime.settings()
    assert after is not before and after.auto_fix_confidence == 0.42
    with runtime.engine() as replacement:
        assert replacement is not engine
    assert closed == [True], "the engine of the old settings was left open"
    monkeypatch.delenv("CLOUD_AGENT_AUTO_FIX_CONFIDENCE")
    assert runtime.settings().auto_fix_confidence == before.auto_fix_confidence


def test_an_environment_edited_in_place_reaches_the_next_task(config_dir: Path, state_dir: Path) -> None:
    assert "agent-new-001" not in runtime.catalog().environment("local").agents
    _add_agent(config_dir, "agent-new-001")
    assert runtime.catalog().environment_of("agent-new-001").name == "local"


def test_an_environment_folder_added_or_a_file_replaced_is_seen(config_dir: Path, state_dir: Path) -> None:
    runtime.catalog()
    (config_dir / "edge").mkdir()
    (config_dir / "edge" / "environment.yaml").write_text(yaml.safe_dump({"name": "edge"}))
    assert "edge" in runtime.catalog().environments
    connections = config_dir / "edge" / "connections.yaml"
    beside = config_dir / "edge" / ".connections.yaml.new"
    beside.write_text(yaml.safe_dump({"redis": {"default": {"host": "127.0.0.1", "port": 6379}}}))
    beside.rename(connections)  # how editors and config managers write a file
    assert "redis" in runtime.catalog().environment("edge").connections


def test_an_engine_replaced_mid_task_closes_when_the_task_is_done(
    config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    results: list[str] = []

    def long_task() -> None:
        with runtime.engine() as engine:
            started.set()
            release.wait(10)
            results.append(engine.run({"type": "shell", "command": "echo still-open"}).status.value)

    with runtime.engine() as engine:
        closed = _closes_recorded(engine, monkeypatch)
    runner = threading.Thread(target=long_task)
    runner.start()
    assert started.wait(10)
    _add_agent(config_dir, "agent-new-001")
    with runtime.engine() as replacement:
        assert replacement is not engine
    assert closed == [], "the engine was closed under a task still running on it"
    release.set()
    runner.join(10)
    assert results == ["succeeded"]
    assert closed == [True], "the replaced engine stayed open after its last task"


def test_an_edit_that_does_not_load_fails_tasks_until_it_is_fixed(config_dir: Path, state_dir: Path) -> None:
    path = config_dir / "local" / "environment.yaml"
    good = path.read_text()
    runtime.catalog()
    path.write_text("name: [local\n")
    with pytest.raises(ConfigurationError, match=r"environment\.yaml"):
        runtime.catalog()
    path.write_text(good)
    assert "local" in runtime.catalog().environments
