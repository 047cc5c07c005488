"""The production chain end to end, every part a real process (issue 13).

A real fault on this machine's PostgreSQL — sessions stuck in their transactions — is scraped by
Debian's postgres exporter into a private Prometheus (``tests.integration.monitoring``: the
example configuration, its durations scaled), fires ``PostgresIdleInTransaction``, and goes
through Alertmanager to ``cloud-agent serve`` (a subprocess, ``CLOUD_AGENT_CYCLE_START=event``,
Alertmanager's bearer token). Serve emits the alert event; the trigger of the ``rca-incident/alert``
deployment (created by ``prefect deploy`` from ``prefect.yaml``, as ``make deploy`` does) starts a
run on the control pool, which ``cloud-agent worker --pool rca-control`` runs; its collection and
verification batches run on ``cloud-agent worker --env <env>`` (``CLOUD_AGENT_DISPATCH=work-pool``).
The run must rank orders-db first from the real metrics, pause for the fix, be approved through
serve's ``POST /api/v1/incidents/{id}/approve``, terminate the stuck sessions (checked in
``pg_stat_activity``) and report the fix as verified (``fixed``). Each hop's time is printed.

The Prefect server is this test's own, on a database of its own on the local PostgreSQL (as in
production; the session's SQLite server answers 503 under this chain's load, and every retry costs
seconds). The PostgreSQL is shared with other test runs: the stuck sessions and the agent's connection use a
role of this test's own (created and dropped here), so the fix — ``pg_terminate_backend`` of the
sessions its evidence saw — cannot reach anyone else's sessions (PostgreSQL lets a plain role end
its own sessions only, and hides other roles' statements from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.alerts import ALERT_EVENT
from flows.worker import CloudAgentWorker
from gateway.dispatch import ensure_batch_deployment
from tests.integration.monitoring import MonitoringStack, missing_binaries, report_hops, wait_for
from tests.integration.test_alert_chain import BASELINE_SECONDS, StuckTransactions, _history_seconds, write_environment
from tests.servers import PrivatePostgres, PrivateRedis, free_port

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ALERTMANAGER_TOKEN = f"alertmanager-{secrets.token_hex(8)}"
APPROVER_TOKEN = f"approver-{secrets.token_hex(8)}"
ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
ALERT, SERVICE = "PostgresIdleInTransaction", "orders-db"
CONTROL_POOL = "rca-control"


@dataclass
class Hops:
    """When each hop happened (epoch seconds)."""

    fault: float = 0.0
    firing: float = 0.0
    webhook: float = 0.0
    run_started: float = 0.0
    ranked: float = 0.0
    paused: float = 0.0
    approved: float = 0.0
    fix_done: float = 0.0
    verified: float = 0.0

    def lines(self) -> str:
        names = ["fault", "firing", "webhook", "run_started", "ranked", "paused", "approved", "fix_done", "verified"]
        labels = {
            "firing": "alert firing",
            "webhook": "webhook received",
            "run_started": "flow run started",
            "ranked": "root cause ranked",
            "paused": "approval paused",
            "fix_done": "fix done",
        }
        out, previous = [], self.fault
        for name in names:
            moment = getattr(self, name)
            since_fault = f"{moment - self.fault:6.1f} s" if moment and self.fault else "     -"
            step = f"(+{moment - previous:5.1f} s)" if moment and previous else ""
            out.append(f"  {labels.get(name, name):>18}: {since_fault} after the fault {step}")
            previous = moment or previous
        return "\n".join(out)


class Process:
    """A ``cloud-agent`` subprocess of this test, its output in a file; killed with its group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {self.output()}")
        return True

    def output(self, tail: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                self.process.wait()


@contextlib.contextmanager
def private_role() -> Iterator[str]:
    """A login role of this test on the shared PostgreSQL; its sessions ended and it dropped after."""
    role = f"rca_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            wait_for(lambda: not _sessions(role, admin), what=f"the sessions of {role} ending", timeout=20)
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def _sessions(role: str, admin: psycopg.Connection | None = None) -> list[tuple[int, str]]:
    """``(pid, state)`` of the role's sessions, as the superuser sees them."""
    sql = "SELECT pid, coalesce(state, '') FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()"
    if admin is not None:
        return admin.execute(sql, (role,)).fetchall()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        return connection.execute(sql, (role,)).fetchall()


@contextlib.contextmanager
def prefect_server_on_postgres(folder: Path) -> Iterator[str]:
    """``prefect server start`` on a free port, its database on a PostgreSQL of its own, as
    production runs it: a SQLite server answers 503 ("database is locked") under this chain's
    writers on two busy cores, and each retry costs seconds. Not on the shared PostgreSQL the
    chain monitors: a loaded Prefect server's sessions sit idle in their transactions while it
    awaits, and the exporter counted them as the monitored server's, a noisy baseline in which
    the fault looked like no change (seen in CI: outcome no_anomaly). Its API URL."""
    with PrivatePostgres() as postgres:
        database = f"rca_e2e_prefect_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env.update({
            "PREFECT_HOME": str(folder / "prefect-server-home"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
                f"postgresql+asyncpg://postgres@127.0.0.1:{postgres.port}/{database}"
            ),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "DO_NOT_TRACK": "1",
        })  # fmt: skip
        server = Process(
            "prefect-server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env,
            folder / "prefect-server.log",
        )
        try:
            wait_for(
                lambda: server.alive() and _healthy(api), what="the Prefect server answering", timeout=120, every=0.2
            )
            yield api
        finally:
            server.close()


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _prefect_deploy_alert(prefect_api: str, log: Path) -> None:
    """What ``make deploy`` does for the cycle: the control pool, then ``prefect deploy`` of
    ``rca-incident/alert`` from prefect.yaml (with its event trigger and concurrency limit)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(CONTROL_POOL)
        except Exception:
            client.create_work_pool(
                WorkPoolCreate(
                    name=CONTROL_POOL,
                    type="cloud-agent",
                    base_job_template=CloudAgentWorker.get_default_base_job_template(),
                )
            )
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "CLOUD_AGENT_HOME": str(ROOT)}
    deployed = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "alert"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    log.write_text(deployed.stdout + deployed.stderr)
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]


def _worker_ready(process: Process, pool: str) -> bool:
    return process.alive() and _workers_on(pool)


def _workers_on(pool: str) -> bool:
    with get_client(sync_client=True) as client:
        return bool(client.read_workers_for_work_pool(pool))


def _incident_runs(tag: str | None = None) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=50)}
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])) if tag else None, limit=50
        )
    return [run for run in runs if flows.get(run.flow_id) == "rca-incident"]


def _first_started_run(group_tag: str) -> FlowRun | None:
    """The group's first run once it has started: a later notification of the group (Alertmanager
    sends one when another alert joins it) starts a run that only answers ``duplicate``."""
    runs = sorted(_incident_runs(group_tag), key=lambda r: r.created.timestamp() if r.created else float("inf"))
    return runs[0] if runs and runs[0].start_time else None


def _alert_event(api: str, environment: str) -> tuple[float, str] | None:
    """When serve emitted the alert event of our group (it does so on receiving the webhook), and
    the group's tag."""
    answer = httpx.post(
        f"{api}/events/filter",
        json={"filter": {"event": {"name": [ALERT_EVENT]}, "order": "ASC"}, "limit": 50},
        timeout=10,
    )
    if answer.status_code != 200:
        return None
    for event in answer.json().get("events", []):
        alert = (event.get("payload") or {}).get("alert") or {}
        labels = alert.get("commonLabels") or {}
        if labels.get("alertname") == ALERT and labels.get("env") == environment:
            from flows.alerts import parse_alert_group

            return datetime.fromisoformat(event["occurred"]).timestamp(), parse_alert_group(alert).group_tag
    return None


def _batch_end(environment: str, step: str) -> float:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"{step}@{environment}"])), limit=5
        )
    ends = [run.end_time.timestamp() for run in runs if run.end_time is not None]
    return max(ends) if ends else 0.0


def _step_end(report: dict[str, Any], name: str) -> float:
    step = next((s for s in report["timeline"] if s["name"] == name), None)
    return datetime.fromisoformat(step["finished_at"]).timestamp() if step and step.get("finished_at") else 0.0


def test_a_real_fault_is_alerted_diagnosed_approved_fixed_and_verified(tmp_path: Path) -> None:
    missing = missing_binaries()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (.ci/run installs Debian's prometheus packages)")
    began = time.monotonic()
    environment = f"e2e{uuid.uuid4().hex[:6]}"
    pool = f"rca-{environment}"
    config = tmp_path / "deployments"
    hops = Hops()
    with contextlib.ExitStack() as stack:
        role = stack.enter_context(private_role())
        cache = stack.enter_context(PrivateRedis())  # the idle session-cache of the topology
        postgres = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": role}
        port = free_port()
        serve_url = f"http://127.0.0.1:{port}"
        monitoring = stack.enter_context(
            MonitoringStack(
                webhook_url=f"{serve_url}/api/v1/alerts",
                redis_url=cache.url(),
                token=ALERTMANAGER_TOKEN,
                environment=environment,
                exporters=("postgres", "redis", "mysqld"),  # not the host's: see test_alert_chain
            )
        )
        # While Prometheus gathers its history: the Prefect server, the deployments, the processes.
        prefect_api = stack.enter_context(prefect_server_on_postgres(tmp_path))
        stack.enter_context(temporary_settings({PREFECT_API_URL: prefect_api}))
        write_environment(
            config, environment, monitoring.prometheus.url, cache.url(), postgres, f"{monitoring.service.url}/health"
        )

        # The processes of production, all against that Prefect server.
        common = {
            key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_API", "CLOUD_AGENT_"))
        }
        common.update({
            "PREFECT_API_URL": prefect_api,
            "PREFECT_LOGGING_LEVEL": "INFO",  # into each process's log file
            "PYTHONPATH": str(ROOT),
            "CLOUD_AGENT_CONFIG_DIR": str(config),
            "CLOUD_AGENT_DISPATCH": "work-pool",
            "CLOUD_AGENT_APPROVAL_KEY": secrets.token_hex(32),  # the gateway and the control worker sign alike
            "CLOUD_AGENT_URL": serve_url,
            "CLOUD_AGENT_AUTO_FIX_CONFIDENCE": "1",  # the fix waits for a person, whatever its risk
            "CLOUD_AGENT_APPROVAL_TIMEOUT_SECONDS": "120",
            "CLOUD_AGENT_APPROVAL_POLL_SECONDS": "1",
            "CLOUD_AGENT_FIX_SETTLE_SECONDS": "2",
            "CLOUD_AGENT_DISPATCH_POLL_SECONDS": "0.1",
        })  # fmt: skip
        cli = str(BIN / "cloud-agent")

        def start(name: str, argv: list[str], **extra: str) -> Process:
            state = tmp_path / f"state-{name}"
            process = Process(
                name, argv, {**common, "CLOUD_AGENT_STATE_DIR": str(state), **extra}, tmp_path / f"{name}.log"
            )
            stack.callback(process.close)
            return process

        asyncio.run(ensure_batch_deployment(environment, pool))
        _prefect_deploy_alert(prefect_api, tmp_path / "prefect-deploy.log")
        serve = start(
            "serve",
            [cli, "serve", "--port", str(port)],
            CLOUD_AGENT_CYCLE_START="event",
            CLOUD_AGENT_TOKENS=f"alertmanager:operator:{ALERTMANAGER_TOKEN},boss:approver:{APPROVER_TOKEN}",
        )
        control = start("control-worker", [cli, "worker", "--pool", CONTROL_POOL, "--poll-seconds", "0.2"])
        near = start("env-worker", [cli, "worker", "--env", environment, "--poll-seconds", "0.2"])
        stack.callback(_cancel_unfinished_incidents)  # before the workers stop
        wait_for(lambda: serve.alive() and _answers(serve_url), what="cloud-agent serve answering", timeout=90)
        # The webhook takes Alertmanager's bearer token, and nothing without one.
        assert httpx.post(f"{serve_url}/api/v1/alerts", json={}, timeout=10).status_code == 401
        for process, on in ((control, CONTROL_POOL), (near, pool)):
            wait_for(
                functools.partial(_worker_ready, process, on),
                what=f"the worker on {on}",
                timeout=120,
                every=0.5,
            )

        monitoring.wait_scraping()
        wait_for(
            lambda: _history_seconds(monitoring) >= BASELINE_SECONDS,
            what=f"{BASELINE_SECONDS} s of history in Prometheus",
            timeout=90,
            every=0.5,
        )
        print(f"\nset up in {time.monotonic() - began:.1f} s")

        # -- the fault and the chain ---------------------------------------------------------------
        # The exporter counts every session of the shared server: another run's stuck transactions
        # would fire the alert before our fault and make its times meaningless.
        assert not monitoring.firing(ALERT, SERVICE), f"{ALERT} fires before the fault: the shared PostgreSQL is busy"
        stuck = StuckTransactions(f"host=127.0.0.1 port=5432 dbname=test user={role}")
        stack.callback(stuck.stop)
        hops.fault = stuck.start()
        stuck_pids = {pid for pid, _ in _sessions(role)}
        assert len(stuck_pids) == stuck.sessions, stuck_pids

        hops.firing = monitoring.wait_firing(ALERT, SERVICE, timeout=60)
        hops.webhook, group_tag = wait_for(
            lambda: _alert_event(prefect_api, environment), what="serve emitting the alert event", timeout=30
        )
        run = wait_for(
            lambda: _first_started_run(group_tag),
            what=f"the trigger's run of {group_tag} starting on the control worker",
            timeout=60,
            every=0.2,
        )
        assert run.deployment_id is not None and run.work_pool_name == CONTROL_POOL, run
        hops.run_started = run.start_time.timestamp()

        def paused_or_done() -> FlowRun | None:
            serve.alive()
            control.alive()
            current = _read_run(run.id)
            return current if current.state and (current.state.is_paused() or current.state.is_final()) else None

        waiting = wait_for(paused_or_done, what="the cycle pausing for the fix", timeout=240, every=0.2)
        hops.paused = time.time()
        assert waiting.state.is_paused(), _why_not_paused(waiting, control)

        with httpx.Client(base_url=serve_url, headers={"Authorization": f"Bearer {APPROVER_TOKEN}"}) as http:
            answer = http.post(f"/api/v1/incidents/{run.id}/approve", json={"reason": "end-to-end test"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"] == "approved" and answer.json()["decided_by"] == "boss", answer.text
        hops.approved = time.time()

        finished = wait_for(
            lambda: (r := _read_run(run.id)).state and r.state.is_final() and r, what="the cycle ending", timeout=180
        )
        assert finished.state.is_completed(), f"{finished.state.name}: {finished.state.message}\n{control.output()}"
        report: dict[str, Any] = finished.state.result()
        hops.ranked = _step_end(report, "analyze")
        hops.fix_done = _batch_end(environment, "fix")
        hops.verified = _batch_end(environment, "verify-fix")

        report_hops(f"production chain hops ({environment}, flow run {run.id}):\n{hops.lines()}")
        ranked = [f"{h['component']}/{h['fault']} {h['confidence']:.2f}" for h in report["hypotheses"][:3]]
        print(f"  ranked: {'; '.join(ranked)}")
        print(f"  outcome: {report['outcome']}; fix: {report['fix'] and report['fix'].get('verification')}")
        print(f"  steps: {', '.join(_step_line(step) for step in report['timeline'])}")
        for line in _batch_lines(environment, hops.fault):
            print(line)

        # The diagnosis, from the real metrics read through the environment's worker.
        assert [f for f in report["collection"]["failures"] if f.startswith("metric ")] == []
        assert report["collection"]["by_purpose"].get("metrics", 0) > 0
        assert report["detection"].get("is_anomaly") and SERVICE in report["detection"]["involved_services"]
        assert report["hypotheses"][0]["component"] == SERVICE, ranked
        # The fix: approved through the API by the approver token's name, checked; applied; verified.
        fix = report["fix"]
        assert fix["decision"] == "approved" and fix["decided_by"] == "boss", fix
        assert fix["decided_through"] == "task-api" and fix["identity_verified"] is True, fix
        assert fix["suggestion"]["action"] == "terminate_long_queries", fix["suggestion"]
        assert fix["worked"] is True and report["outcome"] == "fixed", (report["outcome"], fix)
        # ... and the stuck sessions really ended.
        wait_for(
            lambda: not {pid for pid, _ in _sessions(role)} & stuck_pids,
            what=f"the stuck sessions ending (left: {_sessions(role)})",
            timeout=10,
        )
        assert hops.fault < hops.firing < hops.webhook <= hops.run_started + 1 < hops.ranked + 1
        assert hops.ranked < hops.paused < hops.approved < hops.fix_done <= hops.verified
        print(f"  wall time of the test: {time.monotonic() - began:.1f} s")


def _batch_lines(environment: str, since: float) -> list[str]:
    """The environment's batch runs: created → started → ended, in seconds after ``since``."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"environment:{environment}"])), limit=50
        )

    def at(moment: datetime | None) -> str:
        return f"{moment.timestamp() - since:6.1f}" if moment else "     -"

    return [
        f"  batch {run.name:>28}: created {at(run.created)} started {at(run.start_time)} ended {at(run.end_time)}"
        for run in sorted(runs, key=lambda r: r.created.timestamp() if r.created else 0.0)
    ]


def _why_not_paused(run: FlowRun, control: Process) -> str:
    """What the cycle decided instead of asking for the fix: its outcome, ranking and suggestion."""
    assert run.state is not None
    told = f"the cycle ended {run.state.name}: {run.state.message}"
    try:
        report: dict[str, Any] = run.state.result()
    except Exception as exc:
        return f"{told}; no report ({type(exc).__name__}: {exc})\n{control.output()[-4000:]}"
    ranked = [f"{h['component']}/{h['fault']} {h['confidence']:.2f}" for h in report.get("hypotheses", [])[:5]]
    return (
        f"{told}; outcome {report.get('outcome')} ({report.get('stopped_because')}); ranked {ranked}; "
        f"verifications {report.get('verifications')}; fixes {report.get('fixes')}; fix {report.get('fix')}; "
        f"detection {report.get('detection')}; collection failures {report.get('collection', {}).get('failures')}; "
        f"notes {report.get('notes')}"
    )


def _step_line(step: dict[str, Any]) -> str:
    if not step.get("finished_at"):
        return step["name"]
    seconds = datetime.fromisoformat(step["finished_at"]) - datetime.fromisoformat(step["started_at"])
    return f"{step['name']} {seconds.total_seconds():.1f} s"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _read_run(flow_run_id: Any) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def _cancel_unfinished_incidents() -> None:
    """Other alert groups of the fault may have started cycles still waiting: cancel them before
    their workers stop."""
    from prefect.states import Cancelled

    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        for run in _incident_runs():
            if run.state is not None and not run.state.is_final():
                client.set_flow_run_state(run.id, Cancelled(), force=True)
