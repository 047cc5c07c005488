"""The process's execution engine, shared by every task run in it (connection pools included)."""

from __future__ import annotations

import threading

from executors import CloudAgent
from flows._settings import FlowSettings

_lock = threading.Lock()
_agent: CloudAgent | None = None
_settings: FlowSettings | None = None


def settings() -> FlowSettings:
    global _settings
    with _lock:
        if _settings is None:
            _settings = FlowSettings()
        return _settings


def cloud_agent() -> CloudAgent:
    """The process-wide ``CloudAgent``, created on first use from the settings."""
    global _agent
    current = settings()
    with _lock:
        if _agent is None:
            _agent = CloudAgent.from_settings(current)
        return _agent


def reset() -> None:
    """Forget the engine and settings (tests, and a worker that changed its environment)."""
    global _agent, _settings
    with _lock:
        agent, _agent, _settings = _agent, None, None
    if agent is not None:
        agent.close()
