"""``redis``: one Redis command per task (``INFO stats``, ``GET key``, ``SLOWLOG GET 10``).

The command line is split the way redis-cli splits it and sent as an argument vector — never
concatenated into protocol text. The reply is waited for no longer than the task's remaining time
(a timed-out connection is dropped, not reused). ``INFO`` replies are parsed into a flat dict of
numbers and strings; other replies are returned as data and rendered as redis-cli would print them.

Connection settings (type ``redis``): ``url`` (``redis://[:password@]host:port/db``) or ``host``,
``port``, ``db``, ``username``, ``password``, ``ssl``; ``socket_connect_timeout``.
"""

from __future__ import annotations

from typing import Any

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

from executors._base import Executor, RunContext
from executors._config import Connection
from executors._errors import AuthenticationFailed, BackendUnavailable, PermissionDenied, QueryFailed, TaskTimedOut
from executors._policy.redis import parse_redis_command
from executors._pool import PerConnection
from executors._spec import TaskResult, TaskSpec


class RedisExecutor(Executor):
    type = "redis"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pools: PerConnection[redis.ConnectionPool] = PerConnection(redis.ConnectionPool.disconnect)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        words = parse_redis_command(spec.command)
        connection = ctx.connection()
        pool = self._pool(connection)
        where = _describe(pool)
        try:
            conn = pool.get_connection()
        except (AuthenticationError, AuthorizationError) as exc:
            raise AuthenticationFailed(
                f"Redis at {where} rejected the credentials of connection {connection.name!r}: {exc}"
            ) from exc
        except RedisError as exc:
            raise BackendUnavailable(f"cannot reach Redis at {where} (connection {connection.name!r}): {exc}") from exc
        reusable = True
        try:
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

    def _pool(self, connection: Connection) -> redis.ConnectionPool:
        return self._pools.get(connection.name, lambda: _make_pool(connection))

    def close(self) -> None:
        self._pools.close()


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
