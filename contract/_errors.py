"""The base of every error the project raises on purpose, and the one the contract itself raises."""

from __future__ import annotations


class CloudAgentError(Exception):
    """Base of every error the project raises on purpose; ``code`` is stable for callers to branch on."""

    code = "error"


class InvalidTask(CloudAgentError):
    """A task's JSON or its params are wrong: the caller's fault, said in one line."""

    code = "invalid_task"
