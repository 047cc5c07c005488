"""The front door: the cloud-agent CLI, the task API and the Alertmanager webhook.

    from gateway import create_app, CloudAgentClient
    app = create_app()                                   # uvicorn "gateway:create_app" --factory
    with CloudAgentClient("http://cloud-agent:8080", token) as client:
        client.execute_shell("agent-prod-001", "df -h")

Names are imported on first use, so that ``cloud-agent`` commands which do not serve the API do not
pay for FastAPI (and the API does not pay for the CLI).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import create_app, serving
    from gateway.auth import Principal, Role, require
    from gateway.client import ApiRequestFailed, CloudAgentClient, run_through_server
    from gateway.errors import GatewayError
    from gateway.settings import GatewaySettings

_EXPORTS = {
    "create_app": "gateway.app",
    "serving": "gateway.app",
    "Principal": "gateway.auth",
    "Role": "gateway.auth",
    "require": "gateway.auth",
    "ApiRequestFailed": "gateway.client",
    "CloudAgentClient": "gateway.client",
    "run_through_server": "gateway.client",
    "GatewayError": "gateway.errors",
    "GatewaySettings": "gateway.settings",
}

__all__ = [
    "ApiRequestFailed",
    "CloudAgentClient",
    "GatewayError",
    "GatewaySettings",
    "Principal",
    "Role",
    "create_app",
    "require",
    "run_through_server",
    "serving",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
