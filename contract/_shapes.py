"""What executors put in ``TaskResult.data``, typed: the shapes the models read.

Below this line only plain data passes between the rooms: executors build these and dump them to
JSON; the models validate them back. Nobody parses text an executor printed for people.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ResultSet(BaseModel):
    """One SQL statement's outcome: its rows (when it returns any) or the number of rows it touched."""

    statement: str
    columns: list[str] = Field(default_factory=list)
    rows: list[list[Any]] = Field(default_factory=list)
    #: Rows returned (before truncation) or rows affected.
    row_count: int = 0
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dicts."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]


class SqlData(BaseModel):
    """``data`` of a ``postgres``, ``mysql`` or ``clickhouse`` task: one result set per statement."""

    model_config = ConfigDict(extra="ignore")

    result_sets: list[ResultSet] = Field(default_factory=list)


class PrometheusRow(BaseModel):
    """One sample of one series: its labels, its unix time, its value (``None`` for NaN/±Inf)."""

    labels: dict[str, str] = Field(default_factory=dict)
    timestamp: float
    value: float | str | None


class PrometheusData(BaseModel):
    """``data`` of a ``prometheus`` task: the query and its samples as tidy rows."""

    model_config = ConfigDict(extra="ignore")

    query: str = ""
    rows: list[PrometheusRow] = Field(default_factory=list)


class HttpData(BaseModel):
    """``data`` of an ``api`` task: the response."""

    model_config = ConfigDict(extra="ignore")

    status_code: int
    reason: str = ""
    url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    elapsed_ms: float | None = None


class KubernetesData(BaseModel):
    """``data`` of a ``k8s`` task: the API's objects as they came (``items``), or one object."""

    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]] = Field(default_factory=list)
