"""Environments, their agents, limits, policies and named connections, read from ``deployments/``.

Layout, one folder per environment::

    deployments/<env>/environment.yaml   work pool, agents, limits, policy, redaction list
    deployments/<env>/connections.yaml   named connections per executor type

Values may reference environment variables as ``${NAME}`` or ``${NAME:-default}``; that is how
secrets get in (or through Prefect Secret blocks exported to the worker's environment). Secret
values are registered with the redactor as they are resolved, so they never leave in results,
logs or audit records.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract import RiskClass, describe_validation_error
from executors._errors import ConfigurationError, UnknownAgent, UnknownConnection, UnknownEnvironment
from executors._redaction import is_secret_key, register_secret
from executors._sandbox import SandboxConfig

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Limits(BaseModel):
    """What one task may take: time, output, rows, and how many run at once per agent."""

    model_config = ConfigDict(extra="forbid")

    max_timeout_seconds: float = Field(default=300.0, gt=0)
    max_output_bytes: int = Field(default=1024 * 1024, gt=0)
    max_rows: int = Field(default=10_000, gt=0)
    max_concurrent_tasks_per_agent: int = Field(default=4, gt=0)
    #: A ``read`` task that failed because its backend was unreachable is tried again this many
    #: times (with a short backoff, within its own timeout); writes are never retried.
    read_retries: int = Field(default=1, ge=0, le=5)


class DenyPattern(BaseModel):
    """An environment's own deny rule: a regular expression over normalised task pieces."""

    model_config = ConfigDict(extra="forbid")

    pattern: str
    reason: str = ""
    types: list[str] = Field(default_factory=list, description="task types it applies to; empty for all")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The riskiest class allowed at all here, approval or not (e.g. ``write`` in production).
    max_risk: RiskClass = RiskClass.DESTRUCTIVE
    #: Extra shell commands this environment trusts as read-only.
    read_only_commands: list[str] = Field(default_factory=list)
    deny: list[DenyPattern] = Field(default_factory=list)
    #: Default deny rules (by id, e.g. ``http.metadata-endpoint``) lifted in this environment.
    lift: list[str] = Field(default_factory=list)
    http_allow_hosts: list[str] = Field(default_factory=list)
    http_deny_hosts: list[str] = Field(default_factory=list)
    redis_deny_commands: list[str] = Field(default_factory=list)
    #: Refuse a read task on a connection without a read-only credential (``read_user`` /
    #: ``read_url``) instead of running it, with a note, on the main one.
    require_read_credential: bool = False


class Environment(BaseModel):
    """One environment (prod, staging, dev, local): where its agents run and what they may do."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    work_pool: str = ""
    agents: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    #: Values to mask before anything leaves the process for an outside service (hostnames,
    #: IPs, user ids), as literal strings or regular expressions prefixed with ``re:``.
    redact: list[str] = Field(default_factory=list)
    #: ``{executor type: {connection name: settings}}``
    connections: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    #: Where this environment's metrics, logs and traces live, read by the flows (executors
    #: ignore it): ``{"metrics": {"type": "prometheus", ...}, "logs": {...}, "traces": {...}}``.
    telemetry: dict[str, Any] = Field(default_factory=dict)
    #: How shell tasks are confined (``sandbox: off`` turns the sandbox off, with a warning on every run).
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    #: The service call graph, a file next to ``environment.yaml`` (read by the flows).
    topology: str | None = None
    #: The folder this environment was read from (set by the loader).
    folder: Path | None = Field(default=None, exclude=True)

    def connection(self, task_type: str, name: str | None) -> Connection:
        """The named connection for ``task_type``, its ``${...}`` references resolved."""
        name = name or "default"
        configured = self.connections.get(task_type, {})
        if name not in configured:
            known = ", ".join(sorted(configured)) or "none"
            raise UnknownConnection(
                f"no {task_type} connection named {name!r} in environment {self.name!r} "
                f"(configured: {known}); add it to deployments/{self.name}/connections.yaml"
            )
        settings = _resolve(configured[name], where=f"{self.name}/{task_type}/{name}")
        return Connection(task_type=task_type, name=name, settings=settings)


@dataclass(frozen=True)
class Connection:
    task_type: str
    name: str
    settings: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)


def _resolve(value: Any, *, where: str, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _resolve(v, where=where, key=str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, where=where, key=key) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        found = os.environ.get(variable)
        if not found and default is not None:  # as in the shell, ``:-`` replaces unset and empty
            found = default
        if found is None:
            raise ConfigurationError(f"connection {where} needs the environment variable {variable}")
        if is_secret_key(key):
            register_secret(found)
        return found

    resolved = _REFERENCE.sub(substitute, value)
    if is_secret_key(key):
        # The credential, not its scheme: "Bearer ${TOKEN}" with TOKEN unset is "Bearer ", and
        # masking that would mask the word in every line, hiding the token after it from the
        # inline-credential net too.
        register_secret(_AUTH_SCHEME.sub("", resolved).strip())
    _register_url_password(resolved)
    return resolved


#: The scheme word of an HTTP Authorization value (RFC 9110 section 11.4).
_AUTH_SCHEME = re.compile(r"^\s*(?:bearer|basic|digest|token|negotiate|apikey)\b\s*", re.IGNORECASE)


def _register_url_password(value: str) -> None:
    """The password of a URL with credentials (``redis://:${PASSWORD}@host``), under any key."""
    if "://" not in value or "@" not in value:
        return
    with contextlib.suppress(ValueError):
        password = urlsplit(value).password
        if password:
            register_secret(password)
            register_secret(unquote(password))


class EnvironmentCatalog:
    """Every environment under a configuration folder, and which agent belongs to which."""

    def __init__(self, environments: Iterable[Environment], default_agent: str | None = None):
        self.environments = {env.name: env for env in environments}
        self._default_agent = default_agent
        for env in self.environments.values():
            _register_connection_secrets(env)

    @classmethod
    def load(cls, config_dir: Path, default_agent: str | None = None) -> EnvironmentCatalog:
        if not config_dir.is_dir():
            raise ConfigurationError(f"configuration folder {config_dir} does not exist")
        environments = []
        for folder in sorted(p for p in config_dir.iterdir() if (p / "environment.yaml").is_file()):
            environments.append(_load_environment(folder))
        if not environments:
            raise ConfigurationError(f"no environments under {config_dir} (expected <env>/environment.yaml)")
        return cls(environments, default_agent)

    @cached_property
    def _agents(self) -> dict[str, Environment]:
        owners: dict[str, Environment] = {}
        for env in self.environments.values():
            for agent in [env.name, *env.agents]:
                if agent in owners and owners[agent] is not env:
                    raise ConfigurationError(
                        f"agent {agent!r} is declared by both {owners[agent].name!r} and {env.name!r}"
                    )
                owners[agent] = env
        return owners

    @property
    def default_agent(self) -> str:
        if self._default_agent:
            return self._default_agent
        return "local" if "local" in self.environments else next(iter(self.environments))

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            raise UnknownEnvironment(
                f"unknown environment {name!r} (configured: {', '.join(sorted(self.environments))})"
            ) from None

    def environment_of(self, agent_id: str | None) -> Environment:
        """The environment an agent belongs to; an environment's own name works as an agent id."""
        agent = agent_id or self.default_agent
        try:
            return self._agents[agent]
        except KeyError:
            raise UnknownAgent(f"unknown agent {agent!r} (known agents: {', '.join(sorted(self._agents))})") from None

    def agents(self) -> dict[str, str]:
        """``{agent id: environment name}`` for every agent."""
        return {agent: env.name for agent, env in self._agents.items()}


def _register_connection_secrets(env: Environment) -> None:
    """Mask every connection secret from the start, not from the first task that uses it: a shell
    task that prints a config file must not show a password no SQL task has resolved yet."""
    for task_type, named in env.connections.items():
        for name, settings in named.items():
            for key, value in settings.items():
                with contextlib.suppress(ConfigurationError):  # a missing variable fails at use
                    _resolve(value, where=f"{env.name}/{task_type}/{name}", key=str(key))


def _load_environment(folder: Path) -> Environment:
    data = _read_yaml(folder / "environment.yaml")
    connections_file = folder / "connections.yaml"
    connections = _read_yaml(connections_file) if connections_file.exists() else {}
    data.setdefault("name", folder.name)
    data["connections"] = connections
    data["folder"] = folder
    try:
        return Environment.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{folder}: {describe_validation_error(exc)}") from exc


#: libyaml's safe loader where PyYAML was built with it: the pure-Python one spent a third of a
#: CLI task's own time reading the environments.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=_SAFE_LOADER) or {}  # a safe loader
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a mapping, not {type(data).__name__}")
    return data
