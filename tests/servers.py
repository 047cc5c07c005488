"""Processes the tests start and stop on purpose (private database servers, a ``cloud-agent
worker`` and a ``cloud-agent serve``), and the waits on them: a free port, a condition polled
with a deadline.

The machine's PostgreSQL, MariaDB and Redis are shared with other test runs and are never
stopped; a "server stopped mid-collection" fault stops a private instance of its own, on a free
port, in a temporary folder. Every class here is a context manager that kills what it started,
whatever happens in between.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = 30.0, every: float = 0.05) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"{what} within {timeout:g} s")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class _Server:
    """A server process of our own: ``start``, ``stop`` (clean), ``kill`` (SIGKILL), ``restart``."""

    name = "server"
    #: The signal that stops the server cleanly but at once (clients are cut off).
    stop_signal: int = signal.SIGTERM

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix=f"reliability-{self.name}-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._log = self.folder / "server.log"

    # -- to implement ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the data folder (once)."""

    def _argv(self) -> list[str]:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------

    def _as_service_user(self, user: str, argv: list[str]) -> list[str]:
        # initdb and mariadbd refuse to run as root; they run as their own system user then.
        if os.geteuid() == 0:
            shutil.chown(self.folder, user)
            return ["runuser", "-u", user, "--", *argv]
        return argv

    def start(self) -> Self:
        if self.process is None:
            self._prepare()
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                self._argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.folder
            )
        wait_until(self.ready, what=f"the private {self.name} did not start on port {self.port}", timeout=60)
        return self

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the private {self.name} exited: {self._log.read_text()[-2000:]}")
        return _port_open(self.port)

    def stop(self) -> None:
        """Stop it the way an operator would (clients in flight are disconnected)."""
        _stop(self.process, self.stop_signal)

    def kill(self) -> None:
        """Stop it the way a crash does."""
        _stop(self.process, signal.SIGKILL)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PrivatePostgres(_Server):
    """A PostgreSQL cluster of our own (trust authentication, user ``postgres``, database ``test``)."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: sessions are terminated, the server goes away

    def _binary(self, program: str) -> str:
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
        if found:
            return found[-1]
        path = shutil.which(program)
        if path is None:
            raise RuntimeError(f"PostgreSQL's {program} is not installed")
        return path

    def _prepare(self) -> None:
        data = self.folder / "data"
        argv = [self._binary("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
        subprocess.run(self._as_service_user("postgres", argv), check=True, capture_output=True, cwd=self.folder)

    def _argv(self) -> list[str]:
        argv = [
            self._binary("postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
            "-c", "fsync=off", "-c", "max_connections=100", "-c", "shared_buffers=16MB",
        ]  # fmt: skip
        return self._as_service_user("postgres", argv)

    def ready(self) -> bool:
        if not super().ready():
            return False
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2, autocommit=True) as db:
                if db.execute("SELECT 1 FROM pg_database WHERE datname = 'test'").fetchone() is None:
                    db.execute("CREATE DATABASE test")
            return True
        except psycopg.OperationalError:
            return False

    def dsn(self, dbname: str = "test") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The ``connections.yaml`` entry of this server."""
        return {"host": "127.0.0.1", "port": self.port, "dbname": "test", "user": "postgres", **extra}


class PrivateMariaDB(_Server):
    """A MariaDB server of our own (``root`` without a password over TCP, database ``test``)."""

    name = "mariadb"

    def _prepare(self) -> None:
        argv = [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.folder / 'data'}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        ]
        if os.geteuid() == 0:
            shutil.chown(self.folder, "mysql")
            argv.append("--user=mysql")
        subprocess.run(argv, check=True, capture_output=True, cwd=self.folder)

    def _argv(self) -> list[str]:
        argv = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.folder / 'data'}",
            f"--port={self.port}", f"--socket={self.folder / 'mariadb.sock'}", "--bind-address=127.0.0.1",
            "--skip-log-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=16M", f"--pid-file={self.folder}/pid",
        ]  # fmt: skip
        if os.geteuid() == 0:
            argv.append("--user=mysql")
        return argv

    def ready(self) -> bool:
        if not super().ready():
            return False
        import pymysql

        try:
            db = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2, autocommit=True)
        except pymysql.MySQLError:
            return False
        try:
            with db.cursor() as cursor:
                cursor.execute("CREATE DATABASE IF NOT EXISTS test")
        finally:
            db.close()
        return True

    def connection(self, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "user": "root", "database": "test", **extra}


@dataclass(frozen=True)
class IncidentServers:
    """The PostgreSQL (telemetry tables, "pool" fault) and MariaDB (databases, "latency" fault) a
    demo incident lives on (``gateway.demo.scenario.prepared_incident``)."""

    postgres: PrivatePostgres
    mariadb: PrivateMariaDB


class PrivateRedis(_Server):
    """A Redis of our own, without persistence; ``password`` sets ``requirepass``."""

    name = "redis"

    def __init__(self, password: str | None = None) -> None:
        super().__init__()
        self.password = password

    def _argv(self) -> list[str]:
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def url(self, password_ref: str | None = None) -> str:
        """``redis://`` URL; ``password_ref`` (e.g. ``${NAME}``) goes where the password does."""
        auth = f":{password_ref}@" if password_ref else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"


# -- our own programs -----------------------------------------------------------------------------


class CloudAgentProcess:
    """A ``cloud-agent`` command in its own process group (``serve`` or ``worker``)."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log: Path):
        self.argv = [str(BIN / "cloud-agent"), *argv]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process itself only: what it started in sessions of their own is left alone."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)
            self.process.wait(30)

    def close(self) -> None:
        _stop(self.process, signal.SIGTERM, grace=10)

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (``VmHWM``)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ServedGateway(CloudAgentProcess):
    """``cloud-agent serve`` on a free port; ``url`` once it answers ``/healthz``."""

    def __init__(self, env: Mapping[str, str], log: Path, port: int | None = None):
        self.port = port or free_port()
        super().__init__(["serve", "--port", str(self.port)], env, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        super().start()

        def healthy() -> bool:
            if not self.alive():
                raise RuntimeError(f"cloud-agent serve exited: {self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, what="cloud-agent serve did not answer /healthz", timeout=60, every=0.1)
        return self


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (a task's unique argument)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry))
    return found


def kill_processes_with(marker: str) -> None:
    """Clean-up after a test whose task process might have outlived its parent."""
    for pid in processes_with(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
