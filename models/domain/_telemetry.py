"""Telemetry in the RCAEval layout: a metrics frame, and optional logs and traces frames.

Metrics: a ``time`` column (epoch seconds) and one numeric column per ``<service>_<metric>``
(``cartservice_cpu``, ``checkout_latency-50``). Logs: ``time, service, level, message`` and
optionally ``trace_id``. Traces: ``trace_id, span_id, parent, service, duration, status`` and
optionally ``time`` (span start, epoch seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from models.domain._errors import TelemetryError
from models.domain._types import MetricKind, metric_kind

LOG_COLUMNS = ("time", "service", "level", "message")
TRACE_COLUMNS = ("trace_id", "span_id", "parent", "service", "duration", "status")

# Beyond this an epoch is in milliseconds (1e11 s is the year 5138); each factor of 1000 past it is
# one finer unit (microseconds, nanoseconds).
_MILLISECONDS_FROM = 1e11


class Telemetry(BaseModel):
    """What was observed around an alert. Frames are validated and normalised on creation:
    metrics sorted by ``time`` (float epoch seconds, duplicates dropped), metric values as floats.

    Raises:
        TelemetryError: with one line saying what is wrong (no ``time`` column, a non-numeric
            metric, an empty frame, a logs frame without ``message``...).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    metrics: pd.DataFrame
    logs: pd.DataFrame | None = None
    traces: pd.DataFrame | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _check_metrics(cls, frame: object) -> pd.DataFrame:
        return normalize_metrics(frame)

    @field_validator("logs", mode="before")
    @classmethod
    def _check_logs(cls, value: object) -> pd.DataFrame | None:
        if value is None:
            return None
        frame = _require_frame(value, "logs", LOG_COLUMNS).copy()
        frame["time"] = _epoch_seconds(frame["time"], "logs")
        for column in ("service", "level", "message"):
            frame[column] = _text(frame[column])
        if "trace_id" not in frame.columns:
            frame["trace_id"] = pd.Series(pd.NA, index=frame.index, dtype="string")
        return frame.sort_values("time", kind="stable").reset_index(drop=True)

    @field_validator("traces", mode="before")
    @classmethod
    def _check_traces(cls, value: object) -> pd.DataFrame | None:
        if value is None:
            return None
        frame = _require_frame(value, "traces", TRACE_COLUMNS).copy()
        duration = pd.to_numeric(frame["duration"], errors="coerce")
        if duration.isna().all() and len(frame):
            raise TelemetryError("traces: the 'duration' column has no numeric value")
        frame["duration"] = duration.astype(float)
        for column in ("trace_id", "span_id", "parent", "service", "status"):
            frame[column] = _text(frame[column])
        started = next((name for name in ("time", "start_time", "timestamp", "start") if name in frame.columns), None)
        if started is not None:
            # Without a start the spans still give the call graph, but not what changed at the incident.
            frame["time"] = _epoch_seconds(frame[started], "traces")
        return frame.reset_index(drop=True)

    @property
    def start(self) -> float:
        return float(self.metrics["time"].iloc[0])

    @property
    def end(self) -> float:
        return float(self.metrics["time"].iloc[-1])

    def metric_columns(self) -> list[str]:
        return [str(column) for column in self.metrics.columns if column != "time"]

    def named_components(self) -> list[str]:
        """The components that wrote spans or log lines, spans first, each once.

        Without a topology they are the components known besides the metrics' prefixes: a
        managed or third-party component that exports no metric still answers spans and writes
        logs, and ``cart_service`` in the spans says where ``cart_service_cpu`` splits.
        """
        names: dict[str, None] = {}
        for frame in (self.traces, self.logs):
            if frame is not None:
                names.update(dict.fromkeys(str(name) for name in frame["service"].drop_duplicates() if name))
        return list(names)


def normalize_metrics(frame: object) -> pd.DataFrame:
    """The metrics frame checked and normalised (see ``Telemetry``)."""
    if not isinstance(frame, pd.DataFrame):
        raise TelemetryError(f"metrics must be a pandas DataFrame, not {type(frame).__name__}")
    if any(isinstance(column, str) and column != column.strip() for column in frame.columns):
        # A header written with ", " between names: the spaces are not part of them.
        frame = frame.rename(columns=lambda column: column.strip() if isinstance(column, str) else column)
    if "time" not in frame.columns:
        raise TelemetryError("metrics: no 'time' column (epoch seconds) in " + _preview(frame.columns))
    if frame.empty:
        raise TelemetryError("metrics: the frame has no rows")
    columns = [column for column in frame.columns if column != "time"]
    if not columns:
        raise TelemetryError("metrics: no metric column besides 'time'")
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise TelemetryError(f"metrics: duplicated columns {_preview(duplicated)}")
    unnamed = [str(c) for c in columns if not all(str(c).partition("_")[::2])]
    if unnamed:
        raise TelemetryError(f"metrics: columns must be named <service>_<metric>, not {_preview(unnamed)}")
    dtypes = frame.dtypes
    numeric = [getattr(dtypes[column], "kind", "O") in "biuf" for column in columns]
    if all(numeric):
        values = frame[columns].to_numpy(dtype=float)
        times = _epoch_seconds(frame["time"], "metrics").to_numpy()
        result = pd.DataFrame(np.column_stack([times, values]), columns=["time", *(str(c) for c in columns)])
    else:
        values = {}
        bad = []
        for column, is_numeric in zip(columns, numeric, strict=True):
            series = frame[column]
            if not is_numeric:
                converted = pd.to_numeric(series, errors="coerce")
                # A column of numbers written as text is fine; words are not.
                if (converted.isna() & series.notna()).any():
                    bad.append(str(column))
                    continue
                series = converted
            values[str(column)] = series.to_numpy(dtype=float)
        if bad:
            raise TelemetryError(f"metrics: non-numeric metric columns {_preview(bad)}")
        result = pd.DataFrame(values, index=frame.index)
        result.insert(0, "time", _epoch_seconds(frame["time"], "metrics"))
    if result.iloc[:, 1:].isna().all().all():
        raise TelemetryError("metrics: no metric column has a value (every cell is empty)")
    times = result["time"].to_numpy()
    if len(times) > 1 and not (np.diff(times) > 0).all():
        result = result.sort_values("time", kind="stable").drop_duplicates("time", keep="last")
    return result.reset_index(drop=True)


def split_metric_column(column: str, services: Iterable[str] = ()) -> tuple[str, str]:
    """``(service, metric)`` of a metric column.

    Known service names win (longest prefix first) so that ``cart_service_cpu`` splits right when
    the topology names ``cart_service``; otherwise the first ``_`` separates them, as in RCAEval.
    """
    return column_splitter(services)(column)


def column_splitter(services: Iterable[str] = ()) -> Callable[[str], tuple[str, str]]:
    """``split_metric_column`` with the known names sorted once, for many columns."""
    known = sorted(services, key=len, reverse=True)

    def split(column: str) -> tuple[str, str]:
        for name in known:
            if column.startswith(name) and column[len(name) : len(name) + 1] == "_" and len(column) > len(name) + 1:
                return name, column[len(name) + 1 :]
        service, _, metric = column.partition("_")
        return service, metric

    return split


def describe_columns(columns: Iterable[str], services: Iterable[str] = ()) -> pd.DataFrame:
    """One row per metric column: ``column, service, metric, kind``."""
    split = column_splitter(services)
    rows = []
    for column in columns:
        service, metric = split(column)
        rows.append((column, service, metric, metric_kind(metric)))
    return pd.DataFrame(rows, columns=["column", "service", "metric", "kind"])


def metric_services(telemetry: Telemetry, services: Iterable[str] = ()) -> list[str]:
    """The services that have at least one metric column, in column order."""
    seen: dict[str, None] = {}
    split = column_splitter(services)
    for column in telemetry.metric_columns():
        seen.setdefault(split(column)[0], None)
    return list(seen)


def known_components(
    telemetry: Telemetry, topology_names: Sequence[str] | None = None, alert_service: str | None = None
) -> list[str]:
    """The components known besides the metrics' prefixes: the topology's when there is one (it
    is the list of components), else those of the spans and logs and the one that paged. Each is a
    candidate, and each name says where a metric column of it splits (``cart_service_cpu``)."""
    if topology_names is not None:
        return list(topology_names)
    names = telemetry.named_components()
    return [*names, alert_service] if alert_service and alert_service not in names else names


def kinds_of(columns: pd.DataFrame, service: str) -> set[MetricKind]:
    return set(columns.loc[columns["service"] == service, "kind"])


def _text(series: pd.Series) -> pd.Series:
    """Text with missing values as empty strings (a string column is kept as it is)."""
    if pd.api.types.is_string_dtype(series) and not series.hasnans:
        return series
    return series.astype("string").fillna("")


def _require_frame(frame: object, name: str, required: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TelemetryError(f"{name} must be a pandas DataFrame, not {type(frame).__name__}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TelemetryError(f"{name}: missing columns {_preview(missing)} (has {_preview(frame.columns)})")
    return frame


def _epoch_seconds(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        as_utc = pd.to_datetime(series, utc=True)
        return (as_utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype(float)
    values = pd.to_numeric(series, errors="coerce")
    if values.isna().any():
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
        if parsed.isna().any():
            raise TelemetryError(f"{name}: 'time' has values that are neither epoch seconds nor timestamps")
        return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype(float)
    values = values.astype(float)
    largest = float(np.nanmax(np.abs(values.to_numpy()))) if len(values) else 0.0
    while largest > _MILLISECONDS_FROM:
        values, largest = values / 1000.0, largest / 1000.0
    return values


def _preview(items: Iterable[object], limit: int = 5) -> str:
    names = [str(item) for item in items]
    shown = ", ".join(repr(name) for name in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{shown}{more}]"
