"""Which credential a task connects with: a read-only account for reads, the main one otherwise.

The classifier is one wall; the database's own rights are another. ``connections.yaml`` gives a
connection a second credential that can only read (``deployments/accounts/`` creates them)::

    postgres, mysql   read_user, read_password   (same host, port and database; postgres: or read_dsn)
    redis             read_url                   (an ACL user: redis://cloud-agent-read:PW@host:6379/0)

A task classified ``read`` connects with it; ``write`` and ``destructive`` tasks with the main
credential. The executor keeps a pool per credential (``Credential.pool_key``).

Where a connection has no read credential, reads still run with the main one, but every such
result says so and the first one logs a warning; an environment with
``policy.require_read_credential: true`` refuses them instead. At the first use of a read
credential the executor checks its rights on the server (``ReadCredentials.check_rights``); where
it can write, a warning is logged and every read result through it carries a note. The verdict is
kept per connection for the life of the executor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from contract import RiskClass
from executors._config import Connection, Environment
from executors._errors import CloudAgentError, ReadCredentialMissing

log = structlog.get_logger("cloud_agent.executors")

#: Settings that name a connection's read credential, per task type (kept out of the main one's).
READ_KEYS: dict[str, tuple[str, ...]] = {
    "postgres": ("read_user", "read_password", "read_dsn"),
    "mysql": ("read_user", "read_password"),
    "redis": ("read_url",),
}
#: The setting a user adds to give a connection its read credential (for messages).
_READ_SETTING = {"postgres": "read_user", "mysql": "read_user", "redis": "read_url"}

ReadSettings = Callable[[Mapping[str, Any]], dict[str, Any] | None]
"""Builds the read credential's connection settings from a connection's; ``None`` if it has none."""


@dataclass(frozen=True)
class Credential:
    """The settings one task connects with, and the pool they belong to."""

    connection: Connection
    pool_key: str
    #: Whether these are the connection's read-only credential.
    read_account: bool


@dataclass
class _Verdict:
    problems: list[str]
    warned: bool = False


class ReadCredentials:
    """Chooses each task's credential for one executor, and remembers what it learnt about them."""

    def __init__(self, environment: Environment, task_type: str, read_settings: ReadSettings):
        self._environment = environment
        self._type = task_type
        self._read_settings = read_settings
        self._warned_missing: set[str] = set()
        self._verdicts: dict[str, _Verdict] = {}
        self._lock = threading.Lock()
        self._checking: dict[str, threading.Lock] = {}

    def where(self, connection: Connection) -> str:
        return f"{self._environment.name}/{self._type}/{connection.name}"

    def choose(self, connection: Connection, risk: RiskClass, notes: list[str]) -> Credential:
        """The credential for a task of class ``risk`` on ``connection``.

        Raises:
            ReadCredentialMissing: a read task, no read credential, and the environment insists.
        """
        main_settings = {k: v for k, v in connection.settings.items() if k not in READ_KEYS.get(self._type, ())}
        main = Credential(
            Connection(connection.task_type, connection.name, main_settings), f"{connection.name}\0main", False
        )
        if risk is not RiskClass.READ:
            return main
        read_settings = self._read_settings(connection.settings)
        if read_settings is not None:
            read = Connection(connection.task_type, connection.name, read_settings)
            return Credential(read, f"{connection.name}\0read", True)
        where = self.where(connection)
        setting = _READ_SETTING.get(self._type, "a read credential")
        if self._environment.policy.require_read_credential:
            raise ReadCredentialMissing(
                f"connection {where} has no {setting}, and environment {self._environment.name!r} requires read "
                f"tasks to use a read-only credential (policy.require_read_credential): add {setting} to "
                f"deployments/{self._environment.name}/connections.yaml (accounts: deployments/accounts/)"
            )
        message = f"connection {where} has no {setting}: read tasks run with a credential that can write"
        with self._lock:
            first = where not in self._warned_missing
            self._warned_missing.add(where)
        if first:
            log.warning("read_credential_missing", connection=where, message=message)
        notes.append(message)
        return main

    def check_rights(self, credential: Credential, notes: list[str], check: Callable[[], list[str]]) -> None:
        """Run ``check`` (what the read credential may do beyond reading) once; note what it found.

        ``check`` returns one line per excess right, and may raise: a check that cannot run is
        reported as such (the verdict "unchecked" is kept too, so it is not retried every task).
        """
        if not credential.read_account:
            return
        where = self.where(credential.connection)
        with self._lock:
            gate = self._checking.setdefault(where, threading.Lock())
        with gate:
            verdict = self._verdicts.get(where)
            if verdict is None:
                try:
                    verdict = _Verdict(problems=[f"can {problem}" for problem in check()])
                except (CloudAgentError, OSError) as exc:
                    verdict = _Verdict(problems=[f"could not be checked ({exc})"])
                except Exception as exc:  # a driver's own error type: the check is advisory, never fatal
                    verdict = _Verdict(problems=[f"could not be checked ({type(exc).__name__}: {exc})"])
                self._verdicts[where] = verdict
            if not verdict.problems:
                return
            message = (
                f"the read credential of connection {where} {'; '.join(verdict.problems)}: read tasks rely on it "
                "being read-only (see deployments/accounts/)"
            )
            if not verdict.warned:
                verdict.warned = True
                log.warning("read_credential_can_write", connection=where, message=message)
        notes.append(message)
