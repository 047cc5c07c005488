"""Real servers (and recorded-API stand-ins) for the executor tests and ``bench/executors.py``.

Each starter returns a running server and stops it on ``close()``; the test modules wrap them in
session fixtures and publish the address through an environment variable that the test
connections (``tests/environments.py``) reference as ``${...}``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from osmem_server import OsmemServer

from gateway.demo.samples import seed_samples

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
    """The sample logs and spans of the one-machine default (``gateway.demo.samples``)."""
    seed_samples(lambda method, path, body: server.request(method, path, body), now)


# -- ClickHouse HTTP interface over chdb -------------------------------------------------------

CLICKHOUSE_PORT_VARIABLE = "CLOUD_AGENT_TEST_CLICKHOUSE_PORT"
CLICKHOUSE_PASSWORD_VARIABLE = "CLOUD_AGENT_TEST_CLICKHOUSE_PASSWORD"

# ClickHouse's own mapping of some exception codes to HTTP statuses (the rest are 500).
_CLICKHOUSE_HTTP_STATUS = {
    516: 401,
    192: 401,
    193: 401,
    194: 401,  # authentication
    164: 403,
    497: 403,  # READONLY, ACCESS_DENIED
    62: 400,
    27: 400,
    6: 400,
    36: 400,
    457: 400,  # syntax, parse, bad arguments, bad parameter
    60: 404,
    81: 404,
    46: 404,
    47: 404,  # unknown table, database, function, identifier
}
# URL parameters that belong to the HTTP transport, not to query settings.
_CLICKHOUSE_TRANSPORT_PARAMETERS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "quota_key",
        "compress",
        "decompress",
        "enable_http_compression",
        "http_zlib_compression_level",
        "wait_end_of_query",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "buffer_size",
        "client_protocol_version",
        "role",
        "http_response_buffer_size",
        "cancel_http_readonly_queries_on_client_close",
    }
)


class ClickHouseOverChdb:
    """A test fixture, not a ClickHouse server: the ClickHouse HTTP interface over chdb.

    No ClickHouse server can be had offline here (Debian's is from 2018, and clickhouse-connect
    cannot talk to it), but chdb *is* ClickHouse's engine, in-process. This serves enough of the
    HTTP interface for clickhouse-connect's HTTP client — the query in the ``query`` parameter
    and/or the body, settings and ``param_*`` bindings as URL parameters, basic or
    ``X-ClickHouse-User``/``X-ClickHouse-Key`` authentication, the result in the format the query
    names, and errors as ``Code: N. DB::Exception: ...`` with ``X-ClickHouse-Exception-Code`` —
    executing every request in its own chdb connection with its settings applied (``readonly``
    last, so a read-only request really is read-only). Compression, sessions and progress
    headers are not implemented; the client is told so by the absence of their headers.

    It shares the process's chdb engine (``:memory:``) with the executor's embedded mode, so a
    table created either way is seen both ways.
    """

    def __init__(self, user: str = "default", password: str = "") -> None:
        import http.server
        import threading

        import chdb

        self.user, self.password = user, password
        self.requests: list[dict[str, Any]] = []
        # chdb drops a :memory: engine with its last connection; this one keeps the data alive
        self._anchor = chdb.connect(":memory:")
        handler = _clickhouse_handler(self)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="clickhouse-over-chdb", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._anchor.close()

    def authenticate(self, headers: Any) -> bool:
        import base64

        user = headers.get("X-ClickHouse-User")
        key = headers.get("X-ClickHouse-Key", "")
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            user, _, key = base64.b64decode(authorization[6:]).decode().partition(":")
        return (user or "default") == self.user and key == self.password

    def execute(self, sql: str, settings: dict[str, str], bindings: dict[str, str], database: str | None) -> bytes:
        import chdb

        connection = chdb.connect(":memory:")
        try:
            if database:
                connection.query(f"USE {_identifier(database)}")
            # readonly goes last: once it is set no other setting may change, as on a real server
            for name, value in sorted(settings.items(), key=lambda item: item[0] == "readonly"):
                connection.query(f"SET {_identifier(name)} = {_literal(value)}")
            result = connection.query(sql, "TabSeparated", params=bindings)
            return bytes(result.bytes() or b"")
        finally:
            connection.close()


def _identifier(name: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not an identifier: {name!r}")
    return name


def _literal(value: str) -> str:
    import re

    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _clickhouse_handler(server: ClickHouseOverChdb) -> type:
    import http.server
    import re
    import uuid
    from urllib.parse import parse_qsl, urlsplit

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out as two writes: without this, Nagle + delayed ACK cost 40 ms each
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._handle(self.rfile.read(length) if length else b"")

        def _handle(self, body: bytes) -> None:
            url = urlsplit(self.path)
            if url.path == "/ping" or (url.path == "/" and not url.query and not body):
                self._reply(200, b"Ok.\n", {})
                return
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            sql = " ".join(part for part in (query.get("query", ""), body.decode()) if part)
            bindings = {key[6:]: value for key, value in query.items() if key.startswith("param_")}
            settings = {
                key: value
                for key, value in query.items()
                if key not in _CLICKHOUSE_TRANSPORT_PARAMETERS and not key.startswith("param_")
            }
            server.requests.append({"sql": sql, "settings": settings, "bindings": bindings})
            if not server.authenticate(self.headers):
                self._error(
                    516,
                    f"{self.headers.get('X-ClickHouse-User', 'default')}: Authentication failed: "
                    "password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
                )
                return
            try:
                payload = server.execute(sql, settings, bindings, query.get("database"))
            except Exception as exc:  # chdb reports "Code: N. DB::Exception: ..." in the message
                message = str(exc)
                found = re.search(r"Code: (\d+)\.", message)
                code = int(found.group(1)) if found else 1000
                words = re.sub(r"^(.*?Code: \d+\. DB::Exception: )+", "", message)
                words = re.sub(r" \(version [^)]*\)", "", words)
                self._error(code, re.sub(r"(\(\w+\))\. \1$", r"\1", words))  # chdb repeats the name
                return
            fmt = re.search(r"\bFORMAT\s+(\w+)\s*$", sql, re.IGNORECASE)
            self._reply(
                200,
                payload,
                {
                    "Content-Type": "application/octet-stream" if fmt else "text/tab-separated-values; charset=UTF-8",
                    "X-ClickHouse-Format": fmt.group(1) if fmt else "TabSeparated",
                    "X-ClickHouse-Timezone": "UTC",
                    "X-ClickHouse-Query-Id": query.get("query_id") or str(uuid.uuid4()),
                    "X-ClickHouse-Summary": '{"read_rows":"0","read_bytes":"0","written_rows":"0",'
                    '"written_bytes":"0","total_rows_to_read":"0","result_rows":"0","result_bytes":"0"}',
                },
            )

        def _error(self, code: int, message: str) -> None:
            text = f"Code: {code}. DB::Exception: {message.strip()} (version test-over-chdb)\n"
            self._reply(
                _CLICKHOUSE_HTTP_STATUS.get(code, 500),
                text.encode(),
                {"X-ClickHouse-Exception-Code": str(code), "Content-Type": "text/plain; charset=UTF-8"},
            )

        def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# -- Prometheus: Debian's package, backfilled with promtool ------------------------------------

PROMETHEUS_URL_VARIABLE = "CLOUD_AGENT_TEST_PROMETHEUS_URL"
#: Services and their per-second 5xx rates in the backfilled data (payment-service degrades).
PROMETHEUS_SERVICES = ("payment-service", "order-service", "checkout-service")
PROMETHEUS_STEP_SECONDS = 15
PROMETHEUS_HISTORY_SECONDS = 2 * 3600


def prometheus_binaries() -> tuple[str, str] | None:
    """``(prometheus, promtool)`` when both are installed (``apt-get install prometheus``)."""
    import shutil

    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    return (prometheus, promtool) if prometheus and promtool else None


def prometheus_openmetrics(end: float) -> str:
    """Two hours of samples every 15 s up to ``end`` (unix seconds), as OpenMetrics text.

    Per service: a request counter by status code (``http_requests_total``), resident memory
    (``process_resident_memory_bytes``) and ``up``. payment-service's errors and memory climb over
    the last 20 minutes: the incident the tests look for.
    """
    lines = ["# TYPE http_requests counter"]
    steps = PROMETHEUS_HISTORY_SECONDS // PROMETHEUS_STEP_SECONDS
    start = int(end) - steps * PROMETHEUS_STEP_SECONDS
    # samples of a family must be grouped by series and in time order
    for service in PROMETHEUS_SERVICES:
        for code in ("200", "500"):
            count = 0.0
            for step in range(steps + 1):
                at = start + step * PROMETHEUS_STEP_SECONDS
                per_second = 10.0 if code == "200" else _error_rate(service, end - at)
                count += per_second * PROMETHEUS_STEP_SECONDS
                lines.append(f'http_requests_total{{service="{service}",code="{code}"}} {count:.1f} {at}')
    lines.append("# TYPE process_resident_memory_bytes gauge")
    for service in PROMETHEUS_SERVICES:
        for step in range(steps + 1):
            at = start + step * PROMETHEUS_STEP_SECONDS
            megabytes = 200 + (300 * (1 - (end - at) / 1200) if service == "payment-service" and end - at < 1200 else 0)
            lines.append(f'process_resident_memory_bytes{{service="{service}"}} {megabytes * 1024 * 1024:.0f} {at}')
    lines.append("# TYPE up gauge")
    for service in PROMETHEUS_SERVICES:
        for step in range(steps + 1):
            at = start + step * PROMETHEUS_STEP_SECONDS
            lines.append(f'up{{job="{service}",instance="{service}:8080"}} 1 {at}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _error_rate(service: str, age_seconds: float) -> float:
    if service == "payment-service" and age_seconds < 1200:
        return 5.0
    return 0.1


class RunningPrometheus:
    """A ``prometheus`` process we started on a free port over backfilled data; ``close`` stops it.

    The data are ``prometheus_openmetrics(end)`` unless ``samples`` (OpenMetrics text) is given.
    """

    def __init__(self, workdir: Any, end: float | None = None, samples: str | None = None) -> None:
        import subprocess
        import time
        from pathlib import Path

        binaries = prometheus_binaries()
        if binaries is None:
            raise RuntimeError("prometheus and promtool are not installed (apt-get install prometheus)")
        prometheus, promtool = binaries
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
        self.end = end if end is not None else time.time()
        samples_file = folder / "samples.om"
        samples_file.write_text(samples if samples is not None else prometheus_openmetrics(self.end))
        data = folder / "data"
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(samples_file), str(data)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        config = folder / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n")  # nothing scraped: the data are fixed
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=3650d",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready(deadline=time.monotonic() + 30)
        except Exception:
            self.close()
            raise

    def _wait_ready(self, deadline: float) -> None:
        import time

        import httpx

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus did not get ready on {self.url}; see {self._log.name}")

    def close(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                # a graceful stop waits for queries still running (a timed-out test's): not for long
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- Kubernetes API: recorded responses (contract tests) ---------------------------------------

K8S_URL_VARIABLE = "CLOUD_AGENT_TEST_K8S_URL"
K8S_RECORDINGS = __import__("pathlib").Path(__file__).parent / "data" / "k8s_recordings"


class RecordedKubernetesAPI:
    """A local HTTP server answering Kubernetes API requests with recorded responses.

    No API server can be had offline (no kube-apiserver, kind, k3s, kwok or envtest binaries), so
    the ``k8s`` executor is contract-tested: the unmodified official client talks HTTP to this
    server, which answers from ``tests/data/k8s_recordings/`` — real API object shapes (PodList, EventList,
    Deployment, Status...) chosen by ``routes.json`` — and keeps every request it got (method,
    path, query, body) so tests can check what the client sent. It has no state: a PATCH is
    answered with the recorded object, not with the patched one.
    """

    def __init__(self, recordings: Any = K8S_RECORDINGS) -> None:
        import http.server
        import json
        import threading
        from pathlib import Path

        self.folder = Path(recordings)
        self.routes: list[dict[str, Any]] = json.loads((self.folder / "routes.json").read_text())["routes"]
        self.requests: list[dict[str, Any]] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _kubernetes_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="recorded-k8s-api", daemon=True)
        self._thread.start()

    def answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        import time

        for route in self.routes:
            if route["method"] != method or route["path"] != path:
                continue
            wanted = route.get("query_contains", {})
            if all(fragment in query.get(key, "") for key, fragment in wanted.items()):
                time.sleep(route.get("delay_seconds", 0))
                body = (self.folder / route["file"]).read_bytes()
                return route.get("status", 200), route.get("content_type", "application/json"), body
        return 404, "application/json", (self.folder / "status-404-no-route.json").read_bytes()

    def requests_to(self, path: str, method: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and (method is None or r["method"] == method)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _kubernetes_handler(api: RecordedKubernetesAPI) -> type:
    import http.server
    import json
    from urllib.parse import parse_qsl, urlsplit

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out as two writes: without this, Nagle + delayed ACK cost 40 ms each
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
            api.requests.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": query,
                    "body": body,
                    "content_type": self.headers.get("Content-Type"),
                    "authorization": self.headers.get("Authorization"),
                }
            )
            status, content_type, payload = api.answer(self.command, url.path, query)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Audit-Id", "00000000-0000-4000-8000-000000000000")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
