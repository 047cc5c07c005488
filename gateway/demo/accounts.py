"""The read-only accounts of ``deployments/accounts/`` on the demo's servers, as connection settings.

The demo runs its reads the way production should: through accounts that cannot write, while
its fixes (terminate sessions, KILL, CONFIG SET) use the main credential. Where an account is
missing (a private server a test started, accounts not created yet), the connection goes without
one and read results say so; the demo still works.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import redis

POSTGRES_READ_USER = "cloud_agent_read"
MYSQL_READ_USER = "cloud_agent_read"
REDIS_READ_USER = "cloud-agent-read"
# Written into the demo's connections.yaml as references, resolved like any deployment's.
PG_READ_PASSWORD = "${PG_READ_PASSWORD:-}"
MYSQL_READ_PASSWORD = "${MYSQL_READ_PASSWORD:-cloud-agent-read-local}"
REDIS_READ_PASSWORD = "${REDIS_READ_PASSWORD:-cloud-agent-read-local}"
#: The Redis user's rules, shared with scripts/create-read-accounts.sh.
REDIS_ACL = Path(__file__).resolve().parents[2] / "deployments" / "accounts" / "redis.acl"
_ERRORS = (psycopg.Error, pymysql.MySQLError, redis.RedisError, OSError)


def postgres_read(dsn: str) -> dict[str, Any]:
    """``read_user``/``read_password`` for the server at ``dsn`` if it has the read role."""
    with contextlib.suppress(*_ERRORS), psycopg.connect(dsn, autocommit=True, connect_timeout=3) as db:
        if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (POSTGRES_READ_USER,)).fetchone():
            return {"read_user": POSTGRES_READ_USER, "read_password": PG_READ_PASSWORD}
    return {}


def grant_postgres_schema(dsn: str, schema: str) -> None:
    """Let the read role read ``schema``, whose tables the demo has just (re)created."""
    with contextlib.suppress(*_ERRORS), psycopg.connect(dsn, autocommit=True, connect_timeout=3) as db:
        if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (POSTGRES_READ_USER,)).fetchone():
            db.execute(f"GRANT USAGE ON SCHEMA {schema} TO {POSTGRES_READ_USER}")
            db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {POSTGRES_READ_USER}")


def mysql_read(settings: dict[str, Any]) -> dict[str, Any]:
    """``read_user``/``read_password`` for the MariaDB of ``settings`` if it has the read account."""
    with contextlib.suppress(*_ERRORS):
        db = pymysql.connect(
            host=settings["host"], port=int(settings["port"]), user=settings["user"], connect_timeout=3
        )
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT 1 FROM mysql.user WHERE User = %s", (MYSQL_READ_USER,))
                if cursor.fetchone():
                    return {"read_user": MYSQL_READ_USER, "read_password": MYSQL_READ_PASSWORD}
        finally:
            db.close()
    return {}


def redis_read(host: str, port: int) -> dict[str, Any]:
    """``read_url`` for the Redis at ``host:port`` if it has the read ACL user."""
    with contextlib.suppress(*_ERRORS):
        client = redis.Redis(host=host, port=port, socket_connect_timeout=3)
        try:
            if client.acl_getuser(REDIS_READ_USER):
                return {"read_url": f"redis://{REDIS_READ_USER}:{REDIS_READ_PASSWORD}@{host}:{port}/0"}
        finally:
            client.close()
    return {}


def create_redis_read_user(host: str, port: int) -> None:
    """Give a private Redis the read ACL user of ``deployments/accounts/redis.acl`` (if that file is here)."""
    if not REDIS_ACL.is_file():
        return
    password = os.environ.get("REDIS_READ_PASSWORD") or "cloud-agent-read-local"
    rules = [line.strip() for line in REDIS_ACL.read_text().splitlines() if line.strip() and not line.startswith("#")]
    client = redis.Redis(host=host, port=port, socket_connect_timeout=3)
    try:
        client.execute_command("ACL", "SETUSER", REDIS_READ_USER, "reset", *rules, f">{password}")
    finally:
        client.close()
