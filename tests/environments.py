"""Test environments written to a temporary ``deployments/`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LOCAL_CONNECTIONS: dict[str, Any] = {
    "postgres": {
        "default": {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"},
        "tracing-db": {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"},
    },
    "mysql": {"default": {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}},
    "redis": {"default": {"url": "redis://127.0.0.1:6379/0"}},
    "api": {"default": {}},
    # The servers below are started by the executor tests' session fixtures, which publish their
    # addresses in these variables (see tests/executor_servers.py).
    "elasticsearch": {
        "default": {"hosts": "${CLOUD_AGENT_TEST_OPENSEARCH_URL:-http://127.0.0.1:9200}", "flavor": "opensearch"},
        "as-elasticsearch": {"hosts": "${CLOUD_AGENT_TEST_OPENSEARCH_URL:-http://127.0.0.1:9200}"},
        "unreachable": {"hosts": "http://127.0.0.1:9", "flavor": "opensearch"},
    },
    "clickhouse": {
        "default": {"mode": "embedded"},
        "http": {
            "host": "127.0.0.1",
            "port": "${CLOUD_AGENT_TEST_CLICKHOUSE_PORT:-8123}",
            "username": "default",
            "password": "${CLOUD_AGENT_TEST_CLICKHOUSE_PASSWORD:-}",
        },
        "unreachable": {"host": "127.0.0.1", "port": 9},
    },
    "k8s": {
        "default": {"host": "${CLOUD_AGENT_TEST_K8S_URL:-http://127.0.0.1:6443}", "namespace": "production"},
        "unreachable": {"host": "http://127.0.0.1:9"},
    },
    "prometheus": {
        "default": {"url": "${CLOUD_AGENT_TEST_PROMETHEUS_URL:-http://127.0.0.1:9090}"},
        "unreachable": {"url": "http://127.0.0.1:9"},
    },
}


def write_environment(
    root: Path,
    name: str,
    *,
    agents: list[str] | None = None,
    policy: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    connections: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    environment: dict[str, Any] = {"work_pool": f"rca-{name}", "agents": agents or [f"agent-{name}-001"]}
    if policy:
        environment["policy"] = policy
    if limits:
        environment["limits"] = limits
    # Tests find the processes a task started by a variable they all inherit (test_shell's ``mark``), and
    # which worker ran a task by another (test_environments):
    # read tasks get a cleared environment, so the variable is handed on explicitly.
    environment["sandbox"] = {"pass_env": ["CA_TEST_TASK_MARK", "RCA_TEST_WORKER"]}
    environment.update(extra)
    (folder / "environment.yaml").write_text(yaml.safe_dump(environment))
    chosen = connections if connections is not None else LOCAL_CONNECTIONS
    (folder / "connections.yaml").write_text(yaml.safe_dump(chosen))
    return folder


def write_test_environments(root: Path) -> Path:
    write_environment(root, "local", agents=["agent-local-001"])
    write_environment(root, "prod", agents=["agent-prod-001", "agent-prod-002"], policy={"max_risk": "write"})
    write_environment(root, "staging", agents=["agent-staging-001"])
    return root
