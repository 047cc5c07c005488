"""A private monitoring chain for tests: Debian's Prometheus, Alertmanager and exporters.

Every process runs on a free port on 127.0.0.1, in a temporary folder, in a session of its own;
each class is a context manager that kills what it started. The configuration is the one users
copy — ``deployments/examples/prometheus/`` — with the exporters' addresses substituted and every
duration divided by ``TIME_SCALE`` (a 15 s scrape becomes 1 s, ``for: 1m`` becomes 4 s, a
``group_wait`` of 30 s becomes 2 s), so that an alert fires seconds after its fault.

Packages: ``apt-get install -y prometheus prometheus-alertmanager prometheus-postgres-exporter
prometheus-redis-exporter prometheus-mysqld-exporter prometheus-node-exporter`` (``.ci/run``).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

from tests.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deployments" / "examples"
#: The examples' durations are divided by this in tests.
TIME_SCALE = 15
BINARIES = {
    "prometheus": "prometheus",
    "promtool": "promtool",
    "alertmanager": "prometheus-alertmanager",
    "postgres": "prometheus-postgres-exporter",
    "redis": "prometheus-redis-exporter",
    "mysqld": "prometheus-mysqld-exporter",
    "node": "prometheus-node-exporter",
}
_DURATION = re.compile(r"\b(\d+)(ms|s|m|h|d)\b")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def missing_binaries() -> list[str]:
    """The Debian packages' binaries that are not installed."""
    return [binary for binary in BINARIES.values() if shutil.which(binary) is None]


def scaled(text: str, factor: int = TIME_SCALE) -> str:
    """Every Prometheus duration in ``text`` (``15s``, ``[1m]``, ``4h``) divided by ``factor``."""

    def shorter(match: re.Match[str]) -> str:
        seconds = int(match.group(1)) * _SECONDS[match.group(2)] / factor
        return f"{max(1, round(seconds))}s" if seconds >= 1 else f"{max(1, round(seconds * 1000))}ms"

    return _DURATION.sub(shorter, text)


class Daemon:
    """One server process of ours: argv, environment, a readiness URL; ``close`` kills its group."""

    def __init__(
        self, name: str, argv: list[str], *, port: int, ready_path: str, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.folder = Path(tempfile.mkdtemp(prefix=f"monitoring-{name}-"))
        self.log = self.folder / f"{name}.log"
        self._argv = argv
        self._env = {**os.environ, **(env or {})}
        self._ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._argv,
                env=self._env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(self.ready, what=f"{self.name} did not answer on {self.url}{self._ready_path}", timeout=30)
        return self

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + self._ready_path, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- exporters ---------------------------------------------------------------------------------------


def postgres_exporter(dsn: str = "postgresql://postgres@127.0.0.1:5432/test?sslmode=disable") -> Daemon:
    port = free_port()
    argv = [BINARIES["postgres"], f"--web.listen-address=127.0.0.1:{port}"]
    return Daemon("postgres-exporter", argv, port=port, ready_path="/metrics", env={"DATA_SOURCE_NAME": dsn})


def redis_exporter(url: str) -> Daemon:
    port = free_port()
    argv = [BINARIES["redis"], "-redis.addr", url, "-web.listen-address", f"127.0.0.1:{port}"]
    return Daemon("redis-exporter", argv, port=port, ready_path="/metrics")


def mysqld_exporter(host: str = "127.0.0.1", port: int = 3306, user: str = "root") -> Daemon:
    listen = free_port()
    argv = [BINARIES["mysqld"], f"--web.listen-address=127.0.0.1:{listen}"]
    env = {"DATA_SOURCE_NAME": f"{user}@({host}:{port})/"}
    return Daemon("mysqld-exporter", argv, port=listen, ready_path="/metrics", env=env)


def node_exporter() -> Daemon:
    port = free_port()
    # The default collectors minus the slow or noisy ones a test has no use for.
    argv = [
        BINARIES["node"], f"--web.listen-address=127.0.0.1:{port}",
        "--no-collector.arp", "--no-collector.btrfs", "--no-collector.infiniband", "--no-collector.ipvs",
        "--no-collector.nfs", "--no-collector.nfsd", "--no-collector.zfs", "--no-collector.xfs",
        "--no-collector.textfile",
    ]  # fmt: skip
    return Daemon("node-exporter", argv, port=port, ready_path="/metrics")


class InstrumentedService:
    """An HTTP service instrumented like a Prometheus client library does: ``/metrics`` with
    ``http_requests_total{code}`` and the ``http_request_duration_seconds`` histogram at a steady
    rate (20 requests/s, 1 % answered 500), and ``/health``."""

    def __init__(self) -> None:
        self.started = time.time()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = service.metrics().encode() if self.path == "/metrics" else b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, name="instrumented-service", daemon=True).start()

    def metrics(self) -> str:
        requests = 20.0 * (time.time() - self.started)
        errors = requests * 0.01
        fast = requests * 0.95
        return (
            "# TYPE http_requests_total counter\n"
            f'http_requests_total{{code="200"}} {requests - errors:.1f}\n'
            f'http_requests_total{{code="500"}} {errors:.1f}\n'
            "# TYPE http_request_duration_seconds histogram\n"
            f'http_request_duration_seconds_bucket{{le="0.1"}} {fast:.1f}\n'
            f'http_request_duration_seconds_bucket{{le="0.5"}} {requests:.1f}\n'
            f'http_request_duration_seconds_bucket{{le="+Inf"}} {requests:.1f}\n'
            f"http_request_duration_seconds_sum {requests * 0.06:.2f}\n"
            f"http_request_duration_seconds_count {requests:.1f}\n"
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- Prometheus and Alertmanager ------------------------------------------------------------------------


def prometheus_config(
    targets: Mapping[str, str], alertmanager: str, rules: Path, environment: str | None = None
) -> str:
    """The example ``prometheus.yml``, its durations scaled, each job scraping ``targets[job]``, the
    ``env`` label set to ``environment`` when given."""
    config = yaml.safe_load(scaled((EXAMPLES / "prometheus" / "prometheus.yml").read_text()))
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    unknown = sorted(set(targets) - set(jobs))
    if unknown:
        raise ValueError(f"no scrape job {unknown} in the example (jobs: {sorted(jobs)})")
    for name, job in jobs.items():
        job["static_configs"][0]["targets"] = [targets[name]] if name in targets else []
        for rule in job.get("relabel_configs", []):
            if rule.get("target_label") == "env" and environment is not None:
                rule["replacement"] = environment
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(webhook_url: str, token_file: Path | None) -> str:
    """The example ``alertmanager.yml``, its durations scaled, sending to ``webhook_url``."""
    config = yaml.safe_load(scaled((EXAMPLES / "prometheus" / "alertmanager.yml").read_text()))
    [webhook] = config["receivers"][0]["webhook_configs"]
    webhook["url"] = webhook_url
    if token_file is None:
        webhook.pop("http_config", None)
    else:
        webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return yaml.safe_dump(config, sort_keys=False)


class Prometheus(Daemon):
    def __init__(self, config: str, rules: str) -> None:
        port = free_port()
        super().__init__(
            "prometheus",
            [],
            port=port,
            ready_path="/-/ready",
        )
        (self.folder / "rules.yml").write_text(rules)
        (self.folder / "prometheus.yml").write_text(config.replace("__RULES__", str(self.folder / "rules.yml")))
        self._argv = [
            BINARIES["prometheus"], f"--config.file={self.folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]  # fmt: skip

    def query(self, promql: str) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        return list(reply["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"])

    def targets_up(self) -> dict[str, bool]:
        reply = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()
        return {t["labels"]["job"]: t["health"] == "up" for t in reply["data"]["activeTargets"]}


class Alertmanager(Daemon):
    def __init__(self, config: str) -> None:
        port = free_port()
        super().__init__("alertmanager", [], port=port, ready_path="/-/ready")
        (self.folder / "alertmanager.yml").write_text(config)
        self._argv = [
            BINARIES["alertmanager"], f"--config.file={self.folder / 'alertmanager.yml'}",
            f"--storage.path={self.folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=", "--log.level=warn",
        ]  # fmt: skip

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Received:
    at: float
    body: dict[str, Any]
    authorization: str | None


class WebhookReceiver:
    """An in-test Alertmanager receiver: keeps every POST with the time it arrived."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                receiver.received.append(Received(time.time(), body, self.headers.get("Authorization")))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/v1/alerts"
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()

    def first(self, alertname: str) -> Received | None:
        return next((r for r in self.received if r.body.get("commonLabels", {}).get("alertname") == alertname), None)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class MonitoringStack:
    """Exporters for a PostgreSQL, a Redis and a MariaDB, the host's node exporter, an instrumented
    service, Prometheus scraping them with the example configuration, and Alertmanager sending to
    ``webhook_url``. Use as a context manager; everything started is stopped on exit."""

    webhook_url: str
    redis_url: str
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test?sslmode=disable"
    token: str | None = None
    #: The ``env`` label of every series (the example's own when ``None``).
    environment: str | None = None
    #: The exporters to run; the example's other jobs get no target.
    exporters: tuple[str, ...] = ("postgres", "redis", "mysqld", "node")
    prometheus: Prometheus = field(init=False)
    alertmanager: Alertmanager = field(init=False)
    service: InstrumentedService = field(init=False)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, init=False)
    _targets: int = field(default=0, init=False)

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        exporters = {
            name: start()
            for name, start in {
                "postgres": lambda: postgres_exporter(self.postgres_dsn),
                "redis": lambda: redis_exporter(self.redis_url),
                "mysqld": mysqld_exporter,
                "node": node_exporter,
            }.items()
            if name in self.exporters
        }
        for exporter in exporters.values():
            self._stack.enter_context(exporter)
        self.service = InstrumentedService()
        self._stack.callback(self.service.close)
        token_file = None
        if self.token is not None:
            folder = Path(tempfile.mkdtemp(prefix="monitoring-token-"))
            self._stack.callback(shutil.rmtree, folder, ignore_errors=True)
            token_file = folder / "token"
            token_file.write_text(self.token)
        self.alertmanager = self._stack.enter_context(Alertmanager(alertmanager_config(self.webhook_url, token_file)))
        targets = {name: f"127.0.0.1:{exporter.port}" for name, exporter in exporters.items()}
        targets["services"] = f"127.0.0.1:{self.service.port}"
        rules = scaled((EXAMPLES / "prometheus" / "rules.yml").read_text())
        config = prometheus_config(targets, self.alertmanager.address, Path("__RULES__"), self.environment)
        self.prometheus = self._stack.enter_context(Prometheus(config, rules))
        self._targets = len(targets)

    def wait_scraping(self, timeout: float = 20.0) -> None:
        """Until every target has been scraped and is up (Prometheus hands new targets to its
        scrapers about 5 s after it starts)."""

        def all_up() -> bool:
            up = self.prometheus.targets_up()
            return len(up) == self._targets and all(up.values())

        wait_until(
            all_up, what=f"every target up in Prometheus ({self.prometheus.targets_up()})", timeout=timeout, every=0.2
        )

    def firing(self, alertname: str, service: str) -> bool:
        return any(
            alert["state"] == "firing"
            and alert["labels"].get("alertname") == alertname
            and alert["labels"].get("service") == service
            for alert in self.prometheus.alerts()
        )

    def wait_firing(self, alertname: str, service: str, timeout: float = 30.0) -> float:
        """The time the alert was first seen firing (polled every 0.1 s)."""
        wait_until(
            lambda: self.firing(alertname, service), what=f"{alertname} on {service} firing", timeout=timeout, every=0.1
        )
        return time.time()

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float, every: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} within {timeout:g} s")


#: Hop times of the chain tests, shown at the end of the run (a passing test's prints are captured).
HOP_LINES: list[str] = []


def report_hops(text: str) -> None:
    """Print ``text`` and keep it for the session's summary (``tests/integration/conftest.py``)."""
    print(text)
    HOP_LINES.extend(text.splitlines())
