"""The ``prometheus`` executor against a real Prometheus (Debian's package) over backfilled data."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from executors import CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from executors.prometheus import to_frame
from tests.environments import LOCAL_CONNECTIONS, write_environment
from tests.executor_servers import (
    PROMETHEUS_URL_VARIABLE,
    RunningPrometheus,
    prometheus_binaries,
    published,
)

pytestmark = pytest.mark.integration

ERROR_RATE = 'sum by (service) (rate(http_requests_total{code="500"}[1m]))'


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    if prometheus_binaries() is None:
        pytest.skip("prometheus is not installed: apt-get install -y prometheus (.ci/run does it)")
    server = RunningPrometheus(tmp_path_factory.mktemp("prometheus"))
    with published(PROMETHEUS_URL_VARIABLE, server.url):
        yield server
    server.close()


def run(agent: CloudAgent, command: str, **params: object):
    timeout = params.pop("timeout", 30)
    return agent.run({"type": "prometheus", "command": command, "params": params, "timeout": timeout}, actor="test")


def test_an_instant_query_returns_one_row_per_series(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    result = run(agent, "up")
    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.data["result_type"] == "vector"
    assert result.data["series"] == 3
    rows = sorted(result.data["rows"], key=lambda row: row["labels"]["job"])
    assert [row["labels"]["job"] for row in rows] == ["checkout-service", "order-service", "payment-service"]
    assert rows[0]["labels"] == {"__name__": "up", "instance": "checkout-service:8080", "job": "checkout-service"}
    assert all(row["value"] == 1.0 for row in rows)
    assert result.risk == "read"


def test_an_instant_query_at_a_past_time(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    now = run(agent, ERROR_RATE)
    hour_ago = run(agent, ERROR_RATE, time=prometheus.end - 3600)
    relative = run(agent, ERROR_RATE, time="now-1h")
    iso = run(agent, ERROR_RATE, time=datetime.fromtimestamp(prometheus.end - 3600, UTC).isoformat())

    def rate(result, service="payment-service"):
        return next(row["value"] for row in result.data["rows"] if row["labels"]["service"] == service)

    assert rate(now) == pytest.approx(5.0)
    for past in (hour_ago, relative, iso):
        assert rate(past) == pytest.approx(0.1)
    assert hour_ago.data["time"] == str(round(prometheus.end - 3600, 3)).rstrip("0").rstrip(".")


def test_a_range_query_over_the_last_half_hour(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    result = run(agent, ERROR_RATE, range="30m", step="60s", end=prometheus.end)
    assert result.ok, result.error
    assert result.data["result_type"] == "matrix"
    assert result.data["step"] == "60"
    assert result.data["series"] == 3
    payment = [row for row in result.data["rows"] if row["labels"]["service"] == "payment-service"]
    assert len(payment) == 31
    assert payment[0]["value"] == pytest.approx(0.1) and payment[-1]["value"] == pytest.approx(5.0)
    assert [row["timestamp"] for row in payment] == sorted(row["timestamp"] for row in payment)


def test_a_range_query_with_start_and_end_and_the_default_step(
    agent: CloudAgent, prometheus: RunningPrometheus
) -> None:
    start = datetime.fromtimestamp(prometheus.end - 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run(agent, "up", start=start, end="now")
    assert result.ok, result.error
    assert float(result.data["step"]) == math.ceil(3600 / 250)  # about 250 points
    assert result.data["series"] == 3


def test_the_spec_curl_range_query_as_a_task(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    # The spec collects metrics with curl 'http://localhost:9090/api/v1/query_range?query=up&start=..&end=..'.
    result = run(agent, "up", start=prometheus.end - 600, end=prometheus.end, step=15)
    assert result.ok, result.error
    assert len(result.data["rows"]) == 3 * 41


def test_to_frame_gives_the_rcaeval_layout(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    errors = run(agent, ERROR_RATE, range="30m", step="60s", end=int(prometheus.end))
    frame = to_frame(errors.data, metric="error-rate")
    assert list(frame.columns) == [
        "time",
        "checkout-service_error-rate",
        "order-service_error-rate",
        "payment-service_error-rate",
    ]
    assert len(frame) == 31
    assert frame["time"].dtype.kind == "i" and frame["time"].is_monotonic_increasing
    assert frame["payment-service_error-rate"].iloc[-1] == pytest.approx(5.0)

    memory = run(agent, "process_resident_memory_bytes", range="10m", step="30s", end=prometheus.end)
    columns = list(to_frame(memory.data).columns)
    assert columns[0] == "time" and "payment-service_process_resident_memory_bytes" in columns

    up = run(agent, "up")
    assert list(to_frame(up.data["rows"], service_label="job").columns) == [
        "time",
        "checkout-service_up",
        "order-service_up",
        "payment-service_up",
    ]


def test_to_frame_refuses_series_that_collide_or_lack_labels(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    by_code = run(agent, "http_requests_total")  # two series (200, 500) per service
    with pytest.raises(ValueError, match="aggregate them in PromQL"):
        to_frame(by_code.data)
    with pytest.raises(ValueError, match="no 'service' label"):
        to_frame(run(agent, "up").data)
    assert to_frame({"rows": []}).columns.tolist() == ["time"]


@pytest.fixture
def small_agent(config_dir: Path, state_dir: Path, prometheus: RunningPrometheus) -> Iterator[CloudAgent]:
    connections = {
        **LOCAL_CONNECTIONS,
        "prometheus": {
            **LOCAL_CONNECTIONS["prometheus"],
            "wrong-path": {"url": f"{prometheus.url}/no-such-prefix"},
        },
    }
    write_environment(config_dir, "small", agents=["agent-small-001"], limits={"max_rows": 50}, connections=connections)
    catalog = EnvironmentCatalog.load(config_dir, default_agent="agent-small-001")
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'small.sqlite3'}")) as running:
        yield running


def test_rows_beyond_max_rows_are_counted(small_agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    result = run(small_agent, "up", range="30m", step="15s", end=prometheus.end)
    assert result.ok, result.error
    assert len(result.data["rows"]) == 50
    assert result.truncated is True
    assert result.original_rows == 3 * 121


# -- failure modes: each a specific error, never a traceback ------------------------------------


def test_bad_promql_is_a_bad_query(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    result = run(agent, "sum(rate(http_requests_total[5m])")
    assert result.status is TaskStatus.FAILED
    assert result.error.code == "bad_query"
    assert "parse error" in result.error.message


def test_a_slow_query_is_stopped_at_the_timeout(agent: CloudAgent, prometheus: RunningPrometheus) -> None:
    result = run(agent, "max_over_time(rate(http_requests_total[5m])[2h:2ms])", timeout=1)
    assert result.status is TaskStatus.TIMED_OUT, result.error
    assert result.duration_ms < 3000


def test_an_unreachable_server_is_unreachable(agent: CloudAgent) -> None:
    result = run(agent, "up", connection="unreachable", timeout=5)
    assert result.error.code == "unreachable"
    assert "127.0.0.1:9" in result.error.message


def test_a_wrong_base_url_is_not_found(small_agent: CloudAgent) -> None:
    result = run(small_agent, "up", connection="wrong-path")
    assert result.error.code == "not_found"
    assert "base URL" in result.error.message


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"range": "30m", "start": 1}, "not both"),
        ({"range": "half an hour"}, "duration like"),
        ({"range": "30d", "step": "1s"}, "more than Prometheus allows"),
        ({"step": "1m"}, "belong to range queries"),
        ({"time": "yesterday"}, "unix seconds, RFC 3339"),
        ({"start": 200, "end": 100}, "before its end"),
        ({"rnage": "5m"}, "rnage"),
    ],
)
def test_malformed_requests_are_refused_before_anything_runs(agent: CloudAgent, params: dict, says: str) -> None:
    result = run(agent, "up", **params)
    assert result.error.code == "invalid_task"
    assert says in result.error.message
