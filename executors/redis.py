"""``redis``: one Redis command per task (``INFO stats``, ``GET key``, ``SLOWLOG GET 10``).

The command line is split the way redis-cli splits it and sent as an argument vector — never
concatenated into protocol text. The reply is waited for no longer than the task's remaining time
(a timed-out connection is dropped, not reused). ``INFO`` replies are parsed into a flat dict of
numbers and strings; other replies are returned as data and rendered as redis-cli would print them.

Connection settings (type ``redis``): ``url`` (``redis://[:password@]host:port/db``) or ``host``,
``port``, ``db``, ``username``, ``password``, ``ssl``; ``socket_connect_timeout``; and ``read_url``,
the read-only ACL user read tasks connect as (``redis://cloud-agent-read:PW@host:6379/0``), whose
rights are checked at first use with ``ACL DRYRUN`` (``executors._credentials``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from contract import RiskClass, TaskResult, TaskSpec
from executors._base import Executor, RunContext
from executors._config import Connection
from executors._credentials import READ_KEYS, Credential, ReadCredentials
from executors._errors import AuthenticationFailed, BackendUnavailable, PermissionDenied, QueryFailed, TaskTimedOut
from executors._policy.redis import parse_redis_command
from executors._pool import PerConnection


class RedisExecutor(Executor):
    type = "redis"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pools: PerConnection[redis.ConnectionPool] = PerConnection(redis.ConnectionPool.disconnect)
        self._credentials = ReadCredentials(self.environment, self.type, read_settings)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        words = parse_redis_command(spec.command)
        connection = ctx.connection()
        credential = self._credentials.choose(connection, ctx.risk, ctx.notes)
        pool = self._pool(credential)
        conn = self._checkout(pool, credential)
        where = _describe(pool)
        reusable = True
        try:
            self._credentials.check_rights(
                credential, ctx.notes, lambda: self._rights_beyond_read(conn, credential, connection)
            )
            conn.send_command(*words)
            reply = conn.read_response(timeout=max(ctx.remaining(), 0.001))
        except RedisTimeoutError as exc:
            reusable = False
            raise TaskTimedOut(f"Redis did not answer within the task's {ctx.timeout:g} s timeout") from exc
        except NoPermissionError as exc:
            raise PermissionDenied(f"Redis refused {words[0].upper()}: {exc}") from exc
        except ResponseError as exc:
            raise QueryFailed(f"Redis: {exc}") from exc
        except (RedisConnectionError, OSError) as exc:
            reusable = False
            raise BackendUnavailable(f"Redis at {where} connection lost: {exc}") from exc
        finally:
            if reusable:
                pool.release(conn)
            else:
                conn.disconnect()
                pool.release(conn)

        data = _decode(reply)
        if words[0].upper() == "INFO" and isinstance(data, str):
            info = parse_info(data)
            return ctx.result(output=data, data=info)
        return ctx.result(output=render(data), data=data)

    def _pool(self, credential: Credential) -> redis.ConnectionPool:
        return self._pools.get(credential.pool_key, lambda: _make_pool(credential.connection))

    @staticmethod
    def _checkout(pool: redis.ConnectionPool, credential: Credential) -> redis.Connection:
        where = _describe(pool)
        name = credential.connection.name
        try:
            return pool.get_connection()
        except (AuthenticationError, AuthorizationError) as exc:
            which = (
                f"the read credential ({read_username(credential.connection.settings)})"
                if credential.read_account
                else "the credentials"
            )
            raise AuthenticationFailed(f"Redis at {where} rejected {which} of connection {name!r}: {exc}") from exc
        except RedisError as exc:
            raise BackendUnavailable(f"cannot reach Redis at {where} (connection {name!r}): {exc}") from exc

    def _rights_beyond_read(self, conn: redis.Connection, credential: Credential, connection: Connection) -> list[str]:
        """Which probe commands the read user may run, asked with ``ACL DRYRUN``: by the read
        user itself if it may (then that is news in itself), else by the main credential."""
        user = read_username(credential.connection.settings)
        try:
            return _dry_run_probes(conn, user)
        except NoPermissionError:
            pass
        except BaseException:
            conn.disconnect()  # a reply may be left unread: the task gets a fresh connection
            raise
        main = self._credentials.choose(connection, RiskClass.WRITE, [])
        pool = self._pool(main)
        admin = self._checkout(pool, main)
        try:
            return _dry_run_probes(admin, user)
        except NoPermissionError as exc:
            raise PermissionDenied(f"neither credential of the connection may run ACL DRYRUN: {exc}") from exc
        finally:
            pool.release(admin)

    def close(self) -> None:
        self._pools.close()


def read_settings(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings of a connection's read credential (its ``read_url``), if it has one."""
    if not settings.get("read_url"):
        return None
    read = {key: value for key, value in settings.items() if key not in (*READ_KEYS["redis"], "url")}
    for key in ("host", "port", "db", "username", "password", "ssl"):
        read.pop(key, None)  # everything about where and who comes from the URL
    read["url"] = settings["read_url"]
    return read


def read_username(settings: Mapping[str, Any]) -> str:
    """The ACL user a connection's settings log in as (``default`` when the URL names none)."""
    url = settings.get("url")
    if url:
        return unquote(urlsplit(str(url)).username or "") or "default"
    return str(settings.get("username") or "default")


# Commands a read user must not be able to run: writes, and the dangerous ones that end sessions,
# change the server, run code or block it. ACL DRYRUN answers for each without running it.
RIGHTS_PROBES: tuple[tuple[str, ...], ...] = (
    ("SET", "cloud-agent:rights-probe", "x"),
    ("DEL", "cloud-agent:rights-probe"),
    ("FLUSHDB",),
    ("FLUSHALL",),
    ("CONFIG", "SET", "maxmemory", "0"),
    ("CONFIG", "GET", "requirepass"),
    ("EVAL", "return 1", "0"),
    ("CLIENT", "KILL", "ID", "1"),
    ("SHUTDOWN",),
    ("DEBUG", "SLEEP", "0"),
    ("KEYS", "*"),
    ("ACL", "SETUSER", "cloud-agent-rights-probe"),
    ("MODULE", "LOAD", "/nonexistent.so"),
    ("REPLICAOF", "NO", "ONE"),
)


def _dry_run_probes(conn: redis.Connection, user: str) -> list[str]:
    allowed = []
    for probe in RIGHTS_PROBES:
        conn.send_command("ACL", "DRYRUN", user, *probe)
        reply = conn.read_response()
        if (reply.decode() if isinstance(reply, bytes) else str(reply)) == "OK":
            allowed.append(" ".join(probe[:2]) if probe[0] in ("CONFIG", "CLIENT", "ACL", "MODULE") else probe[0])
    return [f"run {', '.join(allowed)}"] if allowed else []


def _make_pool(connection: Connection) -> redis.ConnectionPool:
    settings = dict(connection.settings)
    common: dict[str, Any] = {
        "socket_connect_timeout": float(settings.pop("socket_connect_timeout", 5)),
        "max_connections": int(settings.pop("max_connections", 16)),
    }
    url = settings.pop("url", None)
    if url:
        return redis.ConnectionPool.from_url(url, **common)
    kwargs = {
        key: settings[key] for key in ("host", "port", "db", "username", "password") if settings.get(key) is not None
    }
    kwargs.setdefault("host", "127.0.0.1")
    if settings.get("ssl"):
        return redis.ConnectionPool(connection_class=redis.SSLConnection, **kwargs, **common)
    return redis.ConnectionPool(**kwargs, **common)


def _describe(pool: redis.ConnectionPool) -> str:
    kwargs = pool.connection_kwargs
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def _decode(reply: Any) -> Any:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", errors="replace")
    if isinstance(reply, list | tuple):
        return [_decode(item) for item in reply]
    if isinstance(reply, dict):
        return {str(_decode(k)): _decode(v) for k, v in reply.items()}
    if isinstance(reply, set):
        return sorted((_decode(item) for item in reply), key=str)
    return reply


def parse_info(text: str) -> dict[str, Any]:
    """``INFO`` text as a flat dict: numbers as numbers, ``db0:keys=1,expires=0`` as a dict."""
    info: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        if ("=" in value and "," in value) or (key.startswith("db") and "=" in value):
            info[key] = {k: _number(v) for k, v in (pair.split("=", 1) for pair in value.split(",") if "=" in pair)}
        else:
            info[key] = _number(value)
    return info


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def render(data: Any, indent: str = "") -> str:
    """A reply as redis-cli prints it."""
    if data is None:
        return "(nil)"
    if isinstance(data, bool):
        return "(integer) 1" if data else "(integer) 0"
    if isinstance(data, int):
        return f"(integer) {data}"
    if isinstance(data, float):
        return f"(double) {data}"
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        data = [item for pair in data.items() for item in pair]
    if isinstance(data, list):
        if not data:
            return "(empty array)"
        width = len(str(len(data)))
        lines = []
        for number, item in enumerate(data, start=1):
            rendered = render(item, indent + " " * (width + 2))
            rendered = f'"{rendered}"' if isinstance(item, str) else rendered
            lines.append(f"{indent if number > 1 else ''}{number:>{width}}) {rendered}")
        return "\n".join(lines)
    return str(data)
