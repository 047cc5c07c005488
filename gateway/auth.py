"""Bearer tokens with roles: ``viewer`` < ``operator`` < ``approver``.

- ``viewer`` reads tasks and subscribes to their logs;
- ``operator`` also runs tasks (a ``write``/``destructive`` one stops at ``approval_required``);
- ``approver`` also runs ``write``/``destructive`` tasks, approves waiting ones and answers the fixes
  incidents wait on (``gateway.incidents_api``); its tasks and answers carry ``<token name>`` as the
  approver, a checked identity.

Tokens are configured by a YAML file of SHA-256 digests (``CLOUD_AGENT_TOKENS_FILE``)::

    tokens:
      - name: rca-system          # recorded in the audit log and the task records
        role: operator
        sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8

(``printf %s "$TOKEN" | sha256sum`` gives the digest), and/or by ``CLOUD_AGENT_TOKENS=name:role:token,...``.
Only digests are kept in memory; a presented token is hashed and compared in constant time with
every configured digest. ``CLOUD_AGENT_ANONYMOUS_ROLE`` admits requests without a token (the
spec's ``CloudAgentClient`` sends none) with that role, as ``anonymous``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from executors import ConfigurationError, register_secret
from gateway.errors import Forbidden, Unauthenticated, describe_problems, field_problems
from gateway.settings import GatewaySettings

ANONYMOUS = "anonymous"
#: Where the request's principal is left for the audit middleware (the ASGI scope is shared).
PRINCIPAL_SCOPE_KEY = "cloud_agent.principal"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.APPROVER: 2}


class Principal(BaseModel):
    """Who is calling: the token's name (never the token) and its role."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role


class TokenEntry(BaseModel):
    """One configured token: its name, role and SHA-256 digest (hex)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@:-]+$")
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry] = Field(default_factory=list)


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token, as stored in the tokens file."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRegistry:
    """The configured tokens, by digest; answers "who is this token?" in constant time."""

    def __init__(self, entries: Iterable[TokenEntry], anonymous_role: Role | None = None):
        self.entries = list(entries)
        self.anonymous_role = anonymous_role
        names = [entry.name for entry in self.entries]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigurationError(f"token names must be unique; repeated: {', '.join(duplicates)}")
        if len({entry.sha256 for entry in self.entries}) != len(self.entries):
            raise ConfigurationError("two configured tokens have the same digest (the same token)")
        self._digests = [(bytes.fromhex(entry.sha256), entry) for entry in self.entries]

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> TokenRegistry:
        entries: list[TokenEntry] = []
        if settings.tokens_file is not None:
            entries.extend(load_token_file(settings.tokens_file))
        if settings.tokens:
            entries.extend(parse_token_list(settings.tokens))
        anonymous = Role(settings.anonymous_role) if settings.anonymous_role else None
        return cls(entries, anonymous)

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal a token stands for; ``None`` for no token (anonymous, if enabled) or a bad one."""
        if not token:
            return Principal(name=ANONYMOUS, role=self.anonymous_role) if self.anonymous_role else None
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: TokenEntry | None = None
        # Every digest is compared, match or not, so timing says nothing about which one matched.
        for digest, entry in self._digests:
            if hmac.compare_digest(presented, digest):
                found = entry
        return Principal(name=found.name, role=found.role) if found else None


def load_token_file(path: Path) -> list[TokenEntry]:
    """The tokens of a YAML tokens file (see the module docstring)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read the tokens file {path}: {exc}") from exc
    try:
        return TokenFile.model_validate(data).tokens
    except ValidationError as exc:
        raise ConfigurationError(f"{path}: {describe_problems(field_problems(exc.errors()))}") from exc


def parse_token_list(value: str) -> list[TokenEntry]:
    """``name:role:token,...`` (from ``CLOUD_AGENT_TOKENS``) as entries; the tokens become secrets."""
    entries = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep1, rest = item.partition(":")
        role, sep2, token = rest.partition(":")
        if not (sep1 and sep2 and name and token):
            raise ConfigurationError("CLOUD_AGENT_TOKENS holds name:role:token items separated by commas")
        register_secret(token)  # a task that echoes its environment must not show it
        try:
            entries.append(TokenEntry(name=name, role=Role(role), sha256=token_digest(token)))
        except ValueError as exc:
            raise ConfigurationError(
                f"CLOUD_AGENT_TOKENS entry {name!r}: role must be viewer, operator or approver ({exc})"
            ) from None
    return entries


# -- FastAPI dependencies -----------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A token configured with a role (viewer, operator, approver).")


def _registry(request: Request) -> TokenRegistry:
    registry: TokenRegistry = request.app.state.tokens
    return registry


def require(role: Role) -> Callable[..., Principal]:
    """A dependency that answers 401 without a known token and 403 when its role is below ``role``."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = _registry(request).authenticate(credentials.credentials if credentials else None)
        if principal is None:
            raise Unauthenticated("a valid bearer token is needed (Authorization: Bearer <token>)")
        request.scope[PRINCIPAL_SCOPE_KEY] = principal
        if not principal.role.allows(role):
            raise Forbidden(f"{principal.name!r} has the role {principal.role.value}; this needs {role.value}")
        return principal

    return dependency


def authenticate_websocket(websocket: WebSocket, token: str | None = None) -> Principal | None:
    """The principal of a WebSocket: its ``Authorization`` header, else ``token`` from a message."""
    registry: TokenRegistry = websocket.app.state.tokens
    header = websocket.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    presented = credentials.strip() if scheme.lower() == "bearer" else None
    principal = registry.authenticate(presented or token)
    if principal is not None:
        websocket.scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal
