"""Collection planning (what to ask which source around an alert) and reading the answers back."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models import Telemetry, Topology, detect
from models.playbook._collection_tasks import STARTUP_LIKE, STARTUP_MAX_LINES, STARTUP_PHRASES
from models.playbook.collection import (
    METRICS_HISTORY,
    LogsSource,
    MetricsSource,
    TelemetrySources,
    TracesSource,
    Window,
    evidence_from_results,
    failure_line,
    metrics_from_results,
    metrics_history,
    plan_error_context,
    plan_evidence,
    plan_follow_ups,
    plan_metrics,
)
from models.signals._deploys import STARTUP_LINE
from models.signals._detection import LATE_ALERT_LOOKBACK

WINDOW = Window(1_000.0, 1_600.0)
TOPOLOGY = Topology.from_dict(
    {
        "services": [
            {"name": "frontend", "health_url": "http://frontend/health", "namespace": "shop"},
            {"name": "checkout", "health_url": "http://checkout/health", "namespace": "shop"},
            {"name": "orders-db", "kind": "database", "engine": "postgres", "connection": "orders"},
            {"name": "ledger-db", "kind": "database", "engine": "mysql", "connection": "default"},
            {"name": "sessions", "kind": "cache", "connection": "cache"},
            {"name": "reports", "health_url": "http://reports/health"},
        ],
        "calls": [
            ["frontend", "checkout"],
            ["checkout", "orders-db"],
            ["checkout", "sessions"],
            ["reports", "ledger-db"],
        ],
    }
)


def sql_result(columns: list[str], rows: list[list[Any]], status: str = "succeeded") -> dict[str, Any]:
    return {
        "status": status,
        "data": {"result_sets": [{"statement": "q", "columns": columns, "rows": rows, "row_count": len(rows)}]},
    }


def test_metrics_reach_back_far_enough_for_a_change_found_by_the_late_alert_lookback() -> None:
    # A change 25 minutes before the alert: Prometheus fired after the rule's for: and rate window.
    step, alert = 15.0, 1_700_003_000.0
    change = alert - 1500
    evidence = Window.around(alert)
    metrics = evidence.with_history(alert, step)
    rng = np.random.default_rng(3)

    def scraped(window: Window) -> Telemetry:
        times = np.arange(window.start, window.end, step)
        columns = {f"{service}_cpu": 0.3 + 0.01 * rng.standard_normal(len(times)) for service in ("web", "api")}
        columns["db_latency"] = 0.02 + 0.001 * rng.standard_normal(len(times)) + np.where(times >= change, 0.2, 0.0)
        return Telemetry(metrics=pd.DataFrame({"time": times, **columns}))

    assert metrics.start == alert - METRICS_HISTORY and metrics.end == evidence.end
    assert METRICS_HISTORY >= LATE_ALERT_LOOKBACK + 300, "detection needs a normal period before the latest change"
    found = detect(scraped(metrics), alert_time=alert)
    assert found.is_anomaly and found.involved_services[0] == "db"
    assert abs(found.change_point - change) <= 2 * step
    # The evidence's 600 s before the alert start after the change: nothing in them changes.
    assert detect(scraped(evidence), alert_time=alert).involved_services[:1] != ["db"]


@pytest.mark.parametrize(("step", "seconds"), [(15.0, METRICS_HISTORY), (1.0, 1200.0), (0.1, 600.0)])
def test_the_metrics_history_is_capped_in_samples_and_never_shorter_than_the_evidence(step, seconds) -> None:
    assert metrics_history(step) == seconds
    assert Window.around(10_000.0).with_history(10_000.0, step) == Window(10_000.0 - seconds, 10_300.0)


def test_sql_metrics_are_one_bucketed_query_per_service_within_the_window() -> None:
    source = MetricsSource(type="postgres", connection="observability", table="obs.metrics", step_seconds=5)
    plan = plan_metrics(source, ["frontend", "o'brien"], WINDOW)

    assert [item.service for item in plan] == ["frontend", "o'brien"]
    first = plan[0].task
    assert first["type"] == "postgres" and first["params"] == {"connection": "observability"}
    assert "FROM obs.metrics WHERE service = 'frontend'" in first["command"]
    assert "to_timestamp(1000.000)" in first["command"] and "to_timestamp(1600.000)" in first["command"]
    assert "floor((EXTRACT(EPOCH FROM time)::float8) / 5) * 5" in first["command"]
    assert "service = 'o''brien'" in plan[1].task["command"]  # quoted, not injected


def test_a_table_name_that_is_not_plain_is_refused() -> None:
    with pytest.raises(ValueError, match="plain table name"):
        plan_metrics(MetricsSource(type="mysql", table="metrics; DROP TABLE x"), ["a"], WINDOW)


def test_promql_metrics_are_one_range_query_per_service_and_metric() -> None:
    source = MetricsSource(
        type="prometheus", queries={"cpu": 'rate(cpu{svc="{service}"}[1m])', "rps": 'rate(req{svc="{service}"}[1m])'}
    )
    plan = plan_metrics(source, ["frontend"], WINDOW)

    assert [item.task["command"] for item in plan] == ['rate(cpu{svc="frontend"}[1m])', 'rate(req{svc="frontend"}[1m])']
    assert plan[0].task["params"]["start"] == 1000.0 and plan[0].metric == "cpu"
    # only what the prometheus executor takes: it refuses any other parameter
    assert set(plan[0].task["params"]) == {"connection", "start", "end", "step"}


def test_metric_results_pivot_to_the_rcaeval_layout() -> None:
    source = MetricsSource(type="postgres")
    plan = plan_metrics(source, ["frontend", "checkout"], WINDOW)
    results = [
        sql_result(["t", "metric", "value"], [[1000, "cpu", 0.5], [1001, "cpu", 0.7], [1000, "latency-50", 12.0]]),
        sql_result([], [], status="failed"),
    ]
    frame = metrics_from_results(plan, results)

    assert list(frame.columns) == ["time", "frontend_cpu", "frontend_latency-50"]
    assert frame["time"].tolist() == [1000, 1001]
    assert frame["frontend_cpu"].tolist() == [0.5, 0.7]


def test_prometheus_rows_become_one_series_per_query() -> None:
    plan = plan_metrics(MetricsSource(type="prometheus", queries={"cpu": "q{service}"}), ["checkout"], WINDOW)
    rows = [
        {"labels": {"pod": "a"}, "timestamp": 1000, "value": "1"},
        {"labels": {"pod": "b"}, "timestamp": 1000, "value": "2"},  # several series: summed
        {"labels": {"pod": "a"}, "timestamp": 1015, "value": "4"},
    ]
    frame = metrics_from_results(plan, [{"status": "succeeded", "data": {"rows": rows}}])
    assert frame.set_index("time")["checkout_cpu"].to_dict() == {1000.0: 3.0, 1015.0: 4.0}


def test_evidence_plan_follows_the_involved_services_down_their_calls() -> None:
    sources = TelemetrySources(
        logs=LogsSource(type="postgres", table="logs"),
        traces=TracesSource(type="postgres", connection="tracing-db", table="traces"),
        kubernetes=True,
        host=True,
    )
    plan = plan_evidence(sources, TOPOLOGY, ["checkout"], WINDOW)
    labels = [item.label for item in plan]

    assert labels[:3] == ["error logs", "start-up logs", "error spans"]
    assert "sessions of orders-db" in labels and "sessions of ledger-db" not in labels  # reports is not involved
    assert {"INFO stats of sessions", "INFO memory of sessions"} <= set(labels)
    assert "health of checkout" in labels and "health of frontend" not in labels  # callers are not below it
    assert "pods in shop" in labels and "events in shop" in labels
    assert {"top", "disk and memory"} <= set(labels)
    db = next(item for item in plan if item.label == "sessions of orders-db")
    assert db.task["type"] == "postgres" and db.task["params"] == {"connection": "orders"}
    assert "pg_stat_activity" in db.task["command"] and "application_name" in db.task["command"]


def test_elasticsearch_sources_are_searched_with_date_ranges() -> None:
    sources = TelemetrySources(
        logs=LogsSource(type="elasticsearch", index="app-logs-*"),
        traces=TracesSource(type="elasticsearch", index="jaeger-span-*"),
    )
    logs, startup, spans = plan_evidence(sources, None, [], WINDOW)
    assert logs.task["params"]["index"] == "app-logs-*" and logs.task["params"]["operation"] == "search"
    assert logs.task["params"]["query"]["bool"]["must"][0]["range"]["@timestamp"]["gte"] == "1970-01-01T00:16:40Z"
    # start-up lines at any level, in a search of their own with its own cap
    phrases = startup.task["params"]["query"]["bool"]["should"]
    assert startup.task["params"]["index"] == "app-logs-*" and {"match_phrase": {"message": "listening on"}} in phrases
    assert startup.task["params"]["size"] == STARTUP_MAX_LINES < logs.task["params"]["size"]
    # error spans as Jaeger stores them: nested tags, or tags as fields
    error = spans.task["params"]["query"]["bool"]
    assert error["minimum_should_match"] == 1 and error["should"][0]["nested"]["path"] == "tags"
    assert {"term": {"tag.error": True}} in error["should"]


def test_the_cross_source_chain_follows_error_trace_ids_then_metrics_at_the_first_error() -> None:
    sources = TelemetrySources(
        metrics=MetricsSource(type="postgres"),
        logs=LogsSource(type="postgres"),
        traces=TracesSource(type="postgres"),
    )
    plan = plan_evidence(sources, TOPOLOGY, ["checkout"], WINDOW)
    listening = [1195.0, "checkout", "WARN", "Server listening on port 8080 after 2 retries", None]
    logs_rows = [
        listening,
        [1200.0, "checkout", "ERROR", "payment failed", "abc123"],
        [1210.0, "checkout", "WARN", "slow", "def456"],
        [1205.0, "frontend", "ERROR", "upstream 503", "x' OR '1'='1"],  # not an id: never queried
    ]
    startup_rows = [[1190.0, "checkout", "INFO", "Started CheckoutApplication in 3.9 seconds", None], listening]
    columns = ["time", "service", "level", "message", "trace_id"]
    results = [
        sql_result(columns, logs_rows),
        sql_result(columns, startup_rows),
        sql_result(["trace_id", "span_id", "parent", "service", "duration", "status", "time"], []),
    ]
    assert [item.label for item in plan[:3]] == ["error logs", "start-up logs", "error spans"]
    evidence = evidence_from_results(plan[:3], results, TOPOLOGY)
    # The warning that is also a start-up line came back from both logs tasks: it is one line.
    assert evidence.logs is not None and len(evidence.logs) == 5
    follow_ups = plan_follow_ups(sources, evidence.logs, WINDOW)

    assert len(follow_ups) == 1 and "trace_id IN ('abc123')" in follow_ups[0].task["command"]
    spans = sql_result(
        ["trace_id", "span_id", "parent", "service", "duration", "status", "time"],
        [
            ["abc123", "s1", None, "checkout", 900.0, "error", 1199.0],
            ["abc123", "s2", "s1", "orders-db", 850.0, "error", 1199.1],
        ],
    )
    traced = evidence_from_results(follow_ups, [spans], TOPOLOGY)
    context = plan_error_context(sources, evidence.logs, traced.traces)
    assert sorted(item.service for item in context) == ["checkout", "orders-db"]
    assert "to_timestamp(1140.000)" in context[0].task["command"]  # 60 s either side of 1200
    assert "to_timestamp(1260.000)" in context[0].task["command"]


def test_results_become_observations_and_failed_sources_are_listed() -> None:
    sources = TelemetrySources()
    plan = plan_evidence(sources, TOPOLOGY, ["checkout"], WINDOW)
    by_label = {item.label: item for item in plan}
    answers = {
        "sessions of orders-db": sql_result(
            ["pid", "application_name", "state", "seconds", "query", "max_connections"],
            [[1, "checkout", "active", 40.0, "SELECT pg_sleep(60)", 100], [2, "checkout", "idle", None, "", 100]],
        ),
        "INFO stats of sessions": {"status": "succeeded", "data": {"evicted_keys": 120, "keyspace_hits": 10}},
        "INFO memory of sessions": {"status": "succeeded", "data": {"used_memory": 900, "maxmemory": 1000}},
        "health of checkout": {
            "status": "failed",
            "data": {"status_code": 503, "elapsed_ms": 4.0},
            "error": {"code": "http_error", "message": "HTTP 503"},
        },
    }
    items = [by_label[label] for label in answers]
    evidence = evidence_from_results(items, list(answers.values()), TOPOLOGY)

    [db] = evidence.observations.db
    assert (db.service, db.long_running, db.max_connections) == ("orders-db", 1, 100)
    [cache] = evidence.observations.cache  # the two INFO sections of one cache, merged
    assert (cache.evicted_keys, cache.used_memory, cache.maxmemory) == (120, 900, 1000)
    [health] = evidence.observations.health
    assert health.status_code == 503 and not health.ok
    assert evidence.failures == []  # an unhealthy answer is evidence, not a failed source

    down = {"status": "failed", "data": None, "error": {"code": "unreachable", "message": "refused"}}
    broken = evidence_from_results(
        [by_label["sessions of orders-db"], by_label["health of checkout"]],
        [{"status": "timed_out", "error": {"code": "timed_out", "message": "t"}}, down],
    )
    assert broken.failures[0].startswith("sessions of orders-db: timed_out")
    assert broken.failures == [
        "sessions of orders-db: timed_out (timed_out: t)",
        "health of checkout: failed (unreachable: refused)",
    ]


def test_a_failed_source_line_carries_the_executors_reason_on_one_line() -> None:
    [item] = plan_metrics(MetricsSource(type="prometheus", queries={"cpu": "q"}), ["checkout"], WINDOW)
    message = "1 validation error for PrometheusParams\nmetric\n  Extra inputs are not permitted " + "x" * 600
    line = failure_line(item, {"status": "failed", "error": {"code": "invalid_task", "message": message}})

    assert line.startswith("metric cpu of checkout: failed (invalid_task: 1 validation error for PrometheusParams ")
    assert "\n" not in line and "metric Extra inputs are not permitted" in line
    assert len(line) < 500 and line.endswith("…)")


def _like(pattern: str, text: str) -> bool:
    """SQL's ``LIKE`` (``%`` only) on ``text`` lower-cased, as the logs query applies it."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("%"))), text.lower(), re.S) is not None


def _has_phrase(phrase: str, text: str) -> bool:
    """A search engine's ``match_phrase`` on ``text`` as its standard analyzer splits it into words."""
    return f" {phrase} " in " " + " ".join(re.findall(r"\w+", text.lower())) + " "


@pytest.mark.parametrize(
    "line",
    [
        "[main] c.s.Application - Started OrdersApplication in 14.2 seconds (process running for 15.1)",
        "Started application (pid 4242)",
        'msg="server listening" addr=":8080"',
        "Server listening on port 8080",
        "[INFO] Booting worker with pid: 8",
        "INFO:     Application startup complete.",
        "LOG:  database system is ready to accept connections",
        "* Ready to accept connections tcp",
        "/usr/sbin/mariadbd: ready for connections.",
    ],
)
def test_the_start_up_logs_asked_for_hold_every_start_up_line_the_analysis_reads(line: str) -> None:
    assert STARTUP_LINE.search(line)
    assert any(_like(pattern, line) for pattern in STARTUP_LIKE)
    assert any(_has_phrase(phrase, line) for phrase in STARTUP_PHRASES)


def test_requests_logged_as_started_are_not_asked_for_as_start_up_lines() -> None:
    line = 'Started GET "/orders/77" for 10.0.0.1 at 2026-12-07 09:00:00 +0000'
    assert not any(_like(pattern, line) for pattern in STARTUP_LIKE)
    assert not any(_has_phrase(phrase, line) for phrase in STARTUP_PHRASES)
