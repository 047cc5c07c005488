"""``prometheus``: PromQL instant and range queries against the Prometheus HTTP API, through httpx.

Metrics belong in a metrics store rather than in ``curl | jq`` (the spec's way), so this type goes
beyond the spec::

    {"type": "prometheus", "command": "sum by (service) (rate(http_requests_total{code=~\\"5..\\"}[5m]))",
     "params": {"range": "30m", "step": "30s"}}

The query is ``command`` (or ``params.query``). Without ``range``/``start`` it is an instant query
(``/api/v1/query``) at ``params.time`` (default: now). With ``params.range`` (``10m``, ``2h``) it is
a range query (``/api/v1/query_range``) over the last ``range`` up to ``params.end`` (default: now);
or give ``params.start`` and ``params.end``. ``params.step`` defaults to about 250 points over
the range. Times are unix seconds, RFC 3339, or ``now`` / ``now-1h``. The task's remaining time
is both the HTTP timeout and the query's server-side ``timeout``.

The result is tidy rows in ``data["rows"]``: ``{"labels": {...}, "timestamp": unix seconds,
"value": float}``, one per sample (at most ``max_rows``; the rest counted). ``to_frame`` turns that
data into the RCAEval layout the models use: a ``time`` column and one ``<service>_<metric>``
column per series.

Connection settings (type ``prometheus``): ``url`` (the server's base URL, with any path prefix);
``bearer_token`` or ``username`` + ``password``; ``headers``; ``verify`` (or a CA bundle path).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from contract import TaskResult, TaskSpec
from executors._base import Executor, RunContext
from executors._config import Connection
from executors._errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigurationError,
    ExecutorError,
    InvalidTask,
    NotFound,
    PermissionDenied,
    QueryFailed,
    TaskTimedOut,
)
from executors._pool import PerConnection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PrometheusExecutor", "PrometheusParams", "to_frame"]

#: Points per series a range query asks for when the task gives no step.
DEFAULT_POINTS = 250
#: Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000
#: Time kept back from the server-side timeout so its error (not ours) comes back.
_SERVER_TIMEOUT_MARGIN = 0.2
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_RELATIVE = re.compile(r"^now(?:\s*-\s*(.+))?$")


class PrometheusParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str | None = None
    query: str | None = Field(default=None, min_length=1, max_length=100_000)
    time: float | str | None = None
    range: str | None = None
    start: float | str | None = None
    end: float | str | None = None
    step: float | str | None = None


class PrometheusExecutor(Executor):
    type = "prometheus"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._clients: PerConnection[httpx.Client] = PerConnection(httpx.Client.close)

    def validate(self, spec: TaskSpec) -> None:
        _plan(spec, now=datetime.now(UTC).timestamp())

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        query, endpoint, form = _plan(spec, now=datetime.now(UTC).timestamp())
        connection = ctx.connection()
        client = self._client(connection)
        remaining = max(ctx.remaining(), 0.001)
        # Prometheus durations are whole numbers of a unit: milliseconds it is.
        form["timeout"] = f"{max(1, int((remaining - _SERVER_TIMEOUT_MARGIN) * 1000))}ms"
        where = f"Prometheus at {client.base_url}"
        try:
            response = client.post(endpoint, data=form, timeout=httpx.Timeout(remaining, connect=min(remaining, 10.0)))
        except httpx.TimeoutException as exc:
            raise TaskTimedOut(f"{where} did not answer within the task's {ctx.timeout:g} s timeout") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach {where} (connection {connection.name!r}): {exc}") from exc
        body = _decode(response, where)
        if body.get("status") != "success":
            raise _translate(response.status_code, body, where)
        data, total = _tidy(body.get("data") or {}, ctx.limits.max_rows)
        data = {"query": query, **{k: v for k, v in form.items() if k != "timeout"}, **data}
        if body.get("warnings"):
            data["warnings"] = body["warnings"]
        result = ctx.result(data=data)
        if total > len(data["rows"]):
            result.truncated, result.original_rows = True, total
        return result

    def _client(self, connection: Connection) -> httpx.Client:
        return self._clients.get(connection.name, lambda: _make_client(connection))

    def close(self) -> None:
        self._clients.close()


def _make_client(connection: Connection) -> httpx.Client:
    url = connection.get("url")
    if not url:
        raise ConfigurationError(f"prometheus connection {connection.name!r} needs a url")
    headers = dict(connection.get("headers") or {})
    if connection.get("bearer_token"):
        headers["Authorization"] = f"Bearer {connection.get('bearer_token')}"
    auth = None
    if connection.get("username"):
        auth = httpx.BasicAuth(connection.get("username"), connection.get("password") or "")
    return httpx.Client(
        base_url=str(url).rstrip("/") + "/",
        headers=headers,
        auth=auth,
        verify=connection.get("verify", True),
        trust_env=False,
    )


def _plan(spec: TaskSpec, now: float) -> tuple[str, str, dict[str, str]]:
    """The query, the API endpoint and its form parameters; ``InvalidTask`` for a bad request."""
    params: PrometheusParams = Executor.params(PrometheusParams, spec)
    query = params.query or spec.command.strip()
    if not query:
        raise InvalidTask("a prometheus task needs a PromQL query (command or params.query)")
    if params.query and spec.command.strip() and params.query != spec.command.strip():
        raise InvalidTask("give the PromQL query once: in command or in params.query")
    ranged = params.range is not None or params.start is not None
    if not ranged:
        if params.end is not None or params.step is not None:
            raise InvalidTask("params.end and params.step belong to range queries: give params.range or params.start")
        form = {"query": query}
        if params.time is not None:
            form["time"] = _format(_instant(params.time, now, "time"))
        return query, "api/v1/query", form
    if params.time is not None:
        raise InvalidTask("params.time is for instant queries; a range query takes range or start/end")
    if params.range is not None and params.start is not None:
        raise InvalidTask("give params.range or params.start, not both")
    end = _instant(params.end, now, "end") if params.end is not None else now
    start = end - _duration(params.range, "range") if params.range is not None else _instant(params.start, now, "start")
    if start >= end:
        raise InvalidTask("a range query's start must be before its end")
    if params.step is not None:
        step = _duration(params.step, "step") if isinstance(params.step, str) else float(params.step)
        if step <= 0:
            raise InvalidTask("params.step must be positive")
    else:
        step = max(1.0, math.ceil((end - start) / DEFAULT_POINTS))
    if (end - start) / step > MAX_POINTS:
        raise InvalidTask(
            f"{(end - start) / step:.0f} points per series is more than Prometheus allows ({MAX_POINTS}); "
            "use a larger step or a shorter range"
        )
    return (
        query,
        "api/v1/query_range",
        {"query": query, "start": _format(start), "end": _format(end), "step": _format(step)},
    )


def _duration(value: str | float | None, name: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = (value or "").strip()
    parts = _DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise InvalidTask(f"params.{name} takes a duration like 30s, 10m, 1h30m, not {value!r}")
    return sum(float(number) * _DURATION_SECONDS[unit] for number, unit in parts)


def _instant(value: float | str | None, now: float, name: str) -> float:
    """Unix seconds from a number, RFC 3339 text, or ``now`` / ``now-1h``."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - (_duration(relative.group(1), name) if relative.group(1) else 0.0)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidTask(f"params.{name} takes unix seconds, RFC 3339 or now-<duration>, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _format(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _decode(response: httpx.Response, where: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        if response.status_code in (401, 403, 404):
            raise _translate(response.status_code, {"error": response.text[:200]}, where)
        raise BackendUnavailable(
            f"{where} did not answer like the Prometheus API (HTTP {response.status_code}): {response.text[:200]!r}"
        )
    return body


def _translate(status: int, body: Mapping[str, Any], where: str) -> ExecutorError:
    kind = str(body.get("errorType") or "")
    message = f"{where}: {body.get('error') or f'HTTP {status}'}"
    if status == 401:
        return AuthenticationFailed(message)
    if status == 403:
        return PermissionDenied(message)
    if status == 404:
        return NotFound(f"{message} (is the connection's url the server's base URL?)")
    if kind in ("timeout", "canceled"):
        return TaskTimedOut(message)
    if kind in ("bad_data", "execution") or status in (400, 422):
        return QueryFailed(message)
    return BackendUnavailable(message)


def _tidy(data: Mapping[str, Any], max_rows: int) -> tuple[dict[str, Any], int]:
    """The API's result as tidy rows (at most ``max_rows``) and the number of samples in all."""
    result_type = data.get("resultType")
    result = data.get("result")
    rows: list[dict[str, Any]] = []
    total = 0
    series = 0

    def add(labels: Mapping[str, str], sample: Sequence[Any]) -> None:
        nonlocal total
        total += 1
        if len(rows) < max_rows:
            rows.append({"labels": dict(labels), "timestamp": float(sample[0]), "value": _value(sample[1])})

    if result_type in ("scalar", "string") and isinstance(result, list):
        series = 1
        add({}, result)
    elif isinstance(result, list):
        for item in result:
            series += 1
            labels = item.get("metric") or {}
            for sample in item.get("values") or ([item["value"]] if "value" in item else []):
                add(labels, sample)
            # native histogram samples have no single value: counted, not shown
            total += len(item.get("histograms") or []) + (1 if "histogram" in item else 0)
    return {"result_type": result_type, "series": series, "rows": rows}, total


def _value(raw: Any) -> float | str:
    """Sample values arrive as text; ``NaN`` and ``±Inf`` stay text (JSON has no such numbers)."""
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return str(raw)
    return number if math.isfinite(number) else str(raw)


def to_frame(
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    service_label: str = "service",
    metric_label: str = "__name__",
    metric: str | None = None,
) -> pd.DataFrame:
    """A prometheus task's ``data`` (or its ``rows``) as a frame in the RCAEval layout.

    One row per timestamp: a ``time`` column (unix seconds) and one column per series, named
    ``<service>_<metric>`` from the series' labels — the service from ``service_label``, the
    metric from ``metric`` when given (for expressions, which lose ``__name__``) or else from
    ``metric_label``.

    Args:
        data: ``TaskResult.data`` of a prometheus task, or its ``rows``.
        service_label: the label that names the service (``service``, ``job``, ``app``...).
        metric_label: the label that names the metric (default ``__name__``).
        metric: a fixed metric name for every series, e.g. ``"latency-90"``.

    Returns:
        A frame sorted by ``time``; a series missing at a timestamp is NaN there.

    Raises:
        ValueError: a series lacks a label it is named from, or two series get the same name
            (aggregate them in PromQL, e.g. ``sum by (service) (...)``).
    """
    import pandas as pd

    rows = data.get("rows", []) if isinstance(data, Mapping) else data
    columns: dict[str, dict[float, float]] = {}
    owners: dict[str, dict[str, str]] = {}
    for row in rows:
        labels = row.get("labels") or {}
        service = labels.get(service_label)
        name = metric or labels.get(metric_label)
        if service is None or name is None:
            missing = service_label if service is None else metric_label
            raise ValueError(
                f"series {labels} has no {missing!r} label to name its column; pass service_label= or metric="
            )
        column = f"{service}_{name}"
        owner = owners.setdefault(column, labels)
        if owner != labels:
            raise ValueError(
                f"series {owner} and {labels} both map to column {column!r}; aggregate them in PromQL "
                f"(e.g. sum by ({service_label}) (...)) or choose other labels"
            )
        value = row.get("value")
        columns.setdefault(column, {})[float(row["timestamp"])] = float(value) if value is not None else math.nan
    frame = pd.DataFrame({name: pd.Series(points, dtype="float64") for name, points in sorted(columns.items())})
    frame = frame.sort_index()
    times = frame.index.to_numpy()
    frame.insert(0, "time", times.astype("int64") if len(times) and (times == times.round()).all() else times)
    return frame.reset_index(drop=True)
