"""The task contract: the spec's task JSON parses unchanged, runs to a sensible result, and bad
tasks are refused with one clear line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from executors import CloudAgent, InvalidTask, TaskResult, TaskSpec, TaskStatus
from tests.spec_data import TASK_EXAMPLES

EXAMPLES_FILE = TASK_EXAMPLES
EXAMPLES: list[dict[str, Any]] = json.loads(EXAMPLES_FILE.read_text())
RUNNABLE_TYPES = ("shell", "postgres", "mysql", "redis", "api")
RUNNABLE = [example for example in EXAMPLES if example["type"] in RUNNABLE_TYPES]

S, F, T, A = TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.APPROVAL_REQUIRED
# What each runnable example gives on a machine with the local servers but none of the spec's
# hosts, services or log files: the allowed statuses and, for a failure, the error code.
EXPECTED: dict[str, tuple[set[TaskStatus], str | None]] = {
    "top -bn1 | head -20": ({S}, None),
    "df -h && free -m && cat /proc/loadavg": ({S}, None),
    "netstat -tuln | grep LISTEN": ({S}, None),
    "journalctl -u my-service --since '10 minutes ago' --no-pager": ({S, F}, "exit_status"),
    "tail -n 1000 /var/log/app/error.log": ({F}, "exit_status"),
    "ping -c 5 database.internal && traceroute database.internal": ({F, T}, "exit_status"),
    "nslookup api.example.com && dig api.example.com": ({F, T}, "exit_status"),
    "nc -zv redis.internal 6379 && nc -zv mysql.internal 3306": ({F, T}, "exit_status"),
    "grep -E 'ERROR|FATAL' /var/log/app/*.log | awk '{print $1,$2,$NF}' | sort | uniq -c | sort -rn | head -20": (
        {S},
        None,
    ),
    "curl -s http://localhost:8080/metrics | grep 'db_connections'": ({F}, "exit_status"),
    "curl -s http://localhost:9090/api/v1/query?query=error_rate | jq": ({S, F}, "exit_status"),
    "curl http://localhost:9090/metrics": ({F}, "exit_status"),
    "ping -c 5 dependency-service": ({F, T}, "exit_status"),
    "grep -r 'datasource' /app/config/": ({F}, "exit_status"),
    "SELECT trace_id, span_id, service_name, duration, status FROM traces WHERE timestamp > NOW() - INTERVAL '1 hour' "
    "AND status = 'error' ORDER BY timestamp DESC LIMIT 100": ({S}, None),
    "SELECT * FROM traces WHERE duration > 1000": ({S}, None),
    "SELECT pid, usename, application_name, state, query FROM pg_stat_activity WHERE state = 'active';": ({S}, None),
    "SHOW PROCESSLIST; SHOW STATUS LIKE 'Threads_connected';": ({S}, None),
    "SELECT * FROM information_schema.processlist WHERE time > 5 ORDER BY time DESC;": ({S}, None),
    "SHOW FULL PROCESSLIST": ({S}, None),
    "EXPLAIN SELECT ...": ({F}, "bad_query"),  # the spec's placeholder is not SQL
    "CREATE INDEX ...": ({A}, "approval_required"),
    "OPTIMIZE TABLE problematic_table;": ({A}, "approval_required"),
    "SELECT * FROM information_schema.processlist WHERE time > 60": ({S}, None),
    "INFO stats": ({S}, None),
    "FLUSHDB": ({A}, "approval_required"),
    "http://localhost:8080/health": ({F}, "unreachable"),
    "http://service:8080/health": ({F}, "unreachable"),
    "http://dependency-service/health": ({F}, "unreachable"),
}


def _key(example: dict[str, Any]) -> str:
    return example.get("command") or example["params"]["url"]


def _id(example: dict[str, Any]) -> str:
    return f"{example['type']}:{(example.get('command') or json.dumps(example.get('params')))[:50]}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[_id(e) for e in EXAMPLES])
def test_every_spec_example_parses_unchanged(example: dict[str, Any]) -> None:
    spec = TaskSpec.parse(example)

    assert spec.model_dump(include=set(example)) == example
    assert TaskSpec.parse(json.loads(spec.model_dump_json(exclude_unset=True))) == spec


def test_spec_examples_cover_every_type() -> None:
    assert {example["type"] for example in EXAMPLES} == {*RUNNABLE_TYPES, "k8s", "elasticsearch", "clickhouse"}
    assert {_key(example) for example in RUNNABLE} == set(EXPECTED)


@pytest.fixture
def traces_schema(config_dir: Path) -> Iterator[str]:
    """The spec's ``traces`` table (a few recent error spans) in a schema of this test's own, put on
    the search path of the test environments' PostgreSQL connections so concurrent runs do not
    collide. Request it before ``agent``, which reads the connections when it is created."""
    schema = f"ca_spec_{uuid.uuid4().hex[:10]}"
    for connections_file in config_dir.glob("*/connections.yaml"):
        connections = yaml.safe_load(connections_file.read_text())
        for settings in connections.get("postgres", {}).values():
            settings["options"] = f"-c search_path={schema}"
        connections_file.write_text(yaml.safe_dump(connections))
    with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
        db.execute(
            f"CREATE TABLE {schema}.traces (trace_id text, span_id text, service_name text, duration integer, "
            "status text, timestamp timestamptz)"
        )
        db.execute(
            f"INSERT INTO {schema}.traces VALUES "
            "('t1', 's1', 'payment-service', 1500, 'error', now() - interval '5 minutes'), "
            "('t2', 's2', 'payment-service', 20, 'ok', now() - interval '6 minutes'), "
            "('t3', 's3', 'order-service', 900, 'error', now() - interval '2 hours')"
        )
        try:
            yield schema
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.integration
@pytest.mark.parametrize("example", RUNNABLE, ids=[_id(e) for e in RUNNABLE])
def test_every_runnable_spec_example_gives_a_clean_result(
    traces_schema: str, agent: CloudAgent, example: dict[str, Any]
) -> None:
    statuses, code = EXPECTED[_key(example)]
    task = {**example, "timeout": min(example.get("timeout", 30), 5)}

    result = agent.run(task)

    assert isinstance(result, TaskResult)
    assert result.status in statuses, result.error
    assert result.type == example["type"]
    assert result.invocation.startswith(f"{example['type']}: ")
    if result.status is TaskStatus.SUCCEEDED:
        assert result.error is None
        assert result.output is not None or result.data is not None
    elif result.status is TaskStatus.FAILED:
        assert result.error is not None and result.error.code == code, result.error
        assert result.error.message and "Traceback" not in result.error.message
    elif result.status is TaskStatus.APPROVAL_REQUIRED:
        assert result.error is not None and result.error.code == code
        assert result.risk is not None and result.risk.value in ("write", "destructive")


@pytest.mark.integration
def test_the_tracing_db_example_finds_the_recent_error(traces_schema: str, agent: CloudAgent) -> None:
    (example,) = [e for e in EXAMPLES if e.get("params", {}).get("connection") == "tracing-db"]

    result = agent.run(example)

    assert result.status is TaskStatus.SUCCEEDED, result.error
    (result_set,) = result.data["result_sets"]
    assert result_set["columns"] == ["trace_id", "span_id", "service_name", "duration", "status"]
    assert result_set["rows"] == [["t1", "s1", "payment-service", 1500, "error"]]


def test_a_missing_file_is_a_specific_failure(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "tail -n 1000 /var/log/app/error.log"})

    assert result.error is not None
    assert result.error.message == (
        "exited with status 1: tail: cannot open '/var/log/app/error.log' for reading: No such file or directory"
    )


# -- invalid tasks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"type": "shell", "command": "uptime", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"command": "uptime"}, "type: Field required"),
        ({"type": "", "command": "uptime"}, "type: String should have at least 1 character"),
        ({"type": "shell", "command": 42}, "command: Input should be a valid string"),
        ({"type": "shell", "command": "uptime", "params": ["x"]}, "params: Input should be a valid dictionary"),
        ({"type": "shell", "command": "uptime", "sync": "maybe"}, "sync: Input should be a valid boolean"),
        ({"type": "shell", "command": "uptime", "timeout": "soon"}, "timeout: Input should be a valid number"),
        ({"type": "shell", "command": "uptime", "timeout": 0}, "timeout: Input should be greater than 0"),
        ({"type": "shell", "command": "uptime", "timeout": -5}, "timeout: Input should be greater than 0"),
        (
            {"type": "shell", "command": "uptime", "timeout": 86_401},
            "timeout: Input should be less than or equal to 86400",
        ),
        ({"type": "shell", "command": "echo a\x00b"}, "command: Value error, command contains a NUL byte"),
        ({"type": "shell", "command": "x" * 100_001}, "command: String should have at most 100000 characters"),
        (
            {"type": "shell", "command": "uptime", "approval": {"reason": "why not"}},
            "approval.approved_by: Field required",
        ),
        ({"type": "shell", "command": "uptime", "agent_id": ""}, "agent_id: String should have at least 1 character"),
        ("uptime", "task: Input should be a valid dictionary"),
    ],
    ids=[
        "unknown-field",
        "no-type",
        "empty-type",
        "command-type",
        "params-type",
        "sync-type",
        "timeout-type",
        "timeout-zero",
        "timeout-negative",
        "timeout-too-long",
        "nul-byte",
        "command-too-long",
        "approval-by",
        "empty-agent",
        "not-an-object",
    ],
)
def test_invalid_tasks_are_refused_with_a_clear_message(task: Any, message: str) -> None:
    with pytest.raises(InvalidTask) as caught:
        TaskSpec.parse(task)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_every_problem_is_named_on_one_line() -> None:
    with pytest.raises(InvalidTask) as caught:
        TaskSpec.parse({"type": "shell", "timeout": 0, "sync": "maybe", "extra": 1})

    assert str(caught.value) == (
        "sync: Input should be a valid boolean; "
        "timeout: Input should be greater than 0; extra: Extra inputs are not permitted"
    )


@pytest.mark.parametrize(
    ("field", "value"), [("timeout", True), ("timeout", "10"), ("sync", 1), ("sync", "true")]
)  # fmt: skip
def test_what_the_schema_calls_another_type_is_refused_not_coerced(field: str, value: object) -> None:
    # JSON's true is not a one-second timeout (schemathesis sent it, and it ran).
    with pytest.raises(InvalidTask, match=f"^{field}: Input should be a valid"):
        TaskSpec.parse({"type": "shell", "command": "uptime", field: value})


def test_defaults() -> None:
    spec = TaskSpec.parse({"type": "shell", "command": "uptime"})

    assert (spec.agent_id, spec.params, spec.sync, spec.timeout, spec.approval) == (None, {}, True, 30.0, None)
    assert spec.describe() == "shell: uptime"
    assert TaskSpec.parse({"type": "api", "params": {"url": "http://x/health"}}).describe() == "api: http://x/health"


def test_an_invalid_task_through_the_agent_is_a_failed_result(agent: CloudAgent) -> None:
    result = agent.run({"type": "shell", "command": "echo a\x00b"})

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "invalid_task"
    assert "NUL byte" in result.error.message
