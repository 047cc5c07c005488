"""The executors' error tree.

    CloudAgentError                 (in ``contract``: every room raises it)
    ├── InvalidTask                 the task JSON or its params are wrong (the caller's fault; in ``contract``)
    ├── ConfigurationError          the deployment configuration is wrong or incomplete
    │   ├── UnknownExecutorType
    │   ├── UnknownEnvironment
    │   ├── UnknownAgent
    │   ├── UnknownConnection
    │   └── ReadCredentialMissing   a read task, no read-only credential, and the environment insists
    ├── AuditUnavailable            the audit store cannot take a record: nothing runs unaudited
    └── ExecutorError               raised by an executor's ``_run``; ``Executor.execute`` turns it
        ├── BackendUnavailable      into a ``TaskResult`` (a result is never an exception)
        ├── AuthenticationFailed
        ├── PermissionDenied
        ├── NotFound
        ├── QueryFailed
        ├── SandboxUnavailable      a read shell task's sandbox cannot start here (never run unconfined)
        └── TaskTimedOut

Each ``ExecutorError`` carries a stable ``code`` that lands in ``TaskResult.error.code`` so callers
can branch on it without parsing messages.
"""

from __future__ import annotations

from contract import CloudAgentError, InvalidTask

__all__ = [
    "AuditUnavailable",
    "AuthenticationFailed",
    "BackendUnavailable",
    "CloudAgentError",
    "ConfigurationError",
    "ExecutorError",
    "InvalidTask",
    "NotFound",
    "PermissionDenied",
    "QueryFailed",
    "SandboxUnavailable",
    "TaskTimedOut",
    "UnknownAgent",
    "UnknownConnection",
    "UnknownEnvironment",
    "UnknownExecutorType",
]


class ConfigurationError(CloudAgentError):
    code = "configuration_error"


class UnknownExecutorType(ConfigurationError):
    code = "unknown_type"


class UnknownEnvironment(ConfigurationError):
    code = "unknown_environment"


class UnknownAgent(ConfigurationError):
    code = "unknown_agent"


class UnknownConnection(ConfigurationError):
    code = "unknown_connection"


class ReadCredentialMissing(ConfigurationError):
    code = "read_credential_missing"


class AuditUnavailable(CloudAgentError):
    code = "audit_unavailable"


class ExecutorError(CloudAgentError):
    code = "backend_error"


class BackendUnavailable(ExecutorError):
    code = "unreachable"


class AuthenticationFailed(ExecutorError):
    code = "auth_failed"


class PermissionDenied(ExecutorError):
    code = "forbidden"


class NotFound(ExecutorError):
    code = "not_found"


class QueryFailed(ExecutorError):
    code = "bad_query"


class SandboxUnavailable(ExecutorError):
    """The sandbox a task needs cannot start here; the message says how to fix that."""

    code = "sandbox_unavailable"


class TaskTimedOut(ExecutorError):
    code = "timed_out"
