"""The Cloud Agent execution engine: run data-collection and diagnostic tasks safely.

    from executors import CloudAgent, TaskSpec
    with CloudAgent.from_settings() as agent:
        result = agent.run({"type": "shell", "command": "df -h"}, actor="me")

Every task goes through ``Executor.execute``: validation, policy (allow/deny lists, risk classes,
approvals), timeouts, result-size limits, secret masking and the append-only audit log.
"""

from contract import Approval, ErrorInfo, RiskClass, TaskResult, TaskSpec, TaskStatus
from executors._agent import CloudAgent
from executors._audit import AuditEvent, AuditLog, AuditQuery, AuditRecord, ChainReport, open_audit_log
from executors._base import Executor, OutputSink, RunContext, new_task_id
from executors._config import Connection, Environment, EnvironmentCatalog, Limits, PolicyConfig
from executors._errors import (
    AuditUnavailable,
    AuthenticationFailed,
    BackendUnavailable,
    CloudAgentError,
    ConfigurationError,
    ExecutorError,
    InvalidTask,
    NotFound,
    PermissionDenied,
    QueryFailed,
    ReadCredentialMissing,
    SandboxUnavailable,
    TaskTimedOut,
    UnknownAgent,
    UnknownConnection,
    UnknownEnvironment,
    UnknownExecutorType,
)
from executors._policy import Decision, Policy, Verdict
from executors._redaction import redact_output_value, redact_text, redact_value, register_secret
from executors._registry import executor_class, executor_types
from executors._sandbox import SandboxConfig
from executors._settings import AgentSettings

__all__ = [
    "AgentSettings",
    "Approval",
    "AuditEvent",
    "AuditLog",
    "AuditQuery",
    "AuditRecord",
    "AuditUnavailable",
    "AuthenticationFailed",
    "BackendUnavailable",
    "ChainReport",
    "CloudAgent",
    "CloudAgentError",
    "ConfigurationError",
    "Connection",
    "Decision",
    "Environment",
    "EnvironmentCatalog",
    "ErrorInfo",
    "Executor",
    "ExecutorError",
    "InvalidTask",
    "Limits",
    "NotFound",
    "OutputSink",
    "PermissionDenied",
    "Policy",
    "PolicyConfig",
    "QueryFailed",
    "ReadCredentialMissing",
    "RiskClass",
    "RunContext",
    "SandboxConfig",
    "SandboxUnavailable",
    "TaskResult",
    "TaskSpec",
    "TaskStatus",
    "TaskTimedOut",
    "UnknownAgent",
    "UnknownConnection",
    "UnknownEnvironment",
    "UnknownExecutorType",
    "Verdict",
    "executor_class",
    "executor_types",
    "new_task_id",
    "open_audit_log",
    "redact_output_value",
    "redact_text",
    "redact_value",
    "register_secret",
]
