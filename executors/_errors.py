"""The executors' error tree.

    CloudAgentError
    ├── InvalidTask                 the task JSON or its params are wrong (the caller's fault)
    ├── ConfigurationError          the deployment configuration is wrong or incomplete
    │   ├── UnknownExecutorType
    │   ├── UnknownEnvironment
    │   ├── UnknownAgent
    │   └── UnknownConnection
    ├── AuditUnavailable            the audit store cannot take a record: nothing runs unaudited
    └── ExecutorError               raised by an executor's ``_run``; ``Executor.execute`` turns it
        ├── BackendUnavailable      into a ``TaskResult`` (a result is never an exception)
        ├── AuthenticationFailed
        ├── PermissionDenied
        ├── NotFound
        ├── QueryFailed
        └── TaskTimedOut

Each ``ExecutorError`` carries a stable ``code`` that lands in ``TaskResult.error.code`` so callers
can branch on it without parsing messages.
"""

from __future__ import annotations


class CloudAgentError(Exception):
    """Base of every error this package raises on purpose."""

    code = "error"


class InvalidTask(CloudAgentError):
    code = "invalid_task"


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


class TaskTimedOut(ExecutorError):
    code = "timed_out"
