"""Real servers (and recorded-API stand-ins) for the executor tests and ``bench/executors.py``.

Each starter returns a running server and stops it on ``close()``; the test modules wrap them in
session fixtures and publish the address through an environment variable that the test
connections (``tests/environments.py``) reference as ``${...}``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from osmem_server import OsmemServer

__all__ = ["OPENSEARCH_URL_VARIABLE", "published", "seed_opensearch", "start_opensearch", "stop_opensearch"]

OPENSEARCH_URL_VARIABLE = "CLOUD_AGENT_TEST_OPENSEARCH_URL"


@contextmanager
def published(variable: str, value: str) -> Iterator[None]:
    """``os.environ[variable] = value`` for the duration (session fixtures cannot monkeypatch)."""
    previous = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous


# -- OpenSearch API: osmem-server ---------------------------------------------------------------


def start_opensearch() -> OsmemServer:
    """An osmem-server (in-memory, OpenSearch-compatible) on a free port, seeded with log and span
    documents relative to now: errors 10 and 30 minutes old (inside ``now-1h``), one 3 hours old
    (outside), and some INFO lines. It exits with this process (``--parent-pid``).
    """
    server = OsmemServer.start(freeze=False, japanese=False)
    try:
        seed_opensearch(server)
    except Exception:
        server.close()
        raise
    return server


def stop_opensearch(server: OsmemServer) -> None:
    server.close()
    if server.process.stdout is not None:  # OsmemServer.close leaves its pipe open
        server.process.stdout.close()


def seed_opensearch(server: OsmemServer, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    log_mapping = {
        "mappings": {
            "properties": {
                "@timestamp": {"type": "date"},
                "level": {"type": "keyword"},
                "service": {"type": "keyword"},
                "message": {"type": "text"},
                "trace_id": {"type": "keyword"},
            }
        }
    }
    logs = [
        (10, "ERROR", "payment-service", "connection pool exhausted: timeout waiting for connection", "t-1"),
        (30, "ERROR", "order-service", "upstream payment-service returned 503", "t-2"),
        (35, "ERROR", "payment-service", "connection pool exhausted: 50 of 50 in use", "t-3"),
        (180, "ERROR", "payment-service", "connection pool exhausted (yesterday's incident)", "t-4"),
        (5, "INFO", "payment-service", "health check ok", "t-5"),
        (20, "WARN", "checkout-service", "slow response from payment-service", "t-6"),
    ]
    for day in {(now - timedelta(minutes=minutes)).strftime("%Y.%m.%d") for minutes, *_ in logs}:
        server.request("PUT", f"/app-logs-{day}", log_mapping)
    for number, (minutes, level, service, message, trace) in enumerate(logs, start=1):
        at = now - timedelta(minutes=minutes)
        document = {"@timestamp": _iso(at), "level": level, "service": service, "message": message, "trace_id": trace}
        server.request("PUT", f"/app-logs-{at.strftime('%Y.%m.%d')}/_doc/log-{number}", document)

    span_index = f"jaeger-span-{now.strftime('%Y-%m-%d')}"
    server.request(
        "PUT",
        f"/{span_index}",
        {
            "mappings": {
                "properties": {
                    "traceID": {"type": "keyword"},
                    "spanID": {"type": "keyword"},
                    "operationName": {"type": "keyword"},
                    "startTime": {"type": "date"},
                    "duration": {"type": "long"},
                    "process": {"properties": {"serviceName": {"type": "keyword"}}},
                    "tags": {"properties": {"error": {"type": "boolean"}}},
                }
            }
        },
    )
    spans = [
        ("t-1", "s-1", "POST /pay", 12, 5_000_000, True, "payment-service"),
        ("t-2", "s-2", "GET /order", 28, 120_000, True, "order-service"),
        ("t-3", "s-3", "POST /pay", 40, 90_000, False, "payment-service"),
        ("t-4", "s-4", "POST /pay", 200, 4_000_000, True, "payment-service"),
    ]
    for trace, span, operation, minutes, duration, error, service in spans:
        document = {
            "traceID": trace,
            "spanID": span,
            "operationName": operation,
            "startTime": _iso(now - timedelta(minutes=minutes)),
            "duration": duration,
            "process": {"serviceName": service},
            "tags": {"error": error},
        }
        server.request("PUT", f"/{span_index}/_doc/{span}", document)
    server.request("POST", "/_refresh")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
