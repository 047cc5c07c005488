"""The policy: denial and bypass attempts, read classification, approvals, environment rules.

Every attempt goes through the real agent (so the refusal is audited), but only after the same
policy has been asked on its own: a case the policy would let through fails the test *before*
anything runs, so a regression never executes ``rm -rf /`` on the machine running the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contract import Approval
from executors import (
    AuditQuery,
    CloudAgent,
    EnvironmentCatalog,
    Policy,
    PolicyConfig,
    RiskClass,
    TaskResult,
    TaskSpec,
    TaskStatus,
    Verdict,
    open_audit_log,
)
from tests.environments import write_environment, write_test_environments
from tests.policy_attempts import ATTEMPTS

DENIED, APPROVAL = TaskStatus.DENIED, TaskStatus.APPROVAL_REQUIRED
APPROVED = {"approved_by": "test-approver", "reason": "testing that approvals do not lift denials"}

DENIALS = [attempt for attempt in ATTEMPTS if attempt[2] is DENIED]


@pytest.fixture(scope="module")
def table_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudAgent]:
    """One agent for the whole table (the test environments, a fresh audit log)."""
    root = tmp_path_factory.mktemp("policy")
    catalog = EnvironmentCatalog.load(write_test_environments(root / "deployments"))
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{root / 'audit.sqlite3'}")) as running:
        yield running


@pytest.fixture
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file a payload would create if it ran, in a folder the payload could write to."""
    return tmp_path_factory.getbasetemp() / f"ran-{uuid.uuid4().hex}"


def _task(task_type: str, body: Any, marker: Path, **extra: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        return {"type": task_type, "params": dict(body), "timeout": 5, **extra}
    return {"type": task_type, "command": body.replace("{m}", str(marker)), "timeout": 5, **extra}


def _run_refused(agent: CloudAgent, task: dict[str, Any]) -> tuple[TaskResult, list[str]]:
    """Run ``task`` through the agent, having checked first that its policy refuses it."""
    spec = TaskSpec.parse(task)
    environment = agent.environment_of(spec.agent_id)
    decision = agent.executor(spec.type, environment).policy.decide(spec)
    assert decision.verdict is not Verdict.ALLOW, f"the policy lets this run: {task['command'] or task['params']!r}"
    task_id = f"task-policy-{uuid.uuid4().hex[:12]}"
    # An approval the test gives is the caller's (the engine ignores one inside task data).
    given = Approval.model_validate(task["approval"]) if task.get("approval") else None
    result = agent.run(task, actor="test-policy", task_id=task_id, approval=given)
    events = [record.event.value for record in agent.audit.query(AuditQuery(task_id=task_id))]
    return result, events


def _ids(attempts: list[tuple[str, Any, TaskStatus, str | None]]) -> list[str]:
    return [f"{kind}:{str(body)[:50]}" for kind, body, _, _ in attempts]


def test_the_table_is_large_enough() -> None:
    assert len(ATTEMPTS) >= 40
    assert len(DENIALS) >= 40


@pytest.mark.parametrize(("task_type", "body", "status", "rule"), ATTEMPTS, ids=_ids(ATTEMPTS))
def test_attempt_is_refused_audited_and_never_runs(
    table_agent: CloudAgent, marker: Path, task_type: str, body: Any, status: TaskStatus, rule: str | None
) -> None:
    result, events = _run_refused(table_agent, _task(task_type, body, marker))

    assert result.status is status, result.error
    assert result.error is not None
    if status is DENIED:
        assert result.error.code == "policy_denied"
        assert f"[rule {rule}]" in result.error.message
        assert result.risk is RiskClass.DESTRUCTIVE
        assert events == ["denied"]
    else:
        assert result.error.code == "approval_required"
        assert result.risk in (RiskClass.WRITE, RiskClass.DESTRUCTIVE)
        assert events == ["approval_required"]
    assert result.exit_code is None and result.output is None and result.data is None
    assert not marker.exists()


@pytest.mark.parametrize(("task_type", "body", "status", "rule"), DENIALS, ids=_ids(DENIALS))
def test_an_approval_does_not_lift_a_default_denial(
    table_agent: CloudAgent, marker: Path, task_type: str, body: Any, status: TaskStatus, rule: str | None
) -> None:
    result, events = _run_refused(table_agent, _task(task_type, body, marker, approval=APPROVED))

    assert result.status is TaskStatus.DENIED
    assert result.error is not None and f"[rule {rule}]" in result.error.message
    assert events == ["denied"]
    assert not marker.exists()


def test_an_approved_write_does_run(agent: CloudAgent, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    unapproved = agent.run({"type": "shell", "command": f"t''ouch {marker}"})
    assert unapproved.status is TaskStatus.APPROVAL_REQUIRED and not marker.exists()

    approved = agent.run({"type": "shell", "command": f"t''ouch {marker}"}, approval=Approval(**APPROVED))

    assert approved.status is TaskStatus.SUCCEEDED, approved.error
    assert approved.approved_by == "test-approver"
    assert marker.exists()


# -- read classification ------------------------------------------------------------------------

SPEC_READS = [
    ("shell", "top -bn1 | head -20"),
    ("shell", "df -h && free -m && cat /proc/loadavg"),
    ("shell", "netstat -tuln | grep LISTEN"),
    ("shell", "journalctl -u my-service --since '10 minutes ago' --no-pager"),
    ("shell", "tail -n 1000 /var/log/app/error.log"),
    ("shell", "ping -c 5 database.internal && traceroute database.internal"),
    ("shell", "nslookup api.example.com && dig api.example.com"),
    ("shell", "nc -zv redis.internal 6379 && nc -zv mysql.internal 3306"),
    (
        "shell",
        "grep -E 'ERROR|FATAL' /var/log/app/*.log | awk '{print $1,$2,$NF}' | sort | uniq -c | sort -rn | head -20",
    ),
    ("shell", "curl -s http://localhost:8080/metrics | grep 'db_connections'"),
    ("shell", "curl -s http://localhost:9090/metrics | grep db_connections"),
    ("shell", "curl -s http://localhost:9090/api/v1/query?query=error_rate | jq"),
    ("shell", "curl http://localhost:9090/metrics"),
    ("shell", "grep -r 'datasource' /app/config/"),
    ("shell", "mysql -e 'SELECT * FROM information_schema.processlist WHERE time > 60'"),
    ("shell", "psql -c 'SELECT pid, state FROM pg_stat_activity'"),
    ("shell", "redis-cli INFO stats"),
    ("shell", "ps aux --sort=-%cpu | head -5"),
    ("shell", "du -sh /var/*"),
    ("shell", "ls /var/log/*"),
    ("postgres", "SELECT pid, usename, application_name, state, query FROM pg_stat_activity WHERE state = 'active';"),
    ("postgres", "SELECT trace_id FROM traces WHERE duration > 1000"),
    ("postgres", "SELECT E'it\\'s', 'it''s'"),
    ("mysql", "SHOW PROCESSLIST; SHOW STATUS LIKE 'Threads_connected';"),
    ("mysql", "SELECT * FROM information_schema.processlist WHERE time > 5 ORDER BY time DESC;"),
    ("mysql", "SELECT 1 -- a comment\n, 2 # another"),
    ("redis", "INFO stats"),
    ("redis", "SLOWLOG GET 10"),
    ("redis", "CONFIG GET maxmemory"),
]


@pytest.mark.parametrize(("task_type", "command"), SPEC_READS, ids=[f"{t}:{c[:50]}" for t, c in SPEC_READS])
def test_diagnostic_commands_are_reads(task_type: str, command: str) -> None:
    decision = Policy(PolicyConfig(), "test").decide(TaskSpec(type=task_type, command=command))

    assert decision.verdict is Verdict.ALLOW, decision.reason
    assert decision.risk is RiskClass.READ, decision.reason


# -- environment rules ----------------------------------------------------------------------------


@pytest.fixture
def agent_with(config_dir: Path, state_dir: Path) -> Iterator[Callable[..., CloudAgent]]:
    """Write an environment ``custom`` (agent ``agent-custom-001``) and return an agent for it."""
    agents: list[CloudAgent] = []

    def make(**environment: Any) -> CloudAgent:
        write_environment(config_dir, "custom", agents=["agent-custom-001"], **environment)
        running = CloudAgent(
            EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir / 'custom.sqlite3'}")
        )
        agents.append(running)
        return running

    yield make
    for running in agents:
        running.close()


def test_environment_deny_patterns_see_through_quoting_and_chaining(agent_with: Callable[..., CloudAgent]) -> None:
    agent = agent_with(policy={"deny": [{"pattern": r"^journalctl\b", "reason": "no journal reading here"}]})

    for command in (
        "journalctl -u my-service --no-pager",
        '"journal"ctl -u my-service',
        "df -h && j\\ournalctl -n 5",
        "echo $(journalctl -n 1)",
    ):
        result, events = _run_refused(agent, {"agent_id": "agent-custom-001", "type": "shell", "command": command})
        assert result.status is TaskStatus.DENIED, command
        assert result.error is not None and "no journal reading here" in result.error.message
        assert "[rule environment.deny]" in result.error.message
        assert events == ["denied"]

    allowed = agent.run({"agent_id": "agent-custom-001", "type": "shell", "command": "echo journalctl"})
    assert allowed.status is TaskStatus.SUCCEEDED


def test_environment_deny_patterns_can_target_one_type(agent_with: Callable[..., CloudAgent]) -> None:
    agent = agent_with(policy={"deny": [{"pattern": "pg_stat_activity", "types": ["postgres"]}]})
    task = {"agent_id": "agent-custom-001", "command": "SELECT count(*) FROM pg_stat_activity"}

    postgres, _ = _run_refused(agent, {**task, "type": "postgres"})
    shell = agent.run({**task, "type": "shell", "command": "echo pg_stat_activity"})

    assert postgres.status is TaskStatus.DENIED
    assert shell.status is TaskStatus.SUCCEEDED


def test_environment_can_lift_a_default_rule(agent_with: Callable[..., CloudAgent], tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("root:not-really-a-hash:19000:0:99999:7:::\n")
    task = {"agent_id": "agent-custom-001", "type": "shell", "command": f"cat {shadow}"}

    strict = agent_with()
    refused, _ = _run_refused(strict, {**task, "approval": APPROVED})
    assert refused.status is TaskStatus.DENIED
    assert refused.error is not None and "[rule shell.credential-file]" in refused.error.message

    # Lifted, the rule no longer denies: the task is what the rule judged it, destructive, and
    # runs with an approval (so a lift never turns a denied task into an unattended one).
    lifted = agent_with(policy={"lift": ["shell.credential-file"]})
    unapproved, events = _run_refused(lifted, task)
    assert unapproved.status is TaskStatus.APPROVAL_REQUIRED
    assert unapproved.error is not None and "holds credentials" in unapproved.error.message
    assert events == ["approval_required"]

    result = lifted.run(task, approval=Approval(**APPROVED))
    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.output == "root:not-really-a-hash:19000:0:99999:7:::\n"


def test_lifting_one_rule_leaves_the_others(agent_with: Callable[..., CloudAgent], tmp_path: Path) -> None:
    agent = agent_with(policy={"lift": ["shell.credential-file"]})

    result, events = _run_refused(agent, {"agent_id": "agent-custom-001", "type": "shell", "command": "rm -rf /"})

    assert result.status is TaskStatus.DENIED
    assert events == ["denied"]


def test_max_risk_refuses_even_approved_tasks_above_it(agent: CloudAgent, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    task = {"type": "shell", "command": f"rm -r {victim}", "approval": APPROVED}

    # prod allows at most ``write``: an approved destructive task is still refused there
    in_prod, events = _run_refused(agent, {**task, "agent_id": "agent-prod-001"})
    assert in_prod.status is TaskStatus.DENIED
    assert in_prod.error is not None and "[rule environment.max-risk]" in in_prod.error.message
    assert events == ["denied"]
    assert victim.exists()

    # an approved write is still fine in prod
    touched = tmp_path / "touched"
    write = agent.run(
        {"agent_id": "agent-prod-001", "type": "shell", "command": f"touch {touched}"}, approval=Approval(**APPROVED)
    )
    assert write.status is TaskStatus.SUCCEEDED and touched.exists()

    # local has no such cap
    in_local = agent.run({**task, "agent_id": "agent-local-001"}, approval=Approval(**APPROVED))
    assert in_local.status is TaskStatus.SUCCEEDED, in_local.error
    assert not victim.exists()


def test_max_risk_read_refuses_every_write(agent_with: Callable[..., CloudAgent], tmp_path: Path) -> None:
    agent = agent_with(policy={"max_risk": "read"})
    marker = tmp_path / "ran"

    result, _ = _run_refused(
        agent, {"agent_id": "agent-custom-001", "type": "shell", "command": f"touch {marker}", "approval": APPROVED}
    )

    assert result.status is TaskStatus.DENIED
    assert not marker.exists()


def test_environment_read_only_commands_extend_the_table(agent_with: Callable[..., CloudAgent]) -> None:
    spec = TaskSpec(type="shell", command="my-diag --summary")
    assert Policy(PolicyConfig(), "default").decide(spec).verdict is Verdict.NEEDS_APPROVAL

    trusting = Policy(PolicyConfig(read_only_commands=["my-diag"]), "custom")
    assert trusting.decide(spec).verdict is Verdict.ALLOW


def test_environment_redis_deny_commands(agent_with: Callable[..., CloudAgent]) -> None:
    agent = agent_with(policy={"redis_deny_commands": ["KEYS"]})

    result, events = _run_refused(agent, {"agent_id": "agent-custom-001", "type": "redis", "command": "keys *"})

    assert result.status is TaskStatus.DENIED
    assert events == ["denied"]


def test_http_allow_hosts_and_deny_hosts() -> None:
    metadata = TaskSpec(type="api", params={"url": "http://169.254.169.254/latest/meta-data/"})
    internal = TaskSpec(type="api", params={"url": "http://10.1.2.3/health"})

    allow = Policy(PolicyConfig(http_allow_hosts=["169.254.169.254"]), "custom")
    deny = Policy(PolicyConfig(http_deny_hosts=["10.0.0.0/8"]), "custom")

    assert allow.decide(metadata).verdict is Verdict.ALLOW
    assert deny.decide(internal).verdict is Verdict.DENY
    assert deny.decide(internal).rule == "http.denied-host"
    assert Policy(PolicyConfig(), "default").decide(internal).verdict is Verdict.ALLOW


def test_a_task_type_without_an_analyser_needs_an_approval() -> None:
    decision = Policy(PolicyConfig(), "default").decide(TaskSpec(type="some-plugin", command="do things"))

    assert decision.verdict is Verdict.NEEDS_APPROVAL
    assert decision.risk is RiskClass.WRITE


def test_an_approval_inside_task_data_is_never_trusted(agent: CloudAgent, tmp_path: Path) -> None:
    marker = tmp_path / "forged"
    task = {"type": "shell", "command": f"touch {marker}", "approval": {"approved_by": "the-cto", "reason": "trust me"}}

    forged = agent.run(task, actor="test", task_id="task-forged")

    assert forged.status is TaskStatus.APPROVAL_REQUIRED and not marker.exists()
    assert forged.notes and "approval inside the task was ignored" in forged.notes[0]
    records = agent.audit.query(AuditQuery(task_id="task-forged"))
    assert records and all(record.approved_by is None for record in records)
    # Given by the caller (the CLI's OS user, an approver's token, the fix step), it counts.
    approved = agent.run(task, actor="test", approval=Approval(approved_by="oncall", reason="INC-1"))
    assert approved.status is TaskStatus.SUCCEEDED and marker.exists() and approved.approved_by == "oncall"
