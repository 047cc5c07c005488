"""The whole alert chain with real monitoring, up to the analysis.

A real fault — sessions stuck in transactions on this machine's PostgreSQL, and a private Redis
evicting keys — is scraped by Debian's exporters into Prometheus, fires an alert rule of
``deployments/examples/prometheus/rules.yml``, goes through Alertmanager to the project's webhook
(``POST /api/v1/alerts`` of the gateway, served here in-process), and starts a cycle whose
detection and collection read the real metrics from Prometheus through the prometheus executor
(the environment is ``deployments/examples/exporters``). The cycle's analysis must name the broken
component. Each step's time is printed: fault → alert firing → webhook received → run started →
analysis done.

The two faults run at the same time, each watched by a monitoring stack of its own (its own
Prometheus, Alertmanager and exporters), so that neither cycle sees the other's fault in its
history: the PostgreSQL case's cache is an idle private Redis, the Redis case's database a private
PostgreSQL. Both stacks need ~35 s of normal history before the faults (detection compares the
change with the half-minute before it).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.alerts import parse_alert_group
from flows.intake import wait_for_cycles
from gateway.app import create_app, serving
from gateway.demo.approver import answer_in_background
from gateway.settings import GatewaySettings
from tests.integration.monitoring import (
    EXAMPLES,
    TIME_SCALE,
    MonitoringStack,
    missing_binaries,
    report_hops,
    scaled,
    wait_for,
)
from tests.servers import PrivatePostgres, PrivateRedis

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow]

TOKEN = "alertmanager-operator-token-6d2f"
#: Seconds of normal history both Prometheus servers hold before the faults.
BASELINE_SECONDS = 36
#: The cycle of each fault, at most.
CYCLE_TIMEOUT = 240.0
FAULT_APPLICATION = "checkout"


class WebhookClock:
    """ASGI wrapper around the gateway: the time each webhook body arrived, with the body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.arrivals: list[tuple[float, dict[str, Any]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/v1/alerts":
            await self.app(scope, receive, send)
            return
        arrived = time.time()
        chunks: list[bytes] = []

        async def recording() -> Any:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                with contextlib.suppress(ValueError):
                    self.arrivals.append((arrived, json.loads(b"".join(chunks) or b"{}")))
            return message

        await self.app(scope, recording, send)

    def first(self, alertname: str, environment: str) -> tuple[float, dict[str, Any]] | None:
        for arrived, body in self.arrivals:
            labels = body.get("commonLabels", {})
            if labels.get("alertname") == alertname and labels.get("env") == environment:
                return arrived, body
        return None


# -- the faults -------------------------------------------------------------------------------------


class StuckTransactions:
    """Sessions of the checkout application holding transactions open on a PostgreSQL: half sit
    idle in their transaction, half are stuck in a long statement. Our own sessions, closed (and
    terminated by pid, should closing hang) when the fault ends."""

    def __init__(self, dsn: str, sessions: int = 12) -> None:
        self.dsn = dsn
        self.sessions = sessions
        self._connections: list[psycopg.Connection] = []
        self._pids: list[int] = []

    def start(self) -> float:
        for index in range(self.sessions):
            connection = psycopg.connect(self.dsn, application_name=FAULT_APPLICATION)
            self._pids.append(connection.info.backend_pid)
            connection.execute("SELECT 1")  # opens the transaction (no autocommit)
            if index % 2:
                # the statement never returns in time; its session is "active" with an old xact_start
                threading.Thread(target=_quietly, args=(connection, "SELECT pg_sleep(600)"), daemon=True).start()
            self._connections.append(connection)
        return time.time()

    def stop(self) -> None:
        if self._pids:
            with psycopg.connect(self.dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (self._pids,))
        for connection in self._connections:
            with contextlib.suppress(Exception):
                connection.close()
        self._connections.clear()
        self._pids.clear()


def _quietly(connection: psycopg.Connection, sql: str) -> None:
    with contextlib.suppress(Exception):  # terminated at the end of the fault
        connection.execute(sql)


class CacheTraffic:
    """An application reading and writing sessions in a Redis, steadily (~40 operations/s); the
    fault shrinks maxmemory to just above what the Redis holds and writes ~400 values of 1 KB per
    second, so keys are evicted."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self._stop = threading.Event()
        self._storm = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        index = 0
        payload = b"x" * 1024
        while not self._stop.is_set():
            index += 1
            if self._storm.is_set():
                pipe = self.client.pipeline(transaction=False)
                for offset in range(20):
                    pipe.set(f"session:{index}:{offset}", payload)
                pipe.execute()
                time.sleep(0.05)
            else:
                self.client.set(f"session:{index % 200}", payload)
                self.client.get(f"session:{(index * 7) % 250}")
                time.sleep(0.05)

    def evict(self) -> float:
        # a little above what it holds now: the writes overflow it within a second or two
        used = int(self.client.info("memory")["used_memory"])
        self.client.config_set("maxmemory-policy", "allkeys-lru")
        self.client.config_set("maxmemory", str(used + 256 * 1024))
        self._storm.set()
        return time.time()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.client.close()


# -- the environment ---------------------------------------------------------------------------------


def write_environment(
    root: Path, name: str, prometheus_url: str, redis_url: str, postgres: dict[str, Any], health_url: str
) -> None:
    """``deployments/examples/exporters`` as environment ``name``: its durations scaled like the
    monitoring stack's, its step the scaled scrape interval, its connections on this test's servers."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    source = EXAMPLES / "exporters"
    environment = yaml.safe_load(scaled((source / "environment.yaml").read_text()))
    environment["agents"] = [f"agent-{name}-001"]
    environment["work_pool"] = f"rca-{name}"
    metrics = environment["telemetry"]["metrics"]
    metrics["step_seconds"] = metrics["step_seconds"] / TIME_SCALE
    (folder / "environment.yaml").write_text(yaml.safe_dump(environment, sort_keys=False))
    topology = yaml.safe_load((source / "topology.yaml").read_text())
    for service in topology["services"]:
        if "health_url" in service:
            service["health_url"] = health_url
    (folder / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    connections = yaml.safe_load((source / "connections.yaml").read_text())
    connections["prometheus"]["default"] = {"url": prometheus_url}
    connections["redis"]["default"] = {"url": redis_url}
    connections["postgres"]["default"] = postgres
    connections["mysql"]["default"] = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
    (folder / "connections.yaml").write_text(yaml.safe_dump(connections, sort_keys=False))


# -- the chain ---------------------------------------------------------------------------------------


@dataclass
class Chain:
    """One fault's way from the fault to the analysis, with the time of each hop."""

    case: str
    environment: str
    alertname: str
    service: str
    stack: MonitoringStack
    fault_at: float = 0.0
    firing_at: float = 0.0
    webhook_at: float = 0.0
    run_created_at: float = 0.0
    run_started_at: float = 0.0
    analysis_done_at: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def hops(self) -> str:
        def after(moment: float, since: float) -> str:
            return f"{moment - since:5.1f} s" if moment and since else "    -"

        return (
            f"{self.case:>9}: fault → alert firing {after(self.firing_at, self.fault_at)} "
            f"→ webhook {after(self.webhook_at, self.firing_at)} "
            f"→ run created {after(self.run_created_at, self.webhook_at)} "
            f"→ started {after(self.run_started_at, self.run_created_at)} "
            f"→ analysis done {after(self.analysis_done_at, self.run_started_at)} "
            f"(fault → analysis {after(self.analysis_done_at, self.fault_at)})"
        )


def _history_seconds(stack: MonitoringStack) -> float:
    """Seconds of samples every target has in Prometheus (the scrape interval is 1 s)."""
    result = stack.prometheus.query("min(count_over_time(up[5m]))")
    return float(result[0]["value"][1]) if result else 0.0


def _finished_run(group_tag: str) -> Any:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[group_tag])), limit=5)
    done = [run for run in runs if run.state is not None and run.state.is_final()]
    return done[0] if done else None


def _follow(chain: Chain, clock: WebhookClock) -> None:
    """Wait for each hop of ``chain`` in turn and record when it happened."""
    chain.firing_at = chain.stack.wait_firing(chain.alertname, chain.service, timeout=60)
    chain.webhook_at, body = wait_for(
        lambda: clock.first(chain.alertname, chain.environment), what=f"the {chain.alertname} webhook", timeout=30
    )
    group = parse_alert_group(body)
    answer_in_background(group.group_tag, approve=False, approver="alert-chain-test", delay=0.1)
    run = wait_for(
        lambda: _finished_run(group.group_tag), what=f"the cycle of {chain.alertname}", timeout=CYCLE_TIMEOUT, every=0.5
    )
    chain.run_created_at = run.created.timestamp() if run.created else 0.0
    chain.run_started_at = run.start_time.timestamp() if run.start_time else 0.0
    if not run.state.is_completed():
        chain.problems.append(f"the cycle ended {run.state.name}: {run.state.message}")
        return
    chain.report = run.state.result()
    analyze = next((step for step in chain.report["timeline"] if step["name"] == "analyze"), None)
    if analyze and analyze.get("finished_at"):
        chain.analysis_done_at = datetime.fromisoformat(analyze["finished_at"]).timestamp()


@pytest.fixture(scope="module")
def chains(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Chain]]:
    missing = missing_binaries()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (.ci/run installs Debian's prometheus packages)")
    folder = tmp_path_factory.mktemp("alert-chain")
    state = folder / "state"
    config = folder / "deployments"
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "CLOUD_AGENT_CONFIG_DIR": str(config),
            "CLOUD_AGENT_STATE_DIR": str(state),
            "CLOUD_AGENT_TOKENS": f"alertmanager:operator:{TOKEN}",
            "CLOUD_AGENT_CYCLE_START": "in-process",
            "CLOUD_AGENT_DISPATCH": "in-process",
            "CLOUD_AGENT_AUTO_FIX_CONFIDENCE": "1",  # no fix runs by itself: PostgreSQL is shared
            # Cycles of later notifications nobody answers give up then (the module waits for them).
            "CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS": "15",
            "CLOUD_AGENT_APPROVAL_POLL_SECONDS": "1",
        }.items():
            patch.setenv(name, value)
        cache_of_postgres_case = stack.enter_context(PrivateRedis())
        cache_of_redis_case = stack.enter_context(PrivateRedis())
        postgres_of_redis_case = stack.enter_context(PrivatePostgres())
        local_postgres = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}
        cases = {
            "postgres": ("exporters", cache_of_postgres_case.url(), local_postgres),
            "redis": ("exporters-cache", cache_of_redis_case.url(), postgres_of_redis_case.connection()),
        }
        for environment, redis_url, postgres in cases.values():  # placeholders until the stacks run
            write_environment(config, environment, "http://127.0.0.1:9", redis_url, postgres, "http://127.0.0.1:9")

        clock = WebhookClock(create_app(GatewaySettings(gateway_run_as="engine")))
        gateway_url = stack.enter_context(serving(clock))  # type: ignore[arg-type]  # any ASGI app
        stack.callback(wait_for_cycles, 60)
        webhook = f"{gateway_url}/api/v1/alerts"

        chains: dict[str, Chain] = {}
        for case, (environment, redis_url, postgres) in cases.items():
            dsn = "postgresql://{user}@{host}:{port}/{dbname}?sslmode=disable".format(**postgres)
            monitoring = stack.enter_context(
                MonitoringStack(
                    webhook_url=webhook,
                    redis_url=redis_url,
                    postgres_dsn=dsn,
                    token=TOKEN,
                    environment=environment,
                    # Not the host's node exporter: both stacks and the cycles share this machine,
                    # whose CPU under test load fires HostHighCpu (15 min scaled to 1); the host
                    # is no component of the topology, and its rules are checked with promtool.
                    exporters=("postgres", "redis", "mysqld"),
                )
            )
            write_environment(
                config, environment, monitoring.prometheus.url, redis_url, postgres, f"{monitoring.service.url}/health"
            )
            alert, service = {
                "postgres": ("PostgresIdleInTransaction", "orders-db"),
                "redis": ("RedisEvictingKeys", "session-cache"),
            }[case]
            chains[case] = Chain(case, environment, alert, service, monitoring)

        traffic = CacheTraffic(cache_of_redis_case.url())
        traffic.start()
        stack.callback(traffic.stop)
        stuck = StuckTransactions("host=127.0.0.1 port=5432 dbname=test user=postgres")
        stack.callback(stuck.stop)
        for chain in chains.values():
            chain.stack.wait_scraping()
        wait_for(
            lambda: all(_history_seconds(c.stack) >= BASELINE_SECONDS for c in chains.values()),
            what=f"{BASELINE_SECONDS} s of history in both Prometheus servers",
            timeout=90,
            every=0.5,
        )

        chains["postgres"].fault_at = stuck.start()
        chains["redis"].fault_at = traffic.evict()
        followers = [threading.Thread(target=_follow, args=(chain, clock), daemon=True) for chain in chains.values()]
        for follower in followers:
            follower.start()
        for follower in followers:
            follower.join(CYCLE_TIMEOUT + 120)
        report_hops("alert chain hops (real fault → analysis):")
        for chain in chains.values():
            report_hops(chain.hops())
            ranked = [
                f"{h['component']}/{h['fault']} {h['confidence']:.2f}" for h in chain.report.get("hypotheses", [])
            ]
            print(f"{'':>11}ranked: {'; '.join(ranked[:3]) or '-'}")
        faults = min(chain.fault_at for chain in chains.values())
        for arrived, body in clock.arrivals:
            labels = body.get("commonLabels", {})
            print(
                f"  webhook at fault {arrived - faults:+6.1f} s: {labels.get('alertname')} "
                f"{labels.get('service')}@{labels.get('env')} ({len(body.get('alerts', []))} alerts)"
            )
        yield chains


def _check(chain: Chain) -> None:
    assert not chain.problems, chain.problems
    report = chain.report
    assert report, f"{chain.case}: no report (hops: {chain.hops()})"
    assert chain.fault_at < chain.firing_at < chain.webhook_at <= chain.run_started_at + 1 < chain.analysis_done_at + 1
    # The cycle read the real metrics through the executor: no metric task failed, and the
    # detection saw the fault in them.
    metric_failures = [line for line in report["collection"]["failures"] if line.startswith("metric ")]
    assert metric_failures == [], metric_failures
    assert report["collection"]["by_purpose"].get("metrics", 0) > 0
    assert report["detection"].get("is_anomaly"), report["detection"]
    assert chain.service in report["detection"]["involved_services"], report["detection"]
    assert report["hypotheses"], report["outcome"]
    top = [(h["component"], h["fault"], round(h["confidence"], 2)) for h in report["hypotheses"][:5]]
    assert report["hypotheses"][0]["component"] == chain.service, top


def test_stuck_postgres_transactions_are_alerted_and_analysed(chains: dict[str, Chain]) -> None:
    _check(chains["postgres"])


def test_redis_evictions_are_alerted_and_analysed(chains: dict[str, Chain]) -> None:
    _check(chains["redis"])
