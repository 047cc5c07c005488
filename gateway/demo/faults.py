"""Real faults, injected into real local servers, for the demo and the integration tests.

Each fault is a context manager: entering starts it and waits until it is visible from outside
(the database shows the stuck sessions, the dependency answers 500), leaving stops it and
undoes everything it changed. They touch only what they create: their own sessions (marked with
an ``application_name``), their own table, their own HTTP server, their own Redis process.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import redis

#: Sessions the faults open carry this application name, so the verification can see them and a
#: fix that terminates them touches nothing else.
FAULT_APPLICATION = "orders-service"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresConnectionHog(AbstractContextManager["PostgresConnectionHog"]):
    """An application whose connection pool is exhausted by long-running queries.

    ``sessions`` connections each run a ``pg_sleep`` query for ``hold_seconds`` (what a slow report
    query or a stuck transaction looks like in ``pg_stat_activity``); with ``lock`` one of them
    holds an exclusive lock on a table that the others wait for.
    """

    dsn: str = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    sessions: int = 10
    hold_seconds: float = 600.0
    lock: bool = True
    application_name: str = FAULT_APPLICATION
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _connections: list[psycopg.Connection] = field(default_factory=list, init=False)

    def __enter__(self) -> PostgresConnectionHog:
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute("CREATE TABLE IF NOT EXISTS rca_demo_orders (id serial PRIMARY KEY, amount numeric)")
        for index in range(self.sessions):
            connection = psycopg.connect(self.dsn, autocommit=True, application_name=self.application_name)
            self._connections.append(connection)
            if self.lock and index == 0:
                sql = (
                    "BEGIN; LOCK TABLE rca_demo_orders IN ACCESS EXCLUSIVE MODE; "
                    f"SELECT pg_sleep({self.hold_seconds}); COMMIT"
                )
            elif self.lock:
                sql = f"SELECT count(*), pg_sleep({self.hold_seconds}) FROM rca_demo_orders"
            else:
                sql = f"SELECT pg_sleep({self.hold_seconds})"
            thread = threading.Thread(target=_run_quietly, args=(connection, sql), daemon=True)
            thread.start()
            self._threads.append(thread)
        _wait_until(lambda: self.stuck_sessions() >= self.sessions, what="the stuck PostgreSQL sessions")
        return self

    def stuck_sessions(self) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
                (self.application_name,),
            ).fetchone()
        return int(row[0]) if row else 0

    def __exit__(self, *exc_info: object) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (self.application_name,),
            )
        for connection in self._connections:
            connection.close()
        for thread in self._threads:
            thread.join(timeout=5)


@dataclass
class MySQLConnectionHog(AbstractContextManager["MySQLConnectionHog"]):
    """The MariaDB/MySQL twin of ``PostgresConnectionHog``: sessions stuck in ``SELECT SLEEP``."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = "test"
    sessions: int = 10
    hold_seconds: float = 600.0
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _ids: list[int] = field(default_factory=list, init=False)

    def _connect(self) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            autocommit=True,
        )

    def __enter__(self) -> MySQLConnectionHog:
        for _ in range(self.sessions):
            connection = self._connect()
            self._ids.append(connection.thread_id())
            thread = threading.Thread(
                target=_run_quietly_mysql,
                args=(connection, f"SELECT SLEEP({self.hold_seconds}) AS {FAULT_APPLICATION.replace('-', '_')}"),
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        _wait_until(lambda: self.stuck_sessions() >= self.sessions, what="the stuck MySQL sessions")
        return self

    def stuck_sessions(self) -> int:
        admin = self._connect()
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM information_schema.processlist WHERE info LIKE %s",
                    (f"%SLEEP({self.hold_seconds})%",),
                )
                row = cursor.fetchone()
        finally:
            admin.close()
        # The probe's own query text matches its LIKE pattern too.
        return max(int(row[0]) - 1, 0) if row else 0

    def __exit__(self, *exc_info: object) -> None:
        admin = self._connect()
        try:
            with admin.cursor() as cursor:
                for thread_id in self._ids:
                    with suppress(pymysql.MySQLError):  # already gone (a fix killed it)
                        cursor.execute(f"KILL {int(thread_id)}")
        finally:
            admin.close()
        for thread in self._threads:
            thread.join(timeout=5)


class _FailingHandler(http.server.BaseHTTPRequestHandler):
    status = 500

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        server = self.server
        status = getattr(server, "status", 500)
        body = json.dumps(
            {
                "status": "down" if status >= 500 else "ok",
                "error": "connection refused by upstream" if status >= 500 else None,
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class FailingDependency(AbstractContextManager["FailingDependency"]):
    """A dependency service whose health check and API answer ``status`` (500 by default)."""

    status: int = 500
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FailingDependency:
        self.port = self.port or free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _FailingHandler)
        self._server.status = self.status  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def recover(self) -> None:
        """The dependency comes back (what a successful restart looks like from outside)."""
        if self._server is not None:
            self._server.status = 200  # type: ignore[attr-defined]

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class RedisEvictionStorm(AbstractContextManager["RedisEvictionStorm"]):
    """A private Redis (its own process and port) with too little memory, evicting keys hard."""

    maxmemory: str = "2mb"
    keys: int = 20_000
    value_bytes: int = 512
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _dir: Path | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisEvictionStorm:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; the cache fault needs it")
        self.port = self.port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="rca-redis-"))
        self._process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--maxmemory",
                self.maxmemory,
                "--maxmemory-policy",
                "allkeys-lru",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        _wait_until(lambda: _pingable(client), what="the private Redis")
        payload = b"x" * self.value_bytes
        pipe = client.pipeline(transaction=False)
        for index in range(self.keys):
            pipe.set(f"session:{index}", payload)
            if index % 1000 == 999:
                pipe.execute()
        pipe.execute()
        for index in range(0, self.keys, 7):  # reads of evicted sessions miss
            client.get(f"session:{index}")
        client.close()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _pingable(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _run_quietly(connection: psycopg.Connection, sql: str) -> None:
    with suppress(psycopg.Error):  # terminated by the fix or by __exit__: that is the point
        connection.execute(sql)


def _run_quietly_mysql(connection: pymysql.connections.Connection, sql: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    except pymysql.MySQLError:
        pass
    finally:
        with suppress(pymysql.MySQLError):
            connection.close()


def _wait_until(condition: Any, *, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not appear within {timeout:g} s")
