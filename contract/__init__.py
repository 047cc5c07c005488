"""What passes between the rooms: a task and its result, risk classes and fix risks, planned tasks, and the
typed shapes of a result's data. Every room imports this; it imports nothing of theirs.

    from contract import TaskSpec, TaskResult, RiskClass, PlannedTask, SqlData
"""

from contract._errors import CloudAgentError, InvalidTask
from contract._plan import PlannedTask, Purpose
from contract._risk import MOST_A_FIX_MAY_DO, Risk, fix_fits_its_risk
from contract._shapes import HttpData, KubernetesData, PrometheusData, PrometheusRow, ResultSet, SqlData
from contract._task import (
    MAX_COMMAND_CHARS,
    MAX_PARAMS_DEPTH,
    MAX_TIMEOUT_SECONDS,
    Approval,
    ErrorInfo,
    RiskClass,
    TaskResult,
    TaskSpec,
    TaskStatus,
    describe_validation_error,
    output_lines,
)

__all__ = [
    "MAX_COMMAND_CHARS",
    "MAX_PARAMS_DEPTH",
    "MAX_TIMEOUT_SECONDS",
    "MOST_A_FIX_MAY_DO",
    "Approval",
    "CloudAgentError",
    "ErrorInfo",
    "HttpData",
    "InvalidTask",
    "KubernetesData",
    "PlannedTask",
    "PrometheusData",
    "PrometheusRow",
    "Purpose",
    "ResultSet",
    "Risk",
    "RiskClass",
    "SqlData",
    "TaskResult",
    "TaskSpec",
    "TaskStatus",
    "describe_validation_error",
    "fix_fits_its_risk",
    "output_lines",
]
