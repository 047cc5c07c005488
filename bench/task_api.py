"""The task API's cost: round trips through it, throughput, and how fast each Prefect dispatch is.

(a) p50/p99 of a sync ``echo`` task through the API (an in-process server, an httpx client) for each
    in-process way of running it (bare engine, Prefect task run, ``execute-batch`` flow run) and
    through an environment's ``CloudAgentWorker`` (work pool), against running it directly on the
    engine: ratio and overhead in ms. Targets (issue 6): p50 overhead <= 50 ms in-process and
    <= 500 ms through a worker.
(b) 1000 async tasks from 50 concurrent clients: all finish, none lost or duplicated; throughput,
    for each in-process way of running them.
(c) Round trip of a one-task dispatch without the API: bare engine, in-process task run and flow
    run, ``CloudAgentWorker`` (``run_deployment``), Prefect's process worker, and a Prefect
    background task worker (``task.delay()`` + ``prefect.task_worker.serve``).
(d) How live ``/ws`` is: the delay from a line being printed to its arrival at a WebSocket
    subscriber, for each in-process way of running a task (the tests only check that each line
    arrives before the next is printed).

Needs a Prefect API: ``PREFECT_API_URL``, or a temporary local server is started (SQLite). Workers
run as subprocesses of this script.

    .venv/bin/python bench/task_api.py [--runs 100] [--tasks 1000] [--clients 50] [--skip-process-worker]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import httpx  # noqa: E402

from tests.environments import write_environment  # noqa: E402

TOKEN = "bench-operator-token"
ECHO = {"type": "shell", "command": "echo ok", "timeout": 30}
WORKER_POOL = "bench-local"
PROCESS_POOL = "bench-process"
#: What a worker subprocess needs: fast polling and log batches, so lines and states come back quickly.
WORKER_ENV = {"PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.05", "PREFECT_LOGGING_LEVEL": "INFO"}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def measure(action: Callable[[], Any], runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def row(name: str, samples: list[float], direct_p50: float | None = None) -> None:
    p50, p99 = percentiles(samples)
    extra = ""
    if direct_p50 is not None:
        extra = f"{p50 - direct_p50:>13.1f}{p50 / direct_p50:>7.1f}x"
    print(f"  {name:<44}{p50:>9.1f}{p99:>9.1f}{extra}", flush=True)


# -- set-up -------------------------------------------------------------------------------------


@contextmanager
def prefect_server() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield str(PREFECT_API_URL.value())
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


@contextmanager
def subprocess_worker(argv: list[str], api_url: str, wait: float) -> Iterator[None]:
    """A worker in its own process (as in production), given ``wait`` seconds to get ready."""
    env = {**os.environ, **WORKER_ENV, "PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(wait)
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}: {argv}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lane_worker(api_url: str) -> Any:
    """What ``cloud-agent worker --env local`` runs beside its pool: environment local's task runs."""
    code = "import asyncio; from flows.task_lane import serve_environment_tasks as s; asyncio.run(s('local'))"
    return subprocess_worker([sys.executable, "-c", code], api_url, wait=6)


def cloud_agent_worker(api_url: str) -> Any:
    code = (
        f"import asyncio; from flows.worker import serve_pool; "
        f"asyncio.run(serve_pool({WORKER_POOL!r}, poll_seconds=0.1))"
    )
    return subprocess_worker([sys.executable, "-c", code], api_url, wait=6)


async def deploy_process_pool() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from flows.batch import execute_batch

    async with get_client() as client:
        with suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=PROCESS_POOL, type="process"))
        flow_id = await client.create_flow(execute_batch)
        await client.create_deployment(
            flow_id,
            "local-process",
            work_pool_name=PROCESS_POOL,
            entrypoint="flows/batch.py:execute_batch",
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
        )


def gateway(run_as: str, dispatch: str = "in-process", remote_as: str = "flow-run") -> Any:
    from gateway.app import create_app, serving
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(
        gateway_run_as=run_as,
        dispatch=dispatch,
        tokens=f"bench:operator:{TOKEN}",
        queue_per_agent=2000,
        gateway_poll_seconds=0.05,
        gateway_remote_as=remote_as,
    )
    return serving(create_app(settings))


def api_client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)


def sync_echo(http: httpx.Client) -> None:
    response = http.post("/api/v1/tasks", json=ECHO)
    body = response.json()
    if response.status_code != 200 or body["status"] != "succeeded":
        raise RuntimeError(f"echo through the API: {response.status_code} {body}")


# -- (a) round trips ----------------------------------------------------------------------------


def paired(direct: Callable[[], Any], through: Callable[[], Any], runs: int) -> tuple[list[float], list[float]]:
    """Alternate the two, so that both see the same machine load (other work on a shared box)."""
    direct_ms, through_ms = [], []
    for action in (direct, through, direct, through):
        action()
    for _ in range(runs):
        direct_ms += measure(direct, 1, warmup=0)
        through_ms += measure(through, 1, warmup=0)
    return direct_ms, through_ms


def round_trips(runs: int, api_url: str) -> None:
    from flows.runtime import engine
    from gateway.dispatch import ensure_batch_deployment

    def direct() -> None:
        with engine() as agent:
            agent.run(ECHO, actor="bench")

    print(
        f"\n(a) sync echo round trip, {runs} runs each, alternating with a direct run (client and server in "
        "this process)"
    )
    print(f"  {'path':<44}{'p50 ms':>9}{'p99 ms':>9}{'overhead ms':>13}{'ratio':>8}")
    for run_as in ("engine", "task-run", "flow-run"):
        with gateway(run_as) as url, api_client(url) as http:
            direct_ms, api_ms = paired(direct, lambda http=http: sync_echo(http), runs)
        row(f"direct: CloudAgent.run (paired with {run_as})", direct_ms)
        row(f"API, in-process {run_as}", api_ms, percentiles(direct_ms)[0])
    asyncio.run(ensure_batch_deployment("local", WORKER_POOL))
    with cloud_agent_worker(api_url), gateway("flow-run", "work-pool") as url, api_client(url) as http:
        direct_ms, api_ms = paired(direct, lambda: sync_echo(http), max(10, runs // 4))
    row("direct: CloudAgent.run (paired with work pool)", direct_ms)
    row("API, work pool (CloudAgentWorker, poll 0.1 s)", api_ms, percentiles(direct_ms)[0])
    with lane_worker(api_url), gateway("flow-run", "work-pool", "task-run") as url, api_client(url) as http:
        direct_ms, api_ms = paired(direct, lambda: sync_echo(http), max(10, runs // 4))
    row("direct: CloudAgent.run (paired with task lane)", direct_ms)
    row("API, environment worker's task lane", api_ms, percentiles(direct_ms)[0])


# -- (b) throughput -----------------------------------------------------------------------------


def throughput(run_as: str, tasks: int, clients: int) -> None:
    per_client = tasks // clients
    with gateway(run_as) as url:
        refused = 0
        lock = threading.Lock()

        def submit(client_no: int) -> list[tuple[str, str]]:
            nonlocal refused
            sent = []
            with api_client(url) as http:
                for n in range(per_client):
                    word = f"c{client_no}-t{n}"
                    while True:
                        response = http.post(
                            "/api/v1/tasks", json={"type": "shell", "command": f"echo {word}", "sync": False}
                        )
                        if response.status_code != 429:
                            break
                        with lock:
                            refused += 1
                        time.sleep(float(response.headers.get("retry-after", "1")))
                    if response.status_code != 202:
                        raise RuntimeError(f"submit: {response.status_code} {response.text}")
                    sent.append((response.json()["id"], word))
            return sent

        since = datetime.now(UTC).isoformat()
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            sent = [pair for batch in pool.map(submit, range(clients)) for pair in batch]
        submitted = time.perf_counter() - start
        with api_client(url) as http:

            def unfinished(status: str) -> int:
                params = {"status": status, "limit": 1, "since": since}
                return int(http.get("/api/v1/tasks", params=params).json()["total"])

            while unfinished("pending") + unfinished("running"):
                time.sleep(0.2)
            elapsed = time.perf_counter() - start
            records = 0
            for offset in range(0, tasks + 500, 500):
                records += len(
                    http.get("/api/v1/tasks", params={"limit": 500, "offset": offset, "since": since}).json()["items"]
                )
        with ThreadPoolExecutor(8) as pool, api_client(url) as http:
            views = list(pool.map(lambda pair: http.get(f"/api/v1/tasks/{pair[0]}").json(), sent))
    ids = [task_id for task_id, _ in sent]
    outputs = sorted(view["result"]["output"] for view in views if view["status"] == "succeeded")
    for view in views:
        if view["status"] != "succeeded":
            print(f"    not succeeded: {view['id']} {view['status']} {view['error']}")
    expected = sorted(f"{word}\n" for _, word in sent)
    print(
        f"  {run_as:<10} {len(ids):>5} submitted in {submitted:5.1f} s, all done in {elapsed:5.1f} s: "
        f"{len(ids) / elapsed:6.1f} tasks/s | unique ids {len(set(ids))}, records {records}, "
        f"succeeded with their own output {outputs == expected} ({len(outputs)}), 429s {refused}",
        flush=True,
    )


# -- (c) dispatch comparison --------------------------------------------------------------------


def dispatches(runs: int, api_url: str, process_worker: bool) -> None:
    from prefect import tags
    from prefect.context import SyncClientContext
    from prefect.deployments import run_deployment

    from contract import PlannedTask
    from flows.batch import execute_batch
    from flows.prefect_internals import without_flow_heartbeats
    from flows.runtime import engine
    from flows.tasks import run_executor_task

    print(f"\n(c) one-task dispatch round trip, no API ({runs} runs; workers: {max(5, runs // 5)}, process worker: 3)")
    print(f"  {'dispatch':<44}{'p50 ms':>9}{'p99 ms':>9}")
    item = PlannedTask(label="echo ok", task=ECHO)
    with engine() as agent:
        row("bare engine (CloudAgent.run)", measure(lambda: agent.run(ECHO, actor="bench"), runs))
    with SyncClientContext():
        named = run_executor_task.with_options(task_run_name="shell: echo ok@local")
        row("in-process Prefect task run", measure(lambda: named(ECHO, "bench"), runs))
        batch = execute_batch.with_options(persist_result=False)

        def flow_run() -> None:
            with without_flow_heartbeats(), tags("bench"):
                batch("local", [item], "bench")

        row("in-process execute-batch flow run", measure(flow_run, runs))

    parameters = {"environment": "local", "items": [item.model_dump()], "actor": "bench"}

    def deployment_run(name: str) -> Callable[[], None]:
        def run() -> None:
            flow_run = run_deployment(name, parameters=parameters, timeout=120, poll_interval=0.05)
            if not (flow_run.state and flow_run.state.is_completed()):
                raise RuntimeError(f"{name}: {flow_run.state}")

        return run

    with cloud_agent_worker(api_url):
        row(
            "CloudAgentWorker (run_deployment, poll 0.1 s)",
            measure(deployment_run("execute-batch/local"), max(5, runs // 5), warmup=2),
        )
    if process_worker:
        asyncio.run(deploy_process_pool())
        prefect_cli = str(Path(sys.executable).parent / "prefect")
        with subprocess_worker(
            [prefect_cli, "worker", "start", "--pool", PROCESS_POOL, "--type", "process"], api_url, wait=8
        ):
            row(
                "Prefect process worker (run_deployment)",
                measure(deployment_run("execute-batch/local-process"), 3, warmup=1),
            )
    background = run_executor_task.with_options(persist_result=True)
    code = (
        "from prefect.task_worker import serve; from flows.tasks import run_executor_task as t; "
        "serve(t.with_options(persist_result=True))"
    )

    def delay_and_wait() -> None:
        future = background.delay(ECHO, "bench")
        deadline = time.monotonic() + 60
        while True:
            try:
                future.result(timeout=60)
                return
            except RuntimeError:  # "has no state": the server has not taken the run's first event yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    with subprocess_worker([sys.executable, "-c", code], api_url, wait=6):
        row("Prefect background task worker (.delay)", measure(delay_and_wait, max(5, runs // 5), warmup=2))


# -- (d) live lines --------------------------------------------------------------------------------


def line_delays(tasks: int) -> None:
    from tests.ws_logs import DATED_LINES, stream_dated_lines

    print(f"\n(d) printed → received on /ws, ms ({tasks} tasks of `{DATED_LINES}` per way of running)")
    print(f"  {'run as':<44}{'p50 ms':>9}{'max ms':>9}")
    for run_as in ("engine", "task-run", "flow-run"):
        delays: list[float] = []
        with gateway(run_as) as url:
            ws_url = url.replace("http://", "ws://") + "/ws"
            for _ in range(tasks):
                status, lines = stream_dated_lines(url, ws_url, TOKEN, TOKEN)
                if status != "succeeded":
                    raise RuntimeError(f"{run_as}: the dated task ended {status}")
                delays += [(arrived - printed) * 1000 for printed, arrived in lines]
        print(f"  {run_as:<44}{statistics.median(delays):>9.1f}{max(delays):>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--throughput-run-as", default="engine,task-run,flow-run")
    parser.add_argument("--skip-process-worker", action="store_true")
    parser.add_argument("--only", default="a,b,c,d", help="which parts to run: a, b, c, d")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-task-api-"))
    write_environment(
        workdir / "deployments",
        "local",
        agents=["agent-local-001"],
        limits={"max_concurrent_tasks_per_agent": 8},
        work_pool=WORKER_POOL,
    )
    os.environ["CLOUD_AGENT_CONFIG_DIR"] = str(workdir / "deployments")
    os.environ["CLOUD_AGENT_STATE_DIR"] = str(workdir / "state")
    parts = set(args.only.split(","))
    with ExitStack() as stack:
        api_url = stack.enter_context(prefect_server())
        print(f"Prefect API {api_url}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        if "a" in parts:
            round_trips(args.runs, api_url)
        if "b" in parts:
            print(f"\n(b) {args.tasks} async echo tasks from {args.clients} concurrent clients, one agent (8 at once)")
            for run_as in args.throughput_run_as.split(","):
                throughput(run_as, args.tasks, args.clients)
        if "c" in parts:
            dispatches(args.runs, api_url, not args.skip_process_worker)
        if "d" in parts:
            line_delays(max(3, args.runs // 20))


if __name__ == "__main__":
    main()
