"""A Prefect server this installation starts for itself when no Prefect API is configured.

Single tasks need no Prefect (``cloud-agent serve`` runs them on the engine at once); an incident
cycle does. Without ``PREFECT_API_URL``, the first alert starts ``prefect server start`` (UI
included, its SQLite database in ``<state_dir>/prefect/``) in a process of its own, in the
background: the cycle waits for it, a task never does.

One server per state folder. The process that starts it holds a lock on the folder and writes the
server's URL beside it; another process of the same installation (``cloud-agent incident`` while
the gateway serves, a second gateway) uses that server instead of starting a second one on the
same database file — two Prefect servers migrating one SQLite file at once is what answered
"database is locked". Prefect's own fallback, a temporary server per process started by whichever
thread first needs an API, raced exactly so.

The server stops with the process that started it: ``stop()`` at the end of its lifespan (SIGTERM,
Ctrl-C, the end of a command), and the kernel's parent-death signal (``PR_SET_PDEATHSIG``) if that
process dies without a word. The signal follows the *thread* that started the server, so
``start()`` is called from a thread that lives as long as the server should (the event loop's).

    server = LocalPrefectServer(state_dir / "prefect")
    server.start()                      # returns at once
    server.wait_ready(timeout=120)      # the API URL, once it answers
    server.stop()
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx
import structlog

log = structlog.get_logger("cloud_agent.gateway")

#: How long a server may take to answer its health check (a loaded 2-core machine needed ~25 s).
STARTUP_SECONDS = 120.0
#: Runs in the child before ``prefect server start``: the kernel sends it SIGTERM when the thread
#: that started it ends, and it gives up at once if that already happened.
_LAUNCHER = """\
import ctypes, os, signal, sys
prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
if prctl is not None:
    prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""
_LOCK, _URL, _LOG = "server.lock", "api-url", "server.log"


class LocalPrefectUnavailable(RuntimeError):
    """The local Prefect server did not start, or stopped (one line; its log file is named)."""


class LocalPrefectServer:
    """The installation's own Prefect server (see the module docstring).

    Args:
        home: its folder: database, log, lock and URL files.
        port: where it listens (``None``: a free port).
        startup_seconds: how long it may take to answer.
        on_ready: called with the API URL once a server this process started answers, before
            anyone waiting for it is let through (to settle what a previous owner left).
    """

    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        startup_seconds: float = STARTUP_SECONDS,
        on_ready: Callable[[str], object] | None = None,
    ):
        self.home = Path(home)
        self.port = port
        self.startup_seconds = startup_seconds
        self.on_ready = on_ready
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._ready = threading.Event()
        self._failure: str | None = None
        self.started_at: float | None = None
        self.ready_after: float | None = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str | None:
        """Its API URL (known from ``start()`` on, answering once ``ready``)."""
        return self._url

    @property
    def ui_url(self) -> str | None:
        return self._url.removesuffix("/api") if self._url else None

    @property
    def started(self) -> bool:
        return self._url is not None

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._failure is None

    @property
    def failure(self) -> str | None:
        """Why the server did not start, once that is known."""
        return self._failure

    @property
    def owned(self) -> bool:
        """Started by this process (and stopped by it), rather than found running."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.home / _LOG

    def running_elsewhere(self) -> str | None:
        """The API URL of this installation's server when another process runs it, else ``None``
        (nothing is started: for a request that needs the server only if it already runs)."""
        if self._url is not None:
            return self._url
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._running_elsewhere()
        finally:
            os.close(fd)  # releases the lock if this process got it
        return None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server, or find the one this installation runs; its API URL. Returns at once."""
        with self._lock:
            if self._url is not None:
                return self._url
            self.home.mkdir(parents=True, exist_ok=True)
            self.started_at = time.monotonic()
            self._failure = None
            fd = os.open(self.home / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._url = self._running_elsewhere()
            else:
                self._lock_fd = fd
                self._url = self._launch()
            threading.Thread(target=self._watch, name="local-prefect-health", daemon=True).start()
            return self._url

    def _launch(self) -> str:
        port = self.port or _free_port()
        url = f"http://127.0.0.1:{port}/api"
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        }
        env.pop("PREFECT_API_URL", None)
        command = ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        with (self.home / _LOG).open("ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches the gateway, which stops it in order.
                start_new_session=True,
            )
        (self.home / _URL).write_text(url + "\n", encoding="utf-8")
        log.info("local_prefect_starting", ui=url.removesuffix("/api"), home=str(self.home), pid=self._process.pid)
        return url

    def _running_elsewhere(self) -> str:
        # The owner writes the URL right after taking the lock: give it a moment.
        deadline = time.monotonic() + 5.0
        while True:
            with contextlib.suppress(OSError):
                url = (self.home / _URL).read_text(encoding="utf-8").strip()
                if url:
                    log.info("local_prefect_shared", ui=url.removesuffix("/api"), home=str(self.home))
                    return url
            if time.monotonic() > deadline:
                raise LocalPrefectUnavailable(
                    f"another process holds {self.home / _LOCK} but wrote no server URL in {self.home / _URL}"
                )
            time.sleep(0.05)

    def _watch(self) -> None:
        assert self._url is not None and self.started_at is not None
        deadline = self.started_at + self.startup_seconds
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                process = self._process
                if process is not None and process.poll() is not None:
                    self._fail(f"the local Prefect server exited with code {process.returncode}; see {self.log_path}")
                    return
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self._url}/health").status_code == 200:
                        self.ready_after = time.monotonic() - self.started_at
                        log.info("local_prefect_ready", ui=self.ui_url, seconds=round(self.ready_after, 1))
                        self._settle()
                        self._ready.set()
                        return
                time.sleep(0.2)
        self._fail(f"the local Prefect server did not answer within {self.startup_seconds:g} s; see {self.log_path}")

    def _settle(self) -> None:
        if self.on_ready is None or self._process is None or self._url is None:
            return
        try:
            self.on_ready(self._url)
        except Exception as exc:  # the server works; what it holds from before stays as it was
            log.warning("local_prefect_settle_failed", error=f"{type(exc).__name__}: {exc}")

    def _fail(self, message: str) -> None:
        self._failure = message
        log.error("local_prefect_failed", error=message)
        self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> str:
        """Block until the server answers; its API URL.

        Raises:
            LocalPrefectUnavailable: it was not started, failed to start, or is still starting at ``timeout``.
        """
        if self._url is None:
            raise LocalPrefectUnavailable("the local Prefect server was not started")
        if not self._ready.wait(timeout):
            raise LocalPrefectUnavailable(f"the local Prefect server is still starting (see {self.log_path})")
        if self._failure is not None:
            raise LocalPrefectUnavailable(self._failure)
        return self._url

    def stop(self, grace_seconds: float = 15.0) -> None:
        """Stop the server if this process started it (a shared one is its owner's to stop)."""
        with self._lock:
            process, self._process = self._process, None
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=grace_seconds)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                with contextlib.suppress(OSError):
                    (self.home / _URL).unlink()
                log.info("local_prefect_stopped", pid=process.pid)
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None
            self._url = None
            self._ready.clear()

    def __enter__(self) -> LocalPrefectServer:
        self.start()
        try:
            self.wait_ready(self.startup_seconds)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
