"""Overhead of going through an executor versus calling the driver directly.

For each executor type, 200 runs of a trivial task through ``CloudAgent.run`` (validation,
policy, audit start+finish records in SQLite, timeouts, caps, secret masking) and 200 runs of the
same operation on the bare driver with an already-open connection. Prints medians, the ratio and
the overhead in ms. Target (issue 2): under 2 ms of overhead per task for SQL and Redis.

``shell`` runs in the sandbox (bubblewrap as the sandbox user); ``shell-nosandbox`` is the same task in
an environment with ``sandbox: off``: their difference is the sandbox's cost per task (target, issue
11: at most 15 ms at the median).

    .venv/bin/python bench/executors.py [--runs 200] [--types shell,postgres,...]

The elasticsearch, clickhouse, prometheus and k8s rows use the executor tests' servers
(``tests/executor_servers.py``): osmem-server, embedded chdb, Debian's prometheus (skipped when
not installed) and the recorded Kubernetes API.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executors import CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from tests.environments import write_environment, write_test_environments
from tests.http_stubs import health_endpoint


def _median_ms(action: Callable[[], Any], runs: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _direct_actions(url: str) -> dict[str, Callable[[], Any]]:
    import httpx
    import psycopg
    import pymysql
    import redis

    pg = psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True)
    my = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
    rd = redis.Redis(host="127.0.0.1")
    http = httpx.Client()

    def mysql_select() -> Any:
        with my.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchall()

    return {
        "shell": lambda: subprocess.run(["bash", "-c", "echo ok"], capture_output=True, check=True),
        "shell-nosandbox": lambda: subprocess.run(["bash", "-c", "echo ok"], capture_output=True, check=True),
        "postgres": lambda: pg.execute("SELECT 1").fetchall(),
        "mysql": mysql_select,
        "redis": lambda: rd.execute_command("GET", "bench:missing"),
        "api": lambda: http.get(url).json(),
    }


def _query_servers(workdir: Path) -> tuple[dict[str, Callable[[], Any]], dict[str, dict[str, Any]], Callable[[], None]]:
    """Start the servers of the query executors, publish their addresses for the test connections,
    and return the direct driver actions, the tasks, and how to stop the servers."""
    import json
    import os

    import clickhouse_connect
    import httpx
    from elasticsearch import Elasticsearch
    from kubernetes import client as k8s

    from executors.elasticsearch import OpenSearchNode
    from tests import executor_servers as servers

    opensearch = servers.start_opensearch()
    kubernetes = servers.RecordedKubernetesAPI()
    prometheus = servers.RunningPrometheus(workdir / "prometheus") if servers.prometheus_binaries() else None
    os.environ[servers.OPENSEARCH_URL_VARIABLE] = opensearch.url
    os.environ[servers.K8S_URL_VARIABLE] = kubernetes.url
    if prometheus is not None:
        os.environ[servers.PROMETHEUS_URL_VARIABLE] = prometheus.url

    search = Elasticsearch(opensearch.url, node_class=OpenSearchNode)
    chdb = clickhouse_connect.get_client(interface="chdb")
    core = k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=kubernetes.url)))
    http = httpx.Client()
    query = {"match": {"level": "ERROR"}}
    direct: dict[str, Callable[[], Any]] = {
        "elasticsearch": lambda: search.search(index="app-logs-*", query=query).body,
        "clickhouse": lambda: chdb.query("SELECT 1").result_rows,
        "k8s": lambda: json.loads(core.list_namespaced_pod("production", _preload_content=False).data),
    }
    if prometheus is not None:
        direct["prometheus"] = lambda: http.post(f"{prometheus.url}/api/v1/query", data={"query": "up"}).json()
    tasks = {
        "elasticsearch": {"type": "elasticsearch", "params": {"index": "app-logs-*", "query": query}},
        "clickhouse": {"type": "clickhouse", "command": "SELECT 1"},
        "prometheus": {"type": "prometheus", "command": "up"},
        "k8s": {"type": "k8s", "command": "kubectl get pods -n production"},
    }

    def stop() -> None:
        search.close()
        chdb.close()
        http.close()
        servers.stop_opensearch(opensearch)
        kubernetes.close()
        if prometheus is not None:
            prometheus.close()

    return direct, tasks, stop


def _tasks(url: str) -> dict[str, dict[str, Any]]:
    return {
        "shell": {"type": "shell", "command": "echo ok"},
        "shell-nosandbox": {"agent_id": "nosandbox", "type": "shell", "command": "echo ok"},
        "postgres": {"type": "postgres", "command": "SELECT 1"},
        "mysql": {"type": "mysql", "command": "SELECT 1"},
        "redis": {"type": "redis", "command": "GET bench:missing"},
        "api": {"type": "api", "params": {"method": "GET", "url": url}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--types", default="shell,shell-nosandbox,postgres,mysql,redis,api,elasticsearch,clickhouse,prometheus,k8s"
    )
    args = parser.parse_args()

    with health_endpoint() as url:
        _measure(args.runs, args.types.split(","), url)


def _measure(runs: int, types: list[str], url: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    write_environment(workdir / "deployments", "nosandbox", sandbox=False)
    catalog = EnvironmentCatalog.load(write_test_environments(workdir / "deployments"))
    agent = CloudAgent(catalog, open_audit_log(f"sqlite:///{workdir / 'audit.sqlite3'}"))
    direct = _direct_actions(url)
    tasks = _tasks(url)
    more_direct, more_tasks, stop_servers = _query_servers(workdir)
    direct.update(more_direct)
    tasks.update(more_tasks)

    print(f"executor overhead, median of {runs} runs each (audit: SQLite WAL)")
    print(f"{'type':<16}{'direct ms':>11}{'executor ms':>13}{'overhead ms':>13}{'ratio':>8}")
    medians: dict[str, float] = {}
    for task_type in types:
        task = tasks[task_type]
        first = agent.run(task, actor="bench")
        if first.status is not TaskStatus.SUCCEEDED:
            print(f"{task_type:<16} cannot run: {first.error}")
            continue
        direct_ms = _median_ms(direct[task_type], runs)
        executor_ms = _median_ms(lambda t=task: agent.run(t, actor="bench"), runs)
        medians[task_type] = executor_ms
        print(
            f"{task_type:<16}{direct_ms:>11.3f}{executor_ms:>13.3f}{executor_ms - direct_ms:>13.3f}"
            f"{executor_ms / direct_ms:>8.2f}"
        )
    if "shell" in medians and "shell-nosandbox" in medians:
        print(f"sandbox cost per shell task (median): {medians['shell'] - medians['shell-nosandbox']:.2f} ms")
    agent.close()
    stop_servers()


if __name__ == "__main__":
    main()
