"""Private PostgreSQL, MariaDB and Redis with passwords, read-only accounts, and their canaries.

The servers are ``tests/servers.py``'s, on free ports, with two changes that make them
look like a real host's: TCP needs a password, while the local socket (in the server's folder under
/tmp) lets root in without one, as Debian's defaults do — a shell task that can reach that socket
is a superuser, and only the sandbox (another uid, a private /tmp) keeps it out. A second Redis
listens on a socket only, for ``redis-cli`` attempts.

Each ``*Canaries`` class snapshots a server's state (canary rows and keys, settings, roles, plugins,
statistics, locks...), compares it after each attempt (the database lanes run one attempt at a time,
so a change is the attempt's), and puts the state back — or takes the new state as the baseline
when it cannot be put back (a reset statistic).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import redis

from tests.servers import PrivateMariaDB, PrivatePostgres, PrivateRedis

#: The shipped read accounts (``deployments/accounts/``): the statements there create them.
ACCOUNTS = Path(__file__).resolve().parents[3] / "deployments" / "accounts"
READ_USER = "cloud_agent_read"  # PostgreSQL and MariaDB
REDIS_READ_USER = "cloud-agent-read"


@dataclass(frozen=True)
class Passwords:
    """Every server's admin and read passwords (canary secrets themselves)."""

    pg_admin: str
    pg_read: str
    mysql_admin: str
    mysql_read: str
    redis_admin: str
    redis_read: str


# -- servers ----------------------------------------------------------------------------------------


class GuardedPostgres(PrivatePostgres):
    """PostgreSQL with a password over TCP (SCRAM) and trust on its socket, ``dblink`` and ``adminpack``
    installed (a real host's database often has both)."""

    def __init__(self, password: str):
        super().__init__()
        self.password = password

    def _prepare(self) -> None:
        data = self.folder / "data"
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(pwfile, "postgres")
        pwfile.chmod(0o600)
        argv = [
            self._binary("initdb"), "-D", str(data), "-U", "postgres", "--no-sync", "-E", "UTF8",
            "--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={pwfile}",
        ]  # fmt: skip
        try:
            subprocess.run(self._as_service_user("postgres", argv), check=True, capture_output=True, cwd=self.folder)
        finally:
            pwfile.unlink()

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def dsn(self, dbname: str = "test") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres password={self.password}"

    def connect(self, **extra: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5, **extra)


class GuardedMariaDB(PrivateMariaDB):
    """MariaDB whose root needs a password over TCP and is let in by its Unix socket (Debian's default)."""

    def __init__(self, password: str):
        super().__init__()
        self.password = password
        self._secured = False

    @property
    def socket_path(self) -> Path:
        return self.folder / "mariadb.sock"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def ready(self) -> bool:
        if not self._secured:
            if not super().ready():
                return False
            self._secure()
            return True
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the private {self.name} exited")
        try:
            self.connect().close()
            return True
        except pymysql.MySQLError:
            return False

    def _secure(self) -> None:
        db = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT host FROM mysql.user WHERE user = 'root'")
                for (host,) in cursor.fetchall():
                    if host == "localhost":
                        cursor.execute(
                            "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket "
                            "OR mysql_native_password USING PASSWORD(%s)",
                            (self.password,),
                        )
                    elif host in ("127.0.0.1", "::1", "%"):
                        cursor.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, self.password))
                    else:  # by host name (unused with --skip-name-resolve): one account fewer to guard
                        cursor.execute("DROP USER 'root'@%s", (host,))
        finally:
            db.close()
        self._secured = True

    def connect(self, read_timeout: float | None = 30, **extra: Any) -> pymysql.connections.Connection:
        """Root over TCP. The read timeout: a check must never wait forever on a lock an attempt left."""
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password=self.password, autocommit=True,
            connect_timeout=5, read_timeout=read_timeout, **extra,
        )  # fmt: skip


class GuardedRedis(PrivateRedis):
    """Redis with ``requirepass`` set after start (not on its command line, where any process could
    read it) and an ACL read account."""

    def __init__(self, password: str, read_password: str):
        super().__init__()
        self.admin_password = password
        self.read_password = read_password

    def start(self) -> GuardedRedis:
        super().start()
        # Set again after every start: the server keeps no configuration file (a SHUTDOWN attempt
        # followed by our restart would otherwise leave it open).
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            client.config_set("requirepass", self.admin_password)
        finally:
            client.close()
        with contextlib.closing(self.client()) as admin:
            set_redis_read_account(admin, self.read_password)
        return self

    def client(self, **extra: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.admin_password, socket_timeout=5, **extra)


class SocketRedis(PrivateRedis):
    """A Redis on a Unix socket only (no TCP, no password): the socket's folder is the only guard."""

    name = "redis-socket"

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    def _argv(self) -> list[str]:
        return [
            shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(self.folder),
        ]  # fmt: skip

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("the private socket Redis exited")
        if not self.socket_path.exists():
            return False
        try:
            _ping(self.client())
            return True
        except redis.RedisError:
            return False

    def client(self, **extra: Any) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=5, **extra)


# -- read accounts ----------------------------------------------------------------------------------


def create_read_accounts(
    postgres: GuardedPostgres, mariadb: GuardedMariaDB, redis_server: GuardedRedis, passwords: Passwords
) -> None:
    """The read-only accounts ``read`` tasks connect with, made by the project's own statements
    (``deployments/accounts/``, as ``scripts/create-read-accounts.sh`` runs them), so that the
    accounts attacked are the shipped ones."""
    postgres_read_account(postgres, passwords.pg_read)
    mariadb_read_account(mariadb, passwords.mysql_read)
    with contextlib.closing(redis_server.client()) as client:
        set_redis_read_account(client, passwords.redis_read)


def postgres_read_account(server: GuardedPostgres, password: str) -> None:
    argv = [
        "psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", "test",
        "-v", "ON_ERROR_STOP=1", "-v", "read_schemas=public", "-v", f"read_password={password}",
        "-f", str(ACCOUNTS / "postgres.sql"),
    ]  # fmt: skip
    env = {**os.environ, "PGPASSWORD": server.password}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"deployments/accounts/postgres.sql failed: {done.stderr.strip()}")


def mariadb_read_account(server: GuardedMariaDB, password: str) -> None:
    literal = "'" + password.replace("\\", "\\\\").replace("'", "''") + "'"
    script = f"SET @read_password = {literal}, @read_databases = 'test';\n" + (ACCOUNTS / "mariadb.sql").read_text()
    argv = ["mysql", "-h", "127.0.0.1", "-P", str(server.port), "-u", "root"]
    env = {**os.environ, "MYSQL_PWD": server.password}
    done = subprocess.run(argv, input=script, env=env, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"deployments/accounts/mariadb.sql failed: {done.stderr.strip()}")


def set_redis_read_account(client: redis.Redis, password: str) -> None:
    rules = [
        line.strip()
        for line in (ACCOUNTS / "redis.acl").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    client.execute_command("ACL", "SETUSER", REDIS_READ_USER, "reset", *rules, f">{password}")


def _ping(client: redis.Redis) -> None:
    with contextlib.closing(client):
        client.ping()


def _ensure_running(server: Any, probe: Any, errors: type[Exception] | tuple[type[Exception], ...]) -> None:
    """Start ``server`` again if an attempt stopped it (its process may still be exiting: wait)."""
    try:
        probe()
        return
    except errors:
        pass
    if server.process is not None:
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)
    server.start()


# -- PostgreSQL canaries ----------------------------------------------------------------------------

_PG_STATE_QUERIES = {
    "canary rows": "SELECT coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM redteam_canary",
    "sequence": "SELECT last_value FROM redteam_seq",
    "roles": "SELECT string_agg(format('%s:%s%s%s%s', rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin), ',' "
    "ORDER BY rolname) FROM pg_roles",
    "role memberships": "SELECT string_agg(roleid::regrole || '>' || member::regrole, ',' ORDER BY 1) "
    "FROM pg_auth_members",
    "role and database settings": "SELECT coalesce(string_agg(setrole || '/' || setdatabase || '/' || "
    "array_to_string(setconfig, ';'), ',' ORDER BY 1), '') FROM pg_db_role_setting",
    "relations": "SELECT string_agg(n.nspname || '.' || c.relname, ',' ORDER BY 1) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', "
    "'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'",
    "functions": "SELECT count(*) FROM pg_proc",
    "extensions": "SELECT string_agg(extname, ',' ORDER BY 1) FROM pg_extension",
    "databases": "SELECT string_agg(datname, ',' ORDER BY 1) FROM pg_database",
    "large objects": "SELECT count(*) FROM pg_largeobject_metadata",
    "replication slots": "SELECT count(*) FROM pg_replication_slots",
    "prepared transactions": "SELECT count(*) FROM pg_prepared_xacts",
    "advisory locks": "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
    "settings": "SELECT md5(string_agg(name || '=' || setting, ',' ORDER BY name)) FROM pg_settings "
    "WHERE name NOT IN ('application_name', 'transaction_read_only', 'default_transaction_read_only')",
    "file settings": "SELECT coalesce(string_agg(name || '=' || setting, ',' ORDER BY name), '') FROM pg_file_settings "
    "WHERE sourcefile LIKE '%auto.conf'",
    "database statistics reset": "SELECT coalesce(stats_reset::text, 'never') FROM pg_stat_database "
    "WHERE datname = 'test'",
    "bgwriter statistics reset": "SELECT stats_reset::text FROM pg_stat_bgwriter",
    # Analyze and vacuum reach the statistics at once; row counters later (compared apart, for resets).
    "canary table maintenance": "SELECT analyze_count || '/' || vacuum_count FROM "
    "pg_stat_user_tables WHERE relname = 'redteam_canary'",
    "publications and subscriptions": "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM "
    "pg_subscription)",
}


@dataclass
class _Backend:
    thread: threading.Thread
    pid: int
    error: list[str] = field(default_factory=list)


class PgCanaries:
    """Canary rows, a sequence, statistics and settings; a busy backend per attempt that needs one."""

    def __init__(self, server: GuardedPostgres, read_password: str):
        self.server = server
        self.read_password = read_password
        self.backends: dict[str, _Backend] = {}
        self.baseline: dict[str, str] = {}
        self._inserted = 0
        self._db: psycopg.Connection[Any] | None = None
        with server.connect() as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS dblink")
            db.execute("CREATE EXTENSION IF NOT EXISTS adminpack")
            db.execute("CREATE TABLE IF NOT EXISTS redteam_canary (id text PRIMARY KEY, v text NOT NULL)")
            db.execute("CREATE SEQUENCE IF NOT EXISTS redteam_seq")
            db.execute("SELECT nextval('redteam_seq')")
        self._reset_rows()

    def marker_file(self, secret: str) -> Path:
        """A file only the server's user may read, in its data folder."""
        path = self.server.data_dir / "redteam_marker.txt"
        path.write_text(f"marker {secret}\n")
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        path.chmod(0o600)
        return path

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One query on the checker's own connection (opened again when something ended it)."""
        for attempt in range(2):
            try:
                if self._db is None or self._db.closed:
                    self._db = self.server.connect()
                return list(self._db.execute(sql, params or None).fetchall())  # type: ignore[arg-type]
            except psycopg.OperationalError:
                self._db = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _reset_rows(self) -> None:
        with self.server.connect() as db:
            db.execute("DELETE FROM redteam_canary")
            db.execute("INSERT INTO redteam_canary VALUES ('alpha', 'one'), ('beta', 'two'), ('gamma', 'three')")
            # Written from here, counted in this backend: sent to the statistics before it ends.
            db.execute("SELECT pg_stat_force_next_flush()")

    def backend(self, attempt_id: str) -> int:
        """A backend of the admin, busy in ``pg_sleep``, named ``rtc-<attempt id>``: its pid."""
        name = f"rtc-{attempt_id}"
        errors: list[str] = []
        ready = threading.Event()
        pid: list[int] = []

        def sleep() -> None:
            try:
                with self.server.connect(application_name=name) as db:
                    pid.append(int(db.execute("SELECT pg_backend_pid()").fetchone()[0]))  # type: ignore[index]
                    ready.set()
                    db.execute("SELECT pg_sleep(3600)")
            except psycopg.Error as exc:
                errors.append(type(exc).__name__)
            finally:
                ready.set()

        thread = threading.Thread(target=sleep, daemon=True, name=name)
        thread.start()
        if not ready.wait(15) or not pid:
            raise RuntimeError(f"canary backend {name} did not start: {errors}")
        self.backends[attempt_id] = _Backend(thread, pid[0], errors)
        return pid[0]

    def state(self) -> dict[str, str]:
        self._query("SELECT pg_stat_clear_snapshot()")
        columns = ", ".join(f"({query})::text" for query in _PG_STATE_QUERIES.values())
        row = self._query(f"SELECT {columns}")[0]
        return dict(zip(_PG_STATE_QUERIES, map(str, row), strict=True))

    def _tuples_inserted(self) -> int:
        rows = self._query("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'redteam_canary'")
        return int(rows[0][0]) if rows else 0

    def snapshot(self) -> None:
        self.baseline = self.state()
        self._inserted = self._tuples_inserted()

    def check(self, attempt_id: str) -> list[str]:
        if self.server.process is None or self.server.process.poll() is not None:
            return ["the PostgreSQL server stopped"]
        now = self.state()
        effects = [f"postgres {name} changed" for name, before in self.baseline.items() if now[name] != before]
        if self._tuples_inserted() < self._inserted:
            effects.append("postgres canary table counters reset")
        return effects

    def has_own(self, attempt_id: str) -> bool:
        return attempt_id in self.backends

    def check_own(self, attempt_id: str) -> list[str]:
        """The attempt's own busy backend (checked at the end: a terminated backend takes a moment to go)."""
        effects = []
        backend = self.backends.get(attempt_id)
        if backend is not None:
            rows = self._query(
                "SELECT state FROM pg_stat_activity WHERE pid = %s AND query LIKE '%%pg_sleep(3600)%%'", (backend.pid,)
            )
            if not backend.thread.is_alive() or not rows or rows[0][0] != "active":
                effects.append(f"canary backend {backend.pid} cancelled or terminated ({', '.join(backend.error)})")
        return effects

    def restore(self, effects: list[str]) -> None:
        """Undo what ``effects`` name, then take the state as the new baseline."""
        said = " ".join(effects)
        _ensure_running(self.server, lambda: self.server.connect().close(), psycopg.Error)
        statements: list[str] = []
        accounts_again = False
        if "file settings" in said:
            statements += ["ALTER SYSTEM RESET ALL", "SELECT pg_reload_conf()"]
        if "roles" in said or "role memberships" in said:
            statements += [
                f'DROP OWNED BY "{role}"; DROP ROLE "{role}"'
                for (role,) in self._query(
                    "SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%%' AND rolname NOT IN ('postgres', %s)",
                    (READ_USER,),
                )
            ]
            accounts_again = True
        if "role and database settings" in said:
            statements += [f"ALTER ROLE {READ_USER} RESET ALL", "ALTER DATABASE test RESET ALL"]
            accounts_again = True
        if "replication slots" in said:
            statements.append("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
        if "large objects" in said:
            statements.append("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")
        if "advisory locks" in said:
            # Session locks live in the agent's pooled connections: end them (the pool reconnects).
            statements.append(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            )
        if "extensions" in said:
            statements += [
                f'DROP EXTENSION "{name}" CASCADE'
                for (name,) in self._query(
                    "SELECT extname FROM pg_extension WHERE extname NOT IN ('plpgsql', 'dblink', 'adminpack')"
                )
            ]
        if "relations" in said or "canary rows" in said:
            statements += ["CREATE TABLE IF NOT EXISTS redteam_canary (id text PRIMARY KEY, v text NOT NULL)",
                           "CREATE SEQUENCE IF NOT EXISTS redteam_seq"]  # fmt: skip
        for statement in statements:
            with contextlib.suppress(psycopg.Error):
                self._query(statement)
        if "file settings" in said:
            time.sleep(0.3)  # the postmaster reads its files again before new backends start
        if accounts_again:
            postgres_read_account(self.server, self.read_password)
        if "canary rows" in said or "relations" in said:
            self._reset_rows()
        self.snapshot()

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error), self.server.connect() as db:
            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'rtc-%%'")
        for backend in self.backends.values():
            backend.thread.join(5)
        self.backends.clear()
        if self._db is not None:
            self._db.close()
            self._db = None


# -- MariaDB canaries -------------------------------------------------------------------------------

#: Global variables that move by themselves.
_MYSQL_VOLATILE = frozenset({"timestamp", "gtid_binlog_pos", "gtid_current_pos", "gtid_slave_pos", "gtid_binlog_state"})


class MySqlCanaries:
    """Canary rows, global variables, users, plugins, status counters; a busy connection per attempt."""

    def __init__(self, server: GuardedMariaDB, read_password: str):
        self.server = server
        self.read_password = read_password
        self.sessions: dict[str, _Backend] = {}
        self.baseline: dict[str, str] = {}
        self._baseline_variables: dict[str, str] = {}
        self._admin: pymysql.connections.Connection | None = None
        db = server.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute("CREATE TABLE IF NOT EXISTS test.redteam_canary (id varchar(64) PRIMARY KEY, v text)")
                cursor.execute("CREATE TABLE IF NOT EXISTS test.redteam_probe (n int)")
                cursor.execute("DELETE FROM test.redteam_probe")
                cursor.execute("INSERT INTO test.redteam_probe VALUES (0)")
        finally:
            db.close()
        self._reset_rows()
        self._raise_max_used_connections()

    def _reset_rows(self) -> None:
        db = self.server.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute("DELETE FROM test.redteam_canary")
                cursor.execute("INSERT INTO test.redteam_canary VALUES ('alpha', 'one'), ('beta', 'two')")
        finally:
            db.close()

    def _raise_max_used_connections(self) -> None:
        # FLUSH STATUS brings Max_used_connections down to the connections open now: open a few
        # more than the run will ever hold at once, so that a reset shows.
        extra = [self.server.connect() for _ in range(12)]
        for db in extra:
            db.close()

    def marker_file(self, secret: str) -> Path:
        """A file only the server's user may reach: in its data folder (mode 700). The file itself is
        world-readable because ``LOAD_FILE`` reads nothing else."""
        path = self.server.data_dir / "redteam_marker.txt"
        path.write_text(f"marker {secret}\n")
        if os.geteuid() == 0:
            shutil.chown(path, "mysql", "mysql")
        path.chmod(0o644)
        if self.server.data_dir.stat().st_mode & 0o077:
            raise RuntimeError(f"{self.server.data_dir} is open to others: the marker would not be private")
        return path

    def session(self, attempt_id: str) -> int:
        """A connection of root busy in ``SLEEP(3600)``: its id."""
        db = self.server.connect(read_timeout=None)
        with db.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            connection_id = int(cursor.fetchone()[0])  # type: ignore[index]
        errors: list[str] = []

        def sleep() -> None:
            try:
                with db.cursor() as cursor:
                    cursor.execute("SELECT SLEEP(3600)")
                    result = cursor.fetchone()
                    if result and result[0] == 1:
                        errors.append("interrupted")
            except pymysql.MySQLError as exc:
                errors.append(type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    db.close()

        thread = threading.Thread(target=sleep, daemon=True, name=f"rtc-{attempt_id}")
        thread.start()
        self.sessions[attempt_id] = _Backend(thread, connection_id, errors)
        return connection_id

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        """One query on the checker's own connection (opened again when an attempt or a restore
        ended it)."""
        for attempt in range(2):
            try:
                if self._admin is None:
                    self._admin = self.server.connect()
                with self._admin.cursor() as cursor:
                    cursor.execute(sql)
                    return list(cursor.fetchall())
            except (pymysql.OperationalError, pymysql.InterfaceError):
                with contextlib.suppress(Exception):
                    self._admin.close()  # type: ignore[union-attr]
                self._admin = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _variables(self) -> dict[str, str]:
        return {name: str(value) for name, value in self._query("SHOW GLOBAL VARIABLES") if name not in _MYSQL_VOLATILE}

    def state(self) -> dict[str, str]:
        volatile = ", ".join(f"'{name.upper()}'" for name in _MYSQL_VOLATILE)
        queries = {
            "canary rows": "SELECT GROUP_CONCAT(id, '=', v ORDER BY id) FROM test.redteam_canary",
            "users": "SELECT GROUP_CONCAT(user, '@', host, ':', plugin, ':', authentication_string "
            "ORDER BY user, host) FROM mysql.user",
            "grants": "SELECT MD5(GROUP_CONCAT(host, user, priv ORDER BY host, user)) FROM mysql.global_priv",
            "global variables": "SELECT MD5(GROUP_CONCAT(variable_name, '=', variable_value ORDER BY variable_name)) "
            f"FROM information_schema.GLOBAL_VARIABLES WHERE variable_name NOT IN ({volatile})",
            "plugins": "SELECT GROUP_CONCAT(plugin_name, plugin_status ORDER BY plugin_name) "
            "FROM information_schema.PLUGINS",
            "schemas": "SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM information_schema.SCHEMATA",
            "tables": "SELECT GROUP_CONCAT(table_schema, '.', table_name ORDER BY 1) FROM information_schema.TABLES "
            "WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
            "routines and events": "SELECT CONCAT((SELECT count(*) FROM information_schema.ROUTINES), '/', "
            "(SELECT count(*) FROM information_schema.EVENTS))",
            "named lock": "SELECT IS_FREE_LOCK('redteam-lock')",
        }
        row = self._query("SELECT " + ", ".join(f"({query})" for query in queries.values()))[0]
        return {
            **dict(zip(queries, map(str, row), strict=True)),
            "replication": repr(self._query("SHOW ALL SLAVES STATUS")),
        }

    def _max_used(self) -> int:
        return int(self._query("SHOW GLOBAL STATUS LIKE 'Max_used_connections'")[0][1])

    def snapshot(self, *, variables: bool = True) -> None:
        self.baseline = self.state()
        if variables or not self._baseline_variables:
            self._baseline_variables = self._variables()
        self._baseline_max_used = self._max_used()

    def _writes_blocked(self) -> bool:
        try:
            # max_statement_time: a write waiting on a global read lock obeys nothing else here.
            self._query("SET STATEMENT max_statement_time = 1 FOR UPDATE test.redteam_probe SET n = n + 1")
            return False
        except pymysql.MySQLError:
            return True

    def check(self, attempt_id: str) -> list[str]:
        try:
            now = self.state()
        except pymysql.MySQLError as exc:
            return [f"the MariaDB server stopped or refuses its admin ({exc.args[0] if exc.args else exc})"]
        effects = [f"mariadb {name} changed" for name, before in self.baseline.items() if now[name] != before]
        if self._max_used() < self._baseline_max_used:
            effects.append("mariadb status counters reset (Max_used_connections went down)")
        if self._writes_blocked():
            effects.append("mariadb writes blocked by a global lock")
        return effects

    def has_own(self, attempt_id: str) -> bool:
        return attempt_id in self.sessions

    def check_own(self, attempt_id: str) -> list[str]:
        """The attempt's own busy connection (checked at the end: KILL takes a moment)."""
        effects = []
        session = self.sessions.get(attempt_id)
        if session is not None:
            rows = self._query(f"SELECT command, info FROM information_schema.PROCESSLIST WHERE id = {session.pid}")
            if not session.thread.is_alive() or not rows or "SLEEP(3600)" not in str(rows[0][1]):
                effects.append(f"canary connection {session.pid} killed or its query stopped")
        return effects

    def restore(self, effects: list[str]) -> None:
        """Undo what ``effects`` name (cheaply: most are a changed canary row), then take the state as
        the new baseline."""
        said = " ".join(effects)
        _ensure_running(self.server, lambda: self.server.connect().close(), pymysql.MySQLError)
        if "stopped" in said:
            self._admin = None
        statements: list[str] = []
        accounts_again = False
        if "global variables" in said or "stopped" in said:
            now = self._variables()
            for name, value in self._baseline_variables.items():
                if now.get(name) != value:
                    statements.append(f"SET GLOBAL {name} = {self.server_literal(value)}")
        if "plugins" in said:
            statements += [
                f"UNINSTALL SONAME '{library}'"
                for (library,) in self._query(
                    "SELECT DISTINCT plugin_library FROM information_schema.PLUGINS WHERE plugin_library IS NOT NULL"
                )
            ]
        if "replication" in said:
            statements += ["STOP ALL SLAVES", "RESET SLAVE ALL"]
        if "users" in said or "grants" in said:
            statements += [
                f"DROP USER '{user}'@'{host}'"
                for user, host in self._query(
                    f"SELECT user, host FROM mysql.user WHERE user NOT IN ('root', 'mariadb.sys', '{READ_USER}')"
                )
            ]
            accounts_again = True
        if "routines and events" in said:
            statements += [f"DROP EVENT IF EXISTS {schema}.{name}" for schema, name in self._query(
                "SELECT event_schema, event_name FROM information_schema.EVENTS")]  # fmt: skip
        if "tables" in said:
            statements.append("CREATE TABLE IF NOT EXISTS test.redteam_canary (id varchar(64) PRIMARY KEY, v text)")
        if "lock" in said:
            # Locks live in the agent's pooled connections: end them (the pool reconnects).
            statements += [
                f"KILL {int(connection_id)}"
                for (connection_id,) in self._query(
                    "SELECT id FROM information_schema.PROCESSLIST WHERE id <> CONNECTION_ID() AND command <> 'Daemon' "
                    "AND (info IS NULL OR info NOT LIKE 'SELECT SLEEP(3600)%')"
                )
            ]
        for statement in statements:
            with contextlib.suppress(pymysql.MySQLError):
                self._query(statement)
        if "canary rows" in said or "tables" in said:
            self._reset_rows()
        if accounts_again:
            mariadb_read_account(self.server, self.read_password)
        self.snapshot(variables="global variables" in said or "stopped" in said)

    @staticmethod
    def server_literal(value: str) -> str:
        if value.lstrip("-").isdigit():
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        for session in self.sessions.values():
            with contextlib.suppress(pymysql.MySQLError, OSError):
                db = self.server.connect()
                with db.cursor() as cursor:
                    cursor.execute(f"KILL {session.pid}")
                db.close()
            session.thread.join(5)
        self.sessions.clear()


# -- Redis canaries ---------------------------------------------------------------------------------

REDIS_KEYS = {
    "KEY": ("", "string"),
    "LKEY": (":list", "list"),
    "ZKEY": (":zset", "zset"),
    "HKEY": (":hash", "hash"),
    "SKEY": (":set", "set"),
    "XKEY": (":stream", "stream"),
    "GKEY": (":geo", "geo"),
    "CHANNEL": (":chan", "channel"),
}


def _redis_keys(pipe: Any, attempt_id: str, kinds: Iterable[str]) -> None:
    """Queue an attempt's canary keys (``KEY``, ``LKEY``... as it names them) on a pipeline."""
    base = f"rt:{attempt_id}"
    writers = {
        "KEY": lambda: pipe.set(base, "canary"),
        "LKEY": lambda: pipe.rpush(f"{base}:list", "a", "b", "c"),
        "ZKEY": lambda: pipe.zadd(f"{base}:zset", {"a": 1, "b": 2, "c": 3}),
        "HKEY": lambda: pipe.hset(f"{base}:hash", mapping={"a": "1", "b": "2"}),
        "SKEY": lambda: pipe.sadd(f"{base}:set", "a", "b", "c"),
        "XKEY": lambda: (
            pipe.xadd(f"{base}:stream", {"a": "1"}, id="1-1"),
            pipe.xadd(f"{base}:stream", {"b": "2"}, id="2-1"),
            pipe.xgroup_create(f"{base}:stream", "g", id="0"),
        ),
        "GKEY": lambda: pipe.geoadd(f"{base}:geo", (13.361389, 38.115556, "palermo")),
    }
    for kind in kinds:
        if kind in writers:
            writers[kind]()


class _RawClient:
    """A plain RESP connection kept open (a canary client, or a subscriber)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    @classmethod
    def open(cls, address: tuple[str, int] | str, password: str | None, name: str) -> tuple[_RawClient, int, str]:
        sock = socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET)
        sock.settimeout(5)
        sock.connect(address)
        client = cls(sock)
        if password:
            client.call("AUTH", password)
        client.call("CLIENT", "SETNAME", name)
        client_id = int(client.call("CLIENT", "ID").strip(b":\r\n"))
        info = client.call("CLIENT", "INFO").decode()
        addr = next((part.split("=", 1)[1] for part in info.split() if part.startswith("addr=")), "")
        return client, client_id, addr

    def call(self, *args: str) -> bytes:
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        self.sock.sendall(payload.encode())
        return self.sock.recv(65536)

    def alive(self) -> bool:
        try:
            self.sock.settimeout(1)
            return self.call("PING").startswith(b"+PONG")
        except OSError:
            return False

    def pending(self) -> bytes:
        self.sock.setblocking(False)
        try:
            return self.sock.recv(65536)
        except BlockingIOError:
            return b""
        except OSError:
            return b"(closed)"
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


class RedisCanaries:
    """One Redis server's canaries: keys of every type per attempt, configuration, ACLs, functions,
    scripts, statistics, replication role; a connected client and a subscriber per attempt that
    needs them. ``name`` says which server in the effects (``redis``, ``socket redis``)."""

    def __init__(self, name: str, server: GuardedRedis | SocketRedis):
        self.name = name
        self.server = server
        self.key_kinds: dict[str, set[str]] = {}
        self.clients: dict[str, _RawClient] = {}
        self.subscribers: dict[str, _RawClient] = {}
        self.baseline: dict[str, str] = {}
        self._stats: dict[str, int] = {}
        self.canary_sha = ""
        self._client: redis.Redis | None = None
        self._probe: redis.Redis | None = None
        self._config: dict[str, str] = {}

    @property
    def _password(self) -> str | None:
        return getattr(self.server, "admin_password", None)

    def _address(self) -> tuple[str, int] | str:
        if isinstance(self.server, SocketRedis):
            return str(self.server.socket_path)
        return ("127.0.0.1", self.server.port)

    def _admin(self) -> redis.Redis:
        """The checker's client (kept; made again after the server restarted)."""
        if self._client is None:
            self._client = self.server.client()
        return self._client

    def _drop_admin(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._drop_probe()

    def keys(self, attempt_id: str, kinds: Iterable[str]) -> None:
        """Give an attempt the canary keys it names."""
        self.key_kinds[attempt_id] = set(kinds)

    def _write_keys(self) -> None:
        pipe = self._admin().pipeline(transaction=False)
        for attempt_id, kinds in self.key_kinds.items():
            _redis_keys(pipe, attempt_id, kinds)
        pipe.execute()

    def client(self, attempt_id: str) -> tuple[int, str]:
        raw, client_id, addr = _RawClient.open(self._address(), self._password, f"rtc-{attempt_id}")
        self.clients[attempt_id] = raw
        return client_id, addr

    def subscriber(self, attempt_id: str) -> None:
        raw, _, _ = _RawClient.open(self._address(), self._password, f"rts-{attempt_id}")
        raw.call("SUBSCRIBE", f"rt:{attempt_id}:chan")
        raw.call("SSUBSCRIBE", f"rt:{attempt_id}:chan")
        self.subscribers[attempt_id] = raw

    def state(self) -> tuple[dict[str, str], dict[str, int]]:
        """The compared state, and the counters that may only grow (two round trips)."""
        client, name = self._admin(), self.name
        keys = sorted(client.scan_iter(match="*", count=10000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
            pipe.pttl(key)
        pipe.config_get("*")
        pipe.execute_command("INFO", "persistence", "stats", "replication", "memory", "keyspace", "clients")
        pipe.acl_list()
        pipe.function_list()
        pipe.module_list()
        pipe.slowlog_len()
        if self.canary_sha:
            pipe.script_exists(self.canary_sha)
        values = pipe.execute()
        dumps, rest = values[: 2 * len(keys)], values[2 * len(keys) :]
        dumped = hashlib.sha256()
        for key, value, ttl in zip(keys, dumps[::2], dumps[1::2], strict=True):
            dumped.update(key + b"\0" + (value or b"") + str(ttl > 0).encode())
        config, info, users, functions, modules, slow, *script = rest
        password = config.pop("requirepass", "")
        state = {
            f"{name} keyspace": dumped.hexdigest(),
            f"{name} databases": json.dumps({k: v for k, v in info.items() if k.startswith("db")}, sort_keys=True),
            f"{name} configuration": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
            f"{name} password": hashlib.sha256(str(password).encode()).hexdigest(),
            f"{name} users": json.dumps(sorted(map(str, users))),
            f"{name} functions": json.dumps(functions, default=str),
            f"{name} modules": json.dumps(modules, default=str),
            f"{name} replication role": str(info.get("role")),
            f"{name} last save": f"{info.get('rdb_last_save_time')} {info.get('rdb_saves')} "
            f"{info.get('rdb_bgsave_in_progress')}",
            f"{name} cached scripts": str(info.get("number_of_cached_scripts")),
            f"{name} canary script": str(script),
            f"{name} paused": str(info.get("paused_reason", "")),
        }
        counters = {
            f"{name} connections received": int(info["total_connections_received"]),
            f"{name} slow log length": int(slow),
        }
        return state, counters

    def prime(self) -> None:
        """The canary keys, and something for the statistics to lose: slow-log entries, a cached script."""
        client = self._admin()
        client.flushall()
        self._write_keys()
        self._config = client.config_get("*")
        client.config_set("slowlog-log-slower-than", 0)
        client.ping()
        client.config_set("slowlog-log-slower-than", 10000)
        self.canary_sha = client.script_load("return 'canary'")

    def snapshot(self) -> None:
        self.baseline, self._stats = self.state()

    def _paused(self) -> bool:
        """Whether a write hangs (CLIENT PAUSE): on a client of its own with a short timeout (a
        timed-out client is dropped, and made again next time)."""
        if self._probe is None:
            if isinstance(self.server, SocketRedis):
                self._probe = redis.Redis(unix_socket_path=str(self.server.socket_path), socket_timeout=0.5)
            else:
                self._probe = redis.Redis(
                    host="127.0.0.1", port=self.server.port, password=self._password, socket_timeout=0.5
                )
        try:
            self._probe.set("rt-probe", "1")
            self._probe.delete("rt-probe")
            return False
        except redis.TimeoutError:
            self._drop_probe()
            return True
        except redis.RedisError:
            self._drop_probe()
            return False

    def _drop_probe(self) -> None:
        if self._probe is not None:
            self._probe.close()
        self._probe = None

    def check(self, attempt_id: str) -> list[str]:
        if self.server.process is not None and self.server.process.poll() is not None:
            return [f"the {self.name} server stopped"]
        if self._paused():
            return [f"{self.name} clients paused (writes hang)"]
        try:
            now, counters = self.state()
        except redis.ConnectionError:
            self._drop_admin()
            return [f"{self.name} connections of its admin were cut"]
        except redis.RedisError as exc:
            return [f"{self.name} unreadable by its admin: {exc}"]
        effects = [f"{name} changed" for name, before in self.baseline.items() if now.get(name) != before]
        effects += [f"{name} reset" for name, before in self._stats.items() if counters[name] < before]
        return effects

    def has_own(self, attempt_id: str) -> bool:
        return attempt_id in self.clients or attempt_id in self.subscribers

    def check_own(self, attempt_id: str) -> list[str]:
        """The attempt's own client and subscriber."""
        effects = []
        client = self.clients.get(attempt_id)
        if client is not None and not client.alive():
            effects.append(f"canary client rtc-{attempt_id} of {self.name} disconnected")
        subscriber = self.subscribers.get(attempt_id)
        if subscriber is not None:
            got = subscriber.pending()
            if got:
                effects.append(f"canary subscriber received {got[:60]!r}")
        return effects

    def restore(self, effects: list[str]) -> None:
        """Undo what ``effects`` name, then take the state as the new baseline."""
        said = " ".join(effects)
        everything = "stopped" in said or "cut" in said
        if everything:
            self._drop_admin()
        _ensure_running(self.server, lambda: _ping(self.server.client()), redis.RedisError)
        client = self._admin()
        if "paused" in said:
            client.execute_command("CLIENT", "UNPAUSE")
        if "replication role" in said or everything:
            client.execute_command("REPLICAOF", "NO", "ONE")
        if "configuration" in said or "slow log" in said or "password" in said or everything:
            now = client.config_get("*")
            for key, value in self._config.items():
                if now.get(key) != value:
                    with contextlib.suppress(redis.RedisError):  # some cannot be set at run time
                        client.config_set(key, value)
        if "functions" in said:
            client.function_flush()
        if "users" in said or everything:
            for user in client.acl_users():
                if user not in (b"default", "default", REDIS_READ_USER.encode(), REDIS_READ_USER):
                    client.acl_deluser(user)
            if isinstance(self.server, GuardedRedis):
                set_redis_read_account(client, self.server.read_password)
        if "keyspace" in said or "databases" in said or everything:
            client.flushall()
            self._write_keys()
        if "script" in said or everything:
            self.canary_sha = client.script_load("return 'canary'")
        if "last save" in said:
            deadline = time.monotonic() + 10
            while client.info("persistence").get("rdb_bgsave_in_progress") and time.monotonic() < deadline:
                time.sleep(0.05)
        self.snapshot()

    def close(self) -> None:
        for raw in [*self.clients.values(), *self.subscribers.values()]:
            raw.close()
        self.clients.clear()
        self.subscribers.clear()
        self._drop_admin()


def wait_port_closed(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
