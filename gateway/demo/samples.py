"""Sample logs and spans for the one-machine default, so that the spec's Elasticsearch examples
answer on ``deployments/local`` (its OpenSearch-compatible server, osmem-server on 127.0.0.1:9200,
started by ``scripts/ensure-services.sh``).

The documents are dated relative to now (the spec's queries ask for ``now-1h``): seeding again
refreshes them under the same ids. Run it as ``python -m gateway.demo.samples URL``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

#: ``request(method, path, body)`` against the server; raises on an HTTP error.
Request = Callable[[str, str, Any], Any]

LOG_MAPPING = {
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
#: The spec's span example searches ``startTime`` with date math and ``tags.error`` as a field:
#: spans shaped that way (Jaeger's own storage keeps µs numbers and nested tags; the collection
#: planner reads that shape, see ``models.playbook.collection``).
SPAN_MAPPING = {
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
}
#: ``(minutes ago, level, service, message, trace id)``
LOGS = [
    (10, "ERROR", "payment-service", "connection pool exhausted: timeout waiting for connection", "t-1"),
    (30, "ERROR", "order-service", "upstream payment-service returned 503", "t-2"),
    (35, "ERROR", "payment-service", "connection pool exhausted: 50 of 50 in use", "t-3"),
    (180, "ERROR", "payment-service", "connection pool exhausted (yesterday's incident)", "t-4"),
    (5, "INFO", "payment-service", "health check ok", "t-5"),
    (20, "WARN", "checkout-service", "slow response from payment-service", "t-6"),
]
#: ``(trace id, span id, operation, minutes ago, duration µs, error, service)``
SPANS = [
    ("t-1", "s-1", "POST /pay", 12, 5_000_000, True, "payment-service"),
    ("t-2", "s-2", "GET /order", 28, 120_000, True, "order-service"),
    ("t-3", "s-3", "POST /pay", 40, 90_000, False, "payment-service"),
    ("t-4", "s-4", "POST /pay", 200, 4_000_000, True, "payment-service"),
]


def seed_samples(request: Request, now: datetime | None = None) -> None:
    """Write the sample logs (``app-logs-YYYY.MM.DD``) and spans (``jaeger-span-YYYY-MM-DD``)."""
    now = now or datetime.now(UTC)
    for day in sorted({(now - timedelta(minutes=minutes)).strftime("%Y.%m.%d") for minutes, *_ in LOGS}):
        _create_index(request, f"app-logs-{day}", LOG_MAPPING)
    for number, (minutes, level, service, message, trace) in enumerate(LOGS, start=1):
        at = now - timedelta(minutes=minutes)
        document: dict[str, Any] = {
            "@timestamp": _iso(at),
            "level": level,
            "service": service,
            "message": message,
            "trace_id": trace,
        }
        request("PUT", f"/app-logs-{at.strftime('%Y.%m.%d')}/_doc/log-{number}", document)
    span_index = f"jaeger-span-{now.strftime('%Y-%m-%d')}"
    _create_index(request, span_index, SPAN_MAPPING)
    for trace, span, operation, minutes, duration, error, service in SPANS:
        document = {
            "traceID": trace,
            "spanID": span,
            "operationName": operation,
            "startTime": _iso(now - timedelta(minutes=minutes)),
            "duration": duration,
            "process": {"serviceName": service},
            "tags": {"error": error},
        }
        request("PUT", f"/{span_index}/_doc/{span}", document)
    request("POST", "/_refresh", None)


def _create_index(request: Request, index: str, mapping: dict[str, Any]) -> None:
    try:
        request("PUT", f"/{index}", mapping)
    except Exception as exc:  # seeding again: the index is there already
        if "already_exists" not in str(exc) and "already exists" not in str(exc):
            raise


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def seed_server(base_url: str) -> None:
    """``seed_samples`` over plain JSON HTTP (what an OpenSearch-compatible server takes)."""
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=10, trust_env=False) as client:

        def request(method: str, path: str, body: Any) -> Any:
            response = client.request(method, path, json=body)
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
            return response.json() if response.content else None

        seed_samples(request)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gateway.demo.samples URL   (an OpenSearch-compatible server)", file=sys.stderr)
        return 2
    try:
        seed_server(argv[0])
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"samples: cannot seed {argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
