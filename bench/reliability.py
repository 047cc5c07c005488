"""Reliability and security, as one table: scenario, load, faults, bad inputs tried, results lost, result.

Each row is a scenario of ``tests/reliability/scenarios.py`` (the suite's tests run the same
functions, bounded, in CI), set up here the way the tests' fixtures set them up: the task API on
this machine's servers (reads only), private PostgreSQL/MariaDB/Redis instances for the faults, a
``cloud-agent worker`` and ``cloud-agent serve`` processes, a temporary Prefect server.

    .venv/bin/python bench/reliability.py --quick   # bounded, a few minutes: what CI can afford
    .venv/bin/python bench/reliability.py           # the issue's numbers: 1000 tasks x 50 clients, 50 cycles

Exits 1 when a scenario fails: results lost, a bypass, a secret leaked, a 5xx, or any problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# INFO, so that a cycle's logs reach the Prefect API and are searched for secrets (the console
# shows none of it: stderr goes to a file).
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))

from executors import AuditLog, open_audit_log  # noqa: E402
from tests.environments import LOCAL_CONNECTIONS, write_environment, write_test_environments  # noqa: E402
from tests.http_stubs import header_reflector  # noqa: E402
from tests.identities import APPROVER, OPERATOR, TOKENS, VIEWER  # noqa: E402
from tests.reliability import corpus, scenarios  # noqa: E402
from tests.reliability.scenarios import Outcome  # noqa: E402
from tests.servers import (  # noqa: E402
    CloudAgentProcess,
    PrivateMariaDB,
    PrivatePostgres,
    PrivateRedis,
    ServedGateway,
    free_port,
    wait_until,
)

AGENTS = ["agent-local-001", "agent-prod-001", "agent-staging-001"]
ROLE_TOKENS = {"viewer": VIEWER, "operator": OPERATOR, "approver": APPROVER}
SIZES = {
    #              tasks, clients, task-run tasks, task-run clients, cycles, schemathesis examples
    "quick": dict(tasks=300, clients=30, prefect_tasks=60, prefect_clients=10, cycles=4, examples=15),
    "full": dict(tasks=1000, clients=50, prefect_tasks=1000, prefect_clients=50, cycles=50, examples=50),
}


class Bench:
    """The set-ups of the scenarios: folders, environment variables, gateways, servers."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._saved: dict[str, str | None] = {}

    def setenv(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def restore_env(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()

    def fresh(self, name: str) -> tuple[Path, Path]:
        """A folder for one scenario: the test environments and an empty state folder, in use."""
        folder = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}"
        config = write_test_environments(folder / "deployments")
        state = folder / "state"
        self.setenv("CLOUD_AGENT_CONFIG_DIR", str(config))
        self.setenv("CLOUD_AGENT_STATE_DIR", str(state))
        return config, state

    @contextmanager
    def gateway(self, **settings: Any) -> Iterator[tuple[str, Any]]:
        """The task API in this process (uvicorn in a thread): its URL and app."""
        from gateway.app import create_app, serving
        from gateway.settings import GatewaySettings

        settings.setdefault("gateway_run_as", "engine")
        app = create_app(GatewaySettings(tokens=TOKENS, **settings))
        with serving(app) as url:
            yield url, app

    def audit(self, state: Path) -> AuditLog:
        return open_audit_log(f"sqlite:///{state / 'audit.sqlite3'}")


def run_scenarios(bench: Bench, sizes: dict[str, int], api_url: str, only: str | None = None) -> list[Outcome]:
    outcomes: list[Outcome] = []

    def row(name: str, scenario: Callable[[], Outcome]) -> None:
        if only is not None and only not in name:
            return
        started = time.perf_counter()
        print(f"  running {name} ...", end="", flush=True)
        try:
            outcome = scenario()
        except Exception as exc:  # a scenario that cannot run is a failed row, not a lost table
            outcome = Outcome(name, problems=[f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=6)])
        finally:
            bench.restore_env()
        print(f" {time.perf_counter() - started:.0f} s", flush=True)
        outcomes.append(outcome)

    # -- load ------------------------------------------------------------------------------------

    def task_load(run_as: str, tasks: int, clients: int) -> Outcome:
        _, state = bench.fresh("load")
        with bench.gateway(gateway_run_as=run_as, queue_per_agent=200) as (url, _):
            outcome = scenarios.task_load(url, OPERATOR, AGENTS, bench.audit(state), tasks=tasks, clients=clients)
        outcome.scenario += f" ({run_as})"
        return outcome

    row("load: tasks (engine)", lambda: task_load("engine", sizes["tasks"], sizes["clients"]))
    row("load: tasks (task-run)", lambda: task_load("task-run", sizes["prefect_tasks"], sizes["prefect_clients"]))

    telemetry = PrivatePostgres().start()
    try:
        from gateway.demo.scenario import prepared_incident

        with prepared_incident("errors", bench.workdir / "incident", postgres=telemetry.connection()) as incident:

            def incident_set_up(name: str) -> tuple[Path, Path]:
                config, state = bench.fresh(name)
                shutil.copytree(incident.config_dir / "local", config / "local", dirs_exist_ok=True)
                bench.setenv("CLOUD_AGENT_DISPATCH", "in-process")
                bench.setenv("CLOUD_AGENT_CYCLE_START", "in-process")
                bench.setenv("CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS", "5")
                return config / "local", state

            def cycle_load() -> Outcome:
                _, state = incident_set_up("cycles")
                with bench.gateway() as (url, _):
                    # Cycles queue for CLOUD_AGENT_MAX_CONCURRENT_CYCLES slots; 2 cores ended 49 of 50
                    # in 906 s (3.2 a minute), so the last one needs about 950 s.
                    timeout = 150.0 + sizes["cycles"] * 25.0
                    return scenarios.cycle_load(url, OPERATOR, incident.alert, bench.audit(state),
                                                cycles=sizes["cycles"], timeout=timeout)  # fmt: skip

            row("load: cycles", cycle_load)

            def sources_stopped() -> Outcome:
                local, _ = incident_set_up("stopped")
                with PrivatePostgres() as pg, PrivateMariaDB() as mariadb, PrivateRedis() as redis:
                    servers = {"postgres": pg, "mysql": mariadb, "redis": redis}
                    components = scenarios.bind_components_to(local, servers)
                    with bench.gateway() as (url, _):
                        return scenarios.cycle_with_sources_stopped(url, OPERATOR, incident.alert, servers, components)

            row("fault: sources stopped mid-collection", sources_stopped)

            def cycle_secrets() -> Outcome:
                local, state = incident_set_up("cycle-secrets")
                secrets = scenarios.new_secrets()
                for name, value in secrets.items():
                    bench.setenv(name, value)
                with header_reflector() as reflector, bench.gateway() as (url, _):
                    return scenarios.cycle_secrets(url, OPERATOR, incident.alert, local, incident.root_cause[0],
                                                   secrets, reflector, state)  # fmt: skip

            row("security: secrets in a cycle", cycle_secrets)
    finally:
        telemetry.close()

    # -- faults ----------------------------------------------------------------------------------

    def worker_killed(remote_as: str) -> Outcome:
        from gateway.dispatch import ensure_batch_deployment, work_pool

        config, _ = bench.fresh("worker")
        pool = f"bench-reliability-{uuid.uuid4().hex[:8]}"
        write_environment(config, "local", agents=["agent-local-001"], work_pool=pool)
        asyncio.run(ensure_batch_deployment("local", pool))
        env = {"PREFECT_API_URL": api_url, "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.05",
               "CLOUD_AGENT_CONFIG_DIR": str(config),
               "CLOUD_AGENT_STATE_DIR": str(config.parent / "worker-state")}  # fmt: skip
        slack, work_pool.RUN_SLACK_SECONDS = work_pool.RUN_SLACK_SECONDS, 2.0
        try:
            argv = ["worker", "--env", "local", "--poll-seconds", "0.1"]
            with CloudAgentProcess(argv, env, config.parent / "worker.log") as worker:
                wait_until(lambda: asyncio.run(_workers_on(pool)) > 0, what="no worker registered", timeout=120)
                settings = dict(dispatch="work-pool", gateway_remote_as=remote_as, gateway_poll_seconds=0.05,
                                pickup_grace_seconds=20)  # fmt: skip
                with bench.gateway(**settings) as (url, _):
                    return scenarios.worker_killed(url, OPERATOR, "agent-local-001", worker, remote_as=remote_as)
        finally:
            work_pool.RUN_SLACK_SECONDS = slack

    row("fault: worker killed (flow run)", lambda: worker_killed("flow-run"))
    row("fault: worker killed (task run)", lambda: worker_killed("task-run"))

    def stopped_mid_query() -> Outcome:
        config, _ = bench.fresh("mid-query")
        with PrivatePostgres() as pg, PrivateMariaDB() as mariadb, PrivateRedis() as redis:
            servers = {"postgres": pg, "mysql": mariadb, "redis": redis}
            connections = {kind: dict(named) for kind, named in LOCAL_CONNECTIONS.items()}
            for kind, server in servers.items():
                connections[kind]["private"] = {"url": server.url()} if kind == "redis" else server.connection()
            write_environment(config, "local", agents=["agent-local-001"], connections=connections)
            with bench.gateway() as (url, _):
                return scenarios.servers_stopped_mid_query(url, APPROVER, "agent-local-001", servers)

    row("fault: databases stopped mid-query", stopped_mid_query)

    def served_env(config: Path, state: Path, **extra: str) -> dict[str, str]:
        return {"CLOUD_AGENT_TOKENS": TOKENS, "CLOUD_AGENT_GATEWAY_RUN_AS": "engine",
                "CLOUD_AGENT_CONFIG_DIR": str(config), "CLOUD_AGENT_STATE_DIR": str(state), **extra}  # fmt: skip

    def gateway_restarted() -> Outcome:
        config, state = bench.fresh("restart")
        port = free_port()
        env = served_env(config, state, CLOUD_AGENT_SHUTDOWN_GRACE_SECONDS="0.5")
        started: list[ServedGateway] = []

        def start() -> ServedGateway:
            served = ServedGateway(env, state.parent / "gateway.log", port=port)
            started.append(served)
            return served.start()

        try:
            return scenarios.gateway_restarted(start, OPERATOR, "agent-local-001", bench.audit(state))
        finally:
            for served in started:
                served.close()

    row("fault: gateway restarted", gateway_restarted)

    def audit_down() -> Outcome:
        _, state = bench.fresh("audit-down")
        with PrivatePostgres() as store:
            bench.setenv("CLOUD_AGENT_AUDIT_URL", f"postgresql://postgres@127.0.0.1:{store.port}/test")
            with bench.gateway() as (url, _):
                return scenarios.audit_unavailable(url, ROLE_TOKENS, "agent-local-001", store, state.parent / "written")

    row("fault: audit store unavailable", audit_down)

    # -- bad input -------------------------------------------------------------------------------

    def bad(name: str, run: Callable[[str], Outcome]) -> Callable[[], Outcome]:
        def scenario() -> Outcome:
            bench.fresh("bad")
            bench.setenv("CLOUD_AGENT_CYCLE_START", "event")
            with bench.gateway() as (url, _):
                return run(url)

        return scenario

    row("bad input: tasks", bad("tasks", lambda url: scenarios.hostile_requests(
        url, OPERATOR, corpus.HOSTILE_TASKS, scenario="bad input: task requests")))  # fmt: skip
    row("bad input: alerts", bad("alerts", lambda url: scenarios.hostile_requests(
        url, OPERATOR, corpus.hostile_alerts(), scenario="bad input: alert payloads")))  # fmt: skip
    row(
        "bad input: WebSocket",
        bad("ws", lambda url: scenarios.hostile_websocket(url, VIEWER, corpus.HOSTILE_WS_MESSAGES)),
    )
    row("bad input: output", bad("output", lambda url: scenarios.hostile_output(url, OPERATOR, corpus.HOSTILE_OUTPUT)))

    def huge_output() -> Outcome:
        config, state = bench.fresh("huge")
        with ServedGateway(served_env(config, state), state.parent / "gateway.log") as served:
            return scenarios.huge_output(served.url, OPERATOR, served)

    row("bad input: 100 MB output", huge_output)

    def fuzz() -> Outcome:
        config, _ = bench.fresh("fuzz")
        write_environment(config, "local", agents=["agent-local-001"], policy={"max_risk": "read"},
                          limits={"max_timeout_seconds": 1, "max_output_bytes": 4096})  # fmt: skip
        bench.setenv("CLOUD_AGENT_CYCLE_START", "event")
        with bench.gateway() as (url, _):
            return scenarios.schemathesis_run(url, OPERATOR, config.parent, max_examples=sizes["examples"],
                                              time_limit=600)  # fmt: skip

    row("bad input: schemathesis", fuzz)

    # -- security --------------------------------------------------------------------------------

    def bypasses() -> Outcome:
        _, state = bench.fresh("bypass")
        with bench.gateway() as (url, _):
            return scenarios.bypass_corpus(url, ROLE_TOKENS, corpus.bypass_attempts(), bench.audit(state),
                                           state.parent / "ran")  # fmt: skip

    row("security: bypass attempts", bypasses)

    def planted() -> Outcome:
        config, state = bench.fresh("secrets")
        secrets = scenarios.new_secrets()
        with PrivateRedis(password=secrets["RCA_REDIS_ACCESS"]) as redis, header_reflector() as reflector:
            connections = scenarios.secret_connections(LOCAL_CONNECTIONS, redis.url("${RCA_REDIS_ACCESS}"))
            write_environment(config, "local", agents=["agent-local-001"], connections=connections)
            log = state.parent / "gateway.log"
            with ServedGateway(served_env(config, state, **secrets), log) as served:
                outcome = scenarios.planted_secrets(served.url, OPERATOR, {**secrets, "viewer": VIEWER,
                                                    "approver": APPROVER}, reflector,
                                                    files=sorted(state.glob("*.sqlite3*")), logs=[log])  # fmt: skip
        return outcome

    row("security: planted secrets", planted)

    def roles() -> Outcome:
        bench.fresh("roles")
        bench.setenv("CLOUD_AGENT_CYCLE_START", "event")
        with bench.gateway() as (url, app):
            alert = json.loads(corpus.SAMPLE_ALERT.read_text())
            return scenarios.roles_and_routes(url, ROLE_TOKENS, scenarios.served_routes(app), alert)

    row("security: tokens and roles", roles)

    def audit_log() -> Outcome:
        _, state = bench.fresh("audit")
        with bench.gateway() as (url, app), scenarios.api(url, OPERATOR) as http:
            for command in ("echo one", "echo two", "rm -rf /"):
                http.post("/api/v1/tasks", json={"type": "shell", "command": command})
            time.sleep(0.2)
            return scenarios.audit_unalterable(url, ROLE_TOKENS, scenarios.served_routes(app), bench.audit(state))

    row("security: audit log unalterable", audit_log)
    return outcomes


async def _workers_on(pool: str) -> int:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return len(await client.read_workers_for_work_pool(pool))


def print_table(outcomes: list[Outcome], mode: str, seconds: float) -> bool:
    print(f"\nReliability and security ({mode} run, {seconds:.0f} s, {os.cpu_count()} CPUs)\n")
    print(scenarios.table(outcomes))
    return all(o.passed for o in outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="bounded sizes (CI); without it, the issue's numbers")
    parser.add_argument("--only", metavar="TEXT", help="only the scenarios whose name contains TEXT ('load: cycles')")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    workdir = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    started = time.perf_counter()
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        print(f"{mode} run: {sizes}; working in {workdir}", flush=True)
        # Prefect's and uvicorn's warnings (a killed worker, refused connections) go to a file,
        # opened before the harness so that it closes after it: Prefect's log handlers keep the
        # stream they first saw and log as the harness's server stops.
        stderr_log = stack.enter_context((workdir / "stderr.log").open("w"))
        stack.enter_context(prefect_test_harness(server_startup_timeout=90))
        api_url = str(PREFECT_API_URL.value())
        stack.enter_context(contextlib.redirect_stderr(stderr_log))
        outcomes = run_scenarios(Bench(workdir), sizes, api_url, args.only)
        if not outcomes:
            print(f"no scenario's name contains {args.only!r}")
            return 2
        ok = print_table(outcomes, mode, time.perf_counter() - started)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
