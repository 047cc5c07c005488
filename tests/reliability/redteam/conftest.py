"""Fixtures of the red team: private servers with passwords and read accounts, canary secrets, the
exfiltration sink, a health endpoint, a twin agent process, and one ``Report`` per mode."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import executors._policy
from executors import CloudAgent, EnvironmentCatalog, open_audit_log
from tests.http_stubs import health_endpoint
from tests.reliability.redteam.attempts import AttemptClass, load_attempts
from tests.reliability.redteam.databases import (
    READ_USER,
    REDIS_READ_USER,
    GuardedMariaDB,
    GuardedPostgres,
    GuardedRedis,
    Passwords,
    SocketRedis,
    create_read_accounts,
)
from tests.reliability.redteam.harness import Range, Report, Servers, Shared
from tests.reliability.redteam.leaks import ExfilSink, SecretWatch
from tests.reliability.redteam.stale import SERVER_MARK, clean_stale_runs
from tests.servers import BIN, ROOT

MODES = ("classifier", "classifier_off")
#: Environment variables holding the servers' passwords (names the executor keeps from its children).
PASSWORD_VARIABLES = {
    "pg_admin": "REDTEAM_PG_PASSWORD",
    "pg_read": "REDTEAM_PG_READ_PASSWORD",
    "mysql_admin": "REDTEAM_MYSQL_PASSWORD",
    "mysql_read": "REDTEAM_MYSQL_READ_PASSWORD",
    "redis_admin": "REDTEAM_REDIS_PASSWORD",
    "redis_read": "REDTEAM_REDIS_READ_PASSWORD",
}
AGENT_TOKEN_VARIABLE = "REDTEAM_AGENT_TOKEN"
TWIN_TOKEN_VARIABLE = "REDTEAM_TWIN_TOKEN"


def _token() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="module", autouse=True)
def _no_stale_runs() -> None:
    """Clean what red-team runs that died (a pytest timeout, a killed job) left on this machine."""
    clean_stale_runs()


@pytest.fixture(scope="module")
def canary_secrets() -> dict[str, str]:
    names = ["agent_token", "twin_token", "root_file", "etc_file", "pg_marker", "mysql_marker", *PASSWORD_VARIABLES]
    return {name: _token() for name in names}


@contextlib.contextmanager
def private_servers(passwords: Passwords) -> Iterator[Servers]:
    """The four servers, started side by side, with their read accounts; stopped whatever happens."""
    made = [
        GuardedPostgres(passwords.pg_admin),
        GuardedMariaDB(passwords.mysql_admin),
        GuardedRedis(passwords.redis_admin, passwords.redis_read),
        SocketRedis(),
    ]
    for server in made:
        (server.folder / SERVER_MARK).touch()  # what a run that dies leaves is found by this
    try:
        with ThreadPoolExecutor(len(made)) as pool:
            for future in [pool.submit(server.start) for server in made]:
                future.result()
        servers = Servers(*made)  # type: ignore[arg-type]
        create_read_accounts(servers.postgres, servers.mariadb, servers.redis, passwords)
        yield servers
    finally:
        for server in made:
            server.close()


def _verifiers(servers: Servers) -> dict[str, str]:
    """The servers' stored password verifiers: as good as a password to some clients."""
    with servers.postgres.connect() as db:
        scram = db.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone()[0]  # type: ignore[index]
    mysql = servers.mariadb.connect()
    try:
        with mysql.cursor() as cursor:
            cursor.execute("SELECT authentication_string FROM mysql.user WHERE user = 'root' AND host = '127.0.0.1'")
            native = cursor.fetchone()[0]  # type: ignore[index]
            cursor.execute(f"SELECT authentication_string FROM mysql.user WHERE user = '{READ_USER}'")
            read_native = cursor.fetchone()[0]  # type: ignore[index]
    finally:
        mysql.close()
    return {"postgres admin SCRAM verifier": scram, "mariadb admin password hash": native,
            "mariadb read password hash": read_native}  # fmt: skip


def _shadow_lines() -> list[str]:
    with contextlib.suppress(OSError):
        return [
            line for line in Path("/etc/shadow").read_text().splitlines() if line.count(":") >= 8 and len(line) >= 20
        ]
    return []


@pytest.fixture(scope="module")
def health_url() -> Iterator[str]:
    with health_endpoint() as url:
        yield url


@pytest.fixture(scope="module")
def twin_agent(canary_secrets: dict[str, str]) -> Iterator[int]:
    """Another agent process on the host, its token in its (initial) environment."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)", "redteam-twin-agent"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), TWIN_TOKEN_VARIABLE: canary_secrets["twin_token"]},
        start_new_session=True,
    )
    yield process.pid
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _log_file() -> str:
    for name in ("dpkg.log", "alternatives.log", "fontconfig.log", "apt/history.log"):
        path = Path("/var/log") / name
        if path.is_file() and path.stat().st_mode & 0o004 and path.stat().st_size:
            return str(path)
    pytest.skip("no world-readable log file under /var/log to tail")


def write_config(folder: Path, servers: Servers) -> Path:
    """The ``local`` environment: admin and read credentials for every private server."""
    local = folder / "local"
    local.mkdir(parents=True)
    environment = {
        "agents": ["agent-local-001"],
        "limits": {"max_timeout_seconds": 60, "max_concurrent_tasks_per_agent": 64, "read_retries": 0},
        "policy": {"max_risk": "destructive"},
    }
    connections = {
        "postgres": {"default": {
            **servers.postgres.connection(), "password": "${REDTEAM_PG_PASSWORD}",
            "read_user": READ_USER, "read_password": "${REDTEAM_PG_READ_PASSWORD}",
        }},
        "mysql": {"default": {
            **servers.mariadb.connection(), "password": "${REDTEAM_MYSQL_PASSWORD}",
            "read_user": READ_USER, "read_password": "${REDTEAM_MYSQL_READ_PASSWORD}",
        }},
        "redis": {"default": {
            "url": f"redis://:${{REDTEAM_REDIS_PASSWORD}}@127.0.0.1:{servers.redis.port}/0",
            "read_url": f"redis://{REDIS_READ_USER}:${{REDTEAM_REDIS_READ_PASSWORD}}@127.0.0.1:{servers.redis.port}/0",
        }},
        "api": {"default": {}},
    }  # fmt: skip
    (local / "environment.yaml").write_text(yaml.safe_dump(environment))
    (local / "connections.yaml").write_text(yaml.safe_dump(connections))
    return folder


@pytest.fixture(scope="module")
def shared(canary_secrets: dict[str, str], health_url: str, twin_agent: int) -> Iterator[Shared]:
    watch = SecretWatch()
    for name, value in canary_secrets.items():
        watch.add(name, value)
    for line in _shadow_lines():
        watch.add(f"/etc/shadow line of {line.split(':', 1)[0]}", line, random=False)
    sink = ExfilSink()
    try:
        yield Shared(
            watch=watch,
            sink=sink,
            twin_pid=twin_agent,
            health_url=health_url,
            log_file=_log_file(),
            cli=BIN / "cloud-agent",
            secrets=canary_secrets,
        )
    finally:
        sink.close()


#: The reports of this session's modes, printed as tables when pytest ends.
REPORTS: list[Report] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for report in REPORTS:
        terminalreporter.section(f"red team: {report.mode}")
        terminalreporter.write_line(report.table())


def _assess_everything_as_read(self: Any, spec: Any) -> executors._policy.Assessment:
    return executors._policy.Assessment()


@pytest.fixture(scope="module", params=MODES)
def report(
    request: pytest.FixtureRequest, shared: Shared, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Report]:
    """Every attempt run once in the mode against fresh private servers, every canary checked."""
    mode = request.param
    folder = tmp_path_factory.mktemp(f"redteam-{mode}")
    state_dir = folder / "state"
    state_dir.mkdir()
    # REDTEAM_ONLY=REGEX runs only the attempts whose id matches (and the positives), for debugging.
    only = re.compile(os.environ.get("REDTEAM_ONLY", ""))
    attempts = [a for a in load_attempts() if only.search(a.id) or a.cls is AttemptClass.POSITIVE]
    passwords = Passwords(**{name: shared.secrets[name] for name in PASSWORD_VARIABLES})
    with private_servers(passwords) as servers, pytest.MonkeyPatch.context() as patch:
        watch = shared.watch.copy()
        for name, value in _verifiers(servers).items():
            watch.add(name, value)
        config_dir = write_config(folder / "deployments", servers)
        if mode == "classifier_off":
            patch.setattr(executors._policy.Policy, "assess", _assess_everything_as_read)
        for name, variable in PASSWORD_VARIABLES.items():
            patch.setenv(variable, shared.secrets[name])
        patch.setenv(AGENT_TOKEN_VARIABLE, shared.secrets["agent_token"])
        patch.setenv("CLOUD_AGENT_CONFIG_DIR", str(config_dir))
        patch.setenv("CLOUD_AGENT_STATE_DIR", str(state_dir))
        agent = CloudAgent(
            EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir / 'audit.sqlite3'}")
        )
        arena = Range(mode, agent, replace(shared, watch=watch), servers, state_dir, use_cli=mode == "classifier")
        try:
            # Tasks inherit the working folder, HOME and a tag that finds them if they outlive their task.
            patch.chdir(arena.cwd)
            patch.setenv("HOME", str(arena.home))
            patch.setenv("REDTEAM_TASK_TAG", arena.leftovers.tag)
            arena.cli_env = {**os.environ, "PYTHONPATH": str(ROOT)}
            result = arena.run(attempts)
            dump = os.environ.get("REDTEAM_REPORT")  # a folder: each mode's outcomes as JSON, for study
            if dump:
                Path(dump).mkdir(parents=True, exist_ok=True, mode=0o700)
                target = Path(dump) / f"{mode}.json"
                target.touch(mode=0o600)
                target.write_text(result.to_json())
            REPORTS.append(result)
            yield result
        finally:
            agent.close()
            arena.close()
