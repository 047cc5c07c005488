"""The process's settings and execution engine, shared by every task run in it (connection pools
included).

Task runs reach them here rather than as parameters: on a worker a task run is started by Prefect,
with only what its parameters serialise, and the engine holds connection pools no parameter could
carry. Both follow the process's ``CLOUD_AGENT_*`` variables: read once, and read again (the old
engine closed) when those change, so a process or a test that sets them gets settings and an
engine of its own without asking. What the variables do not show, an environment's files edited
in place, takes ``reset()``.
"""

from __future__ import annotations

import os
import threading

from executors import CloudAgent
from flows._settings import FlowSettings

_PREFIX = "CLOUD_AGENT_"

_lock = threading.Lock()
_agent: CloudAgent | None = None
_settings: FlowSettings | None = None
_read_from: tuple[tuple[str, str], ...] | None = None


def _variables() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, value) for key, value in os.environ.items() if key.startswith(_PREFIX)))


def settings() -> FlowSettings:
    """The settings of the ``CLOUD_AGENT_*`` variables as they are now."""
    global _agent, _settings, _read_from
    variables = _variables()
    stale: CloudAgent | None = None
    with _lock:
        if _settings is None or variables != _read_from:
            stale, _agent = _agent, None
            _settings, _read_from = FlowSettings(), variables
        current = _settings
    if stale is not None:
        stale.close()
    return current


def cloud_agent() -> CloudAgent:
    """The process-wide ``CloudAgent`` of the current settings, created on first use."""
    global _agent
    current = settings()
    with _lock:
        if _agent is None:  # another thread may have read newer settings meanwhile: those count
            _agent = CloudAgent.from_settings(_settings or current)
        return _agent


def reset() -> None:
    """Forget the engine and settings: the next use reads both again (environment files edited in
    place; a test's end)."""
    global _agent, _settings, _read_from
    with _lock:
        agent, _agent, _settings, _read_from = _agent, None, None, None
    if agent is not None:
        agent.close()
