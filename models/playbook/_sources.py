"""Where an environment's telemetry lives (``telemetry`` of its ``environment.yaml``) and the
time window collection reads; limits of the cross-source chain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SqlDialect = Literal["postgres", "mysql", "clickhouse"]
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: Error trace ids followed up from the logs (the spec's cross-source chain), at most.
MAX_FOLLOWED_TRACES = 20
#: Seconds of metrics around the first error, for the chain's last link.
ERROR_CONTEXT_SECONDS = 120.0
#: Characters of an executor's error message kept in a failed source's report line.
FAILURE_REASON_CHARS = 400
#: Seconds of logs and traces read before the alert.
EVIDENCE_HISTORY = 600.0
#: Seconds of metrics read before the alert. Prometheus stamps ``startsAt`` when the rule fires,
#: after its ``for:`` and its rate window, so detection searches for the change up to 30 minutes
#: before the alert (``models.signals``' ``LATE_ALERT_LOOKBACK``), and the change needs a normal
#: period before it to stand out from.
METRICS_HISTORY = 2400.0
#: ...in at most this many samples per series before the alert: a query per service returns every
#: metric of it, and at a 1 s step 40 minutes of a dozen metrics would pass an executor's row cap.
MAX_HISTORY_SAMPLES = 1200


class MetricsSource(BaseModel):
    """Where metrics live. SQL tables are in long format: ``time, service, metric, value``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["postgres", "mysql", "clickhouse", "prometheus"]
    connection: str = "default"
    table: str = "metrics"
    #: Averaging step of SQL queries, and the PromQL range step.
    step_seconds: float = Field(default=1.0, gt=0)
    #: PromQL per metric name; ``{service}`` is replaced by the service name. Results must carry
    #: a ``service`` label (or one query per service, which the template gives).
    queries: dict[str, str] = Field(default_factory=dict)


class LogsSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["postgres", "mysql", "clickhouse", "elasticsearch"]
    connection: str = "default"
    table: str = "logs"
    index: str = "app-logs-*"
    #: Field names in Elasticsearch documents.
    time_field: str = "@timestamp"
    levels: list[str] = Field(default_factory=lambda: ["ERROR", "FATAL", "WARN", "WARNING"])
    max_lines: int = Field(default=2000, gt=0)


class TracesSource(BaseModel):
    """Spans. SQL tables have the spec's columns: ``trace_id, span_id, service_name, duration,
    status, timestamp`` (and ``parent_span_id`` when known); duration in milliseconds."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["postgres", "mysql", "clickhouse", "elasticsearch"]
    connection: str = "default"
    table: str = "traces"
    index: str = "jaeger-span-*"
    max_spans: int = Field(default=2000, gt=0)


class TelemetrySources(BaseModel):
    """An environment's ``telemetry:`` section."""

    model_config = ConfigDict(extra="forbid")

    metrics: MetricsSource | None = None
    logs: LogsSource | None = None
    traces: TracesSource | None = None
    #: Run ``top``/``df`` on the agent's host (useful when the agent shares the host).
    host: bool = False
    #: Ask Kubernetes for pods and events in the involved namespaces (needs a k8s connection).
    kubernetes: bool = False
    kubernetes_namespace: str | None = None


@dataclass(frozen=True)
class Window:
    """A time range in epoch seconds."""

    start: float
    end: float

    @classmethod
    def around(
        cls, alert_time: float, before: float = EVIDENCE_HISTORY, after: float = 300.0, now: float | None = None
    ) -> Window:
        end = alert_time + after
        if now is not None:
            end = min(end, now)
        return cls(alert_time - before, max(end, alert_time + 1))

    def with_history(self, alert_time: float, step_seconds: float) -> Window:
        """This window reaching ``metrics_history(step_seconds)`` before the alert, if that is earlier."""
        return Window(min(self.start, alert_time - metrics_history(step_seconds)), self.end)

    def iso(self) -> tuple[str, str]:
        return (_iso(self.start), _iso(self.end))


def metrics_history(step_seconds: float) -> float:
    """Seconds of metrics to read before the alert at this sampling step: ``METRICS_HISTORY``,
    fewer when that would take more than ``MAX_HISTORY_SAMPLES`` samples, never fewer than the
    evidence's ``EVIDENCE_HISTORY``."""
    return max(EVIDENCE_HISTORY, min(METRICS_HISTORY, MAX_HISTORY_SAMPLES * step_seconds))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
