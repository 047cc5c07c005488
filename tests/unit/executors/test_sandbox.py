"""The sandbox of shell tasks, tested as its own wall: the classifier is switched off (every task is
a ``read``), so only the sandbox stands between a command and the host.

Needs root, bubblewrap and the ``cloud-agent-sandbox`` user (``scripts/prepare-sandbox.sh``).
"""

from __future__ import annotations

import os
import pwd
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import RiskClass
from executors import Approval, CloudAgent, EnvironmentCatalog, SandboxConfig, TaskStatus, open_audit_log
from executors._policy import Assessment, Policy
from executors._sandbox import SANDBOX_USER, _launchers, confinement
from tests.environments import write_environment
from tests.http_stubs import health_endpoint
from tests.servers import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox switches users: the tests run as root")


@pytest.fixture
def classifier_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task is a read, whatever it says: the sandbox alone must hold."""
    monkeypatch.setattr(Policy, "assess", lambda self, spec: Assessment())


def _agent(tmp_path: Path, **environment: object) -> CloudAgent:
    config = tmp_path / "deployments"
    write_environment(config, "local", **environment)
    return CloudAgent(EnvironmentCatalog.load(config), open_audit_log(f"sqlite:///{tmp_path / 'audit.db'}"))


@pytest.fixture
def agent(tmp_path: Path, classifier_off: None) -> Iterator[CloudAgent]:
    with _agent(tmp_path) as agent:
        yield agent


def _run(agent: CloudAgent, command: str, timeout: float = 10) -> tuple[str, str, int | None]:
    result = agent.run({"type": "shell", "command": command, "timeout": timeout})
    assert result.risk is RiskClass.READ
    return result.output or "", result.stderr or "", result.exit_code


def test_a_read_task_runs_as_the_sandbox_user_without_capabilities(agent: CloudAgent) -> None:
    output, _, _ = _run(
        agent, "id -un; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; grep NoNewPrivs /proc/self/status"
    )

    lines = output.splitlines()
    assert lines[0] == SANDBOX_USER
    assert all(line.endswith("0000000000000000") for line in lines[1:4]), lines
    assert lines[4].split() == ["NoNewPrivs:", "1"]


def test_the_host_filesystem_cannot_be_written(agent: CloudAgent, tmp_path: Path) -> None:
    canary = Path("/var/tmp") / f"ca-sandbox-{uuid.uuid4().hex}"
    output, _, _ = _run(
        agent,
        f"touch {canary} /etc/ca-sandbox-canary; echo x > /dev/fd/../../var/tmp/ca-alias; "
        f"mkdir /root/ca-sandbox; sed -n 'w {canary}' /etc/hostname; echo done",
    )

    assert output.endswith("done\n")
    assert not canary.exists() and not Path("/etc/ca-sandbox-canary").exists()
    assert not Path("/var/tmp/ca-alias").exists() and not Path("/root/ca-sandbox").exists()


def test_tmp_is_private_to_each_task(agent: CloudAgent) -> None:
    name = f"ca-private-{uuid.uuid4().hex}"
    output, _, _ = _run(agent, f"echo kept > /tmp/{name} && cat /tmp/{name}")
    assert output == "kept\n"

    assert not Path("/tmp", name).exists()
    output, _, _ = _run(agent, f"cat /tmp/{name} 2>&1 || echo gone")
    assert output.endswith("gone\n")


def test_no_device_but_the_minimal_set(agent: CloudAgent) -> None:
    output, _, _ = _run(agent, "ls /dev")

    assert set(output.split()) <= {"core", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
                                   "stdout", "tty", "urandom", "zero"}  # fmt: skip


def test_credentials_and_the_agents_environment_cannot_be_read(
    agent: CloudAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"agent-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("CA_TEST_PLAIN_NAME", secret)  # an innocent name: only the cleared environment hides it

    output, stderr, _ = _run(
        agent,
        f"cat /etc/shadow; cat /proc/{os.getpid()}/environ; cat /proc/1/environ; tr '\\0' '\\n' < /proc/$PPID/environ; "
        "env; cat /root/.bash_history; ls /root",
    )

    assert secret not in output and secret not in stderr
    assert "root:" not in output
    assert "Permission denied" in stderr


def test_the_agents_own_folders_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, classifier_off: None
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "tasks.json").write_text("planted-output")
    state.chmod(0o755)
    monkeypatch.setenv("CLOUD_AGENT_STATE_DIR", str(state))
    with _agent(tmp_path) as agent:
        output, _, _ = _run(agent, f"ls -A {state} {tmp_path / 'deployments'}; cat {state}/tasks.json; echo end")

    assert "planted-output" not in output
    assert "environment.yaml" not in output and "tasks.json" not in output
    assert output.endswith("end\n")


def _all_gone(marker: str) -> None:
    """Every process of ``marker`` gone within 2 s: a killed process leaves ``/proc`` once its
    parent reaps it, a moment after the task returned."""
    wait_until(lambda: _marked(marker) == [], what=f"processes of {marker!r} still alive", timeout=2)


def _marked(marker: str) -> list[int]:
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            alive.append(int(entry))
    return alive


@pytest.mark.parametrize(
    "escape",
    [
        "(setsid sleep {s} &) ; echo started",
        "nohup sleep {s} >/dev/null 2>&1 & disown; echo started",
        "(( sleep {s} & ) & ) ; echo started",
        "setsid -f sh -c 'sleep {s}'; echo started; sleep 30",
    ],
)
def test_nothing_a_read_task_starts_outlives_it(agent: CloudAgent, escape: str) -> None:
    seconds = f"31{random.randrange(10_000, 99_999)}"
    result = agent.run({"type": "shell", "command": escape.format(s=seconds), "timeout": 1})

    assert result.output is not None and result.output.startswith("started")
    _all_gone(f"sleep\0{seconds}")


def test_resource_limits_apply(agent: CloudAgent) -> None:
    output, _, _ = _run(agent, "ulimit -t; ulimit -v; ulimit -u; ulimit -f")

    config = SandboxConfig()
    assert output.split() == [
        str(config.cpu_seconds),
        str(config.memory_mb * 1024),
        str(config.processes),
        str(config.file_size_mb * 1024),  # bash counts file size in blocks of 1024 bytes
    ]


@pytest.fixture
def health_url() -> Iterator[str]:
    with health_endpoint() as url:
        yield url


def test_the_network_stays_unless_the_environment_says_none(
    tmp_path: Path, health_url: str, classifier_off: None
) -> None:
    with _agent(tmp_path) as agent:
        output, _, _ = _run(agent, f"curl -s {health_url}")
    assert output == '{"status": "ok"}'

    with _agent(tmp_path / "offline", sandbox={"network": "none"}) as agent:
        output, _, _ = _run(agent, f"curl -s -m 2 {health_url}; echo exit=$?")
    assert output == "exit=7\n"  # curl: could not connect


def test_ordinary_diagnostics_work_in_the_sandbox(agent: CloudAgent, health_url: str) -> None:
    for command, expected in [
        ("df -h", "Filesystem"),
        ("free -m", "Mem:"),
        ("top -bn1 | head -5", "load average"),
        ("ps aux", "postgres"),  # the host's processes, with their users' names
        ("ss -tlnp", ":5432"),
        ("netstat -tlnp", "LISTEN"),
        ("tail -n 5 /var/log/dpkg.log", ""),
        ("journalctl -n 5 --no-pager", ""),
        ("cat /proc/loadavg", "/"),
        ("uptime", "load average"),
        (f"curl -s {health_url}", "ok"),
    ]:
        result = agent.run({"type": "shell", "command": command, "timeout": 15})
        assert result.status is TaskStatus.SUCCEEDED, (command, result.error, result.stderr)
        assert expected in (result.output or ""), (command, result.output)


def test_sandbox_off_runs_with_a_warning_in_the_result_and_the_audit_log(tmp_path: Path, classifier_off: None) -> None:
    with _agent(tmp_path, sandbox=False) as agent:
        result = agent.run({"type": "shell", "command": "id -un"})
        records = agent.audit.query()

    assert result.status is TaskStatus.SUCCEEDED
    assert result.output == "root\n"
    assert result.warnings and "sandbox: off" in result.warnings[0]
    finished = [record for record in records if record.event == "finished"]
    assert finished and "warning: ran without the sandbox" in (finished[-1].message or "")


def test_without_its_user_the_sandbox_refuses_read_tasks_and_names_the_fix(
    tmp_path: Path, classifier_off: None
) -> None:
    with _agent(tmp_path, sandbox={"user": "no-such-sandbox-user"}) as agent:
        result = agent.run({"type": "shell", "command": "echo ran"})

    assert result.status is TaskStatus.FAILED
    assert result.output is None
    assert result.error is not None and result.error.code == "sandbox_unavailable"
    assert "prepare-sandbox.sh" in result.error.message and "sandbox: off" in result.error.message


def test_without_bubblewrap_read_tasks_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import executors._sandbox as sandbox

    _launchers.cache_clear()
    real_which = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install -y bubblewrap"):
            confinement(SandboxConfig(), RiskClass.READ, environment="x", inherited={})
    finally:
        _launchers.cache_clear()


def test_a_non_root_agent_cannot_sandbox_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import executors._sandbox as sandbox

    _launchers.cache_clear()
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: pwd.getpwnam(SANDBOX_USER).pw_uid)
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="only a root agent"):
            confinement(SandboxConfig(), RiskClass.READ, environment="x", inherited={})
    finally:
        _launchers.cache_clear()


def test_an_approved_write_keeps_its_privileges_but_nothing_outlives_it(tmp_path: Path) -> None:
    seconds = f"32{random.randrange(10_000, 99_999)}"
    target = Path("/var/tmp") / f"ca-write-{uuid.uuid4().hex}"
    with _agent(tmp_path) as agent:
        result = agent.run(
            {
                "type": "shell",
                "command": f"touch {target}; (setsid sleep {seconds} &); id -un",
            },
            approval=Approval(approved_by="test-approver"),
        )
    try:
        assert result.status is TaskStatus.SUCCEEDED, result.error
        assert result.risk is RiskClass.WRITE
        assert result.output == "root\n"
        assert target.exists()
        _all_gone(f"sleep\0{seconds}")
    finally:
        target.unlink(missing_ok=True)


def test_sandbox_configuration_reads_on_and_off() -> None:
    assert SandboxConfig.model_validate(False).enabled is False
    assert SandboxConfig.model_validate("off").enabled is False
    assert SandboxConfig.model_validate("on").enabled is True
    assert SandboxConfig.model_validate({"network": "none"}).network == "none"
    with pytest.raises(ValueError, match="network"):
        SandboxConfig.model_validate({"network": "bridge"})
