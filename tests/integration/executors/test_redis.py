"""The redis executor against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from executors import Approval, AuditQuery, CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from tests.environments import LOCAL_CONNECTIONS, write_environment

pytestmark = pytest.mark.integration

APPROVED = {"approved_by": "test-approver"}


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def prefix(admin: redis.Redis) -> Iterator[str]:
    """A key prefix unique to this test; its keys are deleted afterwards."""
    value = f"ca-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield value
    finally:
        keys = list(admin.scan_iter(match=f"{value}*"))
        if keys:
            admin.delete(*keys)


@pytest.fixture
def acl_user(admin: redis.Redis) -> Iterator[str]:
    """An ACL user with a password, deleted afterwards."""
    user = f"ca-test-{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(user, enabled=True, passwords=["+right-password-123"], keys=["*"], commands=["+@all"])
    try:
        yield user
    finally:
        admin.acl_deluser(user)


@pytest.fixture
def redis_agent(config_dir: Path, state_dir: Path, acl_user: str) -> Iterator[CloudAgent]:
    connections = {
        **LOCAL_CONNECTIONS,
        "redis": {
            "default": {"url": "redis://127.0.0.1:6379/0"},
            "unreachable": {"host": "127.0.0.1", "port": 1, "socket_connect_timeout": 2},
            "wrong-password": {"host": "127.0.0.1", "port": 6379, "username": acl_user, "password": "wrong-pw-456"},
            "right-password": {
                "host": "127.0.0.1",
                "port": 6379,
                "username": acl_user,
                "password": "right-password-123",
            },
        },
    }
    write_environment(config_dir, "rd", agents=["agent-rd-001"], connections=connections)
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'rd.sqlite3'}")) as running:
        yield running


def test_spec_info_stats_is_parsed_to_numbers(agent: CloudAgent) -> None:
    result = agent.run({"type": "redis", "command": "INFO stats", "params": {"connection": "default"}})

    assert result.status is TaskStatus.SUCCEEDED, result.error
    info = result.data
    assert isinstance(info, dict)
    for key in ("total_connections_received", "total_commands_processed", "keyspace_hits", "keyspace_misses"):
        assert isinstance(info[key], int), key
    assert isinstance(info["instantaneous_input_kbps"], float)
    assert info["total_commands_processed"] > 0
    assert result.output.startswith("# Stats")


def test_info_keyspace_lines_become_dicts(agent: CloudAgent, admin: redis.Redis, prefix: str) -> None:
    admin.set(f"{prefix}k", "v")

    result = agent.run({"type": "redis", "command": "INFO keyspace"})

    assert result.status is TaskStatus.SUCCEEDED
    assert result.data["db0"]["keys"] >= 1
    assert set(result.data["db0"]) >= {"keys", "expires"}


def test_set_and_get_with_quoting(agent: CloudAgent, admin: redis.Redis, prefix: str) -> None:
    key = f"{prefix}a key"

    written = agent.run({"type": "redis", "command": f'SET "{key}" "a value"'}, approval=_approval(APPROVED))
    read = agent.run({"type": "redis", "command": f"GET '{key}'"})
    missing = agent.run({"type": "redis", "command": f'GET "{prefix}missing"'})

    assert written.status is TaskStatus.SUCCEEDED, written.error
    assert written.data == "OK"
    assert admin.get(key) == b"a value"
    assert read.status is TaskStatus.SUCCEEDED and read.risk is not None and read.risk.value == "read"
    assert read.data == "a value" and read.output == "a value"
    assert missing.data is None and missing.output == "(nil)"


def test_replies_are_rendered_like_redis_cli(agent: CloudAgent, admin: redis.Redis, prefix: str) -> None:
    admin.rpush(f"{prefix}list", "one", "two")
    admin.set(f"{prefix}n", 5)

    listed = agent.run({"type": "redis", "command": f"LRANGE {prefix}list 0 -1"})
    counted = agent.run({"type": "redis", "command": f"STRLEN {prefix}n"})

    assert listed.data == ["one", "two"]
    assert listed.output == '1) "one"\n2) "two"'
    assert counted.data == 1 and counted.output == "(integer) 1"


def test_flushall_is_denied_whatever_the_approval(agent: CloudAgent, admin: redis.Redis, prefix: str) -> None:
    admin.set(f"{prefix}survivor", "1")

    result = agent.run({"type": "redis", "command": "FLUSHALL"}, task_id="task-flushall", approval=_approval(APPROVED))

    assert result.status is TaskStatus.DENIED
    assert result.error is not None and "[rule redis.flushall]" in result.error.message
    assert admin.get(f"{prefix}survivor") == b"1"
    assert [r.event.value for r in agent.audit.query(AuditQuery(task_id="task-flushall"))] == ["denied"]


def test_a_write_without_approval_needs_one(agent: CloudAgent, admin: redis.Redis, prefix: str) -> None:
    result = agent.run({"type": "redis", "command": f"SET {prefix}k v"})
    deleted = agent.run({"type": "redis", "command": f"DEL {prefix}k"})

    assert result.status is TaskStatus.APPROVAL_REQUIRED
    assert result.risk is not None and result.risk.value == "write"
    assert deleted.status is TaskStatus.APPROVAL_REQUIRED
    assert deleted.risk is not None and deleted.risk.value == "destructive"
    assert admin.exists(f"{prefix}k") == 0


def test_a_blocking_command_is_timed_out(agent: CloudAgent, prefix: str) -> None:
    started = time.monotonic()

    result = agent.run(
        {"type": "redis", "command": f"BLPOP {prefix}empty 30", "timeout": 1}, approval=_approval(APPROVED)
    )

    assert result.status is TaskStatus.TIMED_OUT
    assert result.error is not None and result.error.code == "timed_out"
    assert time.monotonic() - started < 2.0
    after = agent.run({"type": "redis", "command": "PING"})
    assert after.status is TaskStatus.SUCCEEDED and after.data == "PONG"


def test_wrong_password_is_an_authentication_failure(redis_agent: CloudAgent, acl_user: str) -> None:
    task = {"agent_id": "agent-rd-001", "type": "redis"}
    wrong = redis_agent.run({**task, "command": "PING", "params": {"connection": "wrong-password"}})
    right = redis_agent.run({**task, "command": "ACL WHOAMI", "params": {"connection": "right-password"}})

    assert wrong.status is TaskStatus.FAILED
    assert wrong.error is not None and wrong.error.code == "auth_failed"
    assert "wrong-pw-456" not in wrong.model_dump_json()
    assert right.status is TaskStatus.SUCCEEDED and right.data == acl_user


def test_unreachable_server(redis_agent: CloudAgent) -> None:
    result = redis_agent.run(
        {"agent_id": "agent-rd-001", "type": "redis", "command": "PING", "params": {"connection": "unreachable"}}
    )

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unreachable"
    assert "cannot reach Redis at 127.0.0.1:1" in result.error.message


def test_an_error_reply_is_a_bad_query(agent: CloudAgent, admin: redis.Redis, prefix: str) -> None:
    admin.rpush(f"{prefix}list", "x")

    arity = agent.run({"type": "redis", "command": "GET a b"})
    wrong_type = agent.run({"type": "redis", "command": f"GET {prefix}list"})

    assert arity.status is TaskStatus.FAILED
    assert arity.error is not None and arity.error.code == "bad_query"
    assert "wrong number of arguments" in arity.error.message
    assert wrong_type.error is not None and wrong_type.error.code == "bad_query"
    assert "WRONGTYPE" in wrong_type.error.message


def test_one_command_per_task(agent: CloudAgent) -> None:
    several = agent.run({"type": "redis", "command": "PING\nFLUSHALL"})
    unbalanced = agent.run({"type": "redis", "command": 'GET "unterminated'})

    assert several.status is TaskStatus.FAILED
    assert several.error is not None and several.error.code == "invalid_task"
    assert "one command" in several.error.message
    assert unbalanced.error is not None and unbalanced.error.code == "invalid_task"


def _approval(given: dict | None) -> Approval | None:
    """An approval handed to the engine beside the task, as the CLI, the task API and the fix step do."""
    return Approval.model_validate(given) if given is not None else None
