"""A real task API server per test (uvicorn in a thread), on the test environments."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app, serving
from gateway.client import CloudAgentClient
from gateway.settings import GatewaySettings

VIEWER, OPERATOR, APPROVER = "viewer-token-3f9a2c", "operator-token-8b1d7e", "approver-token-5c6e0a"
TOKENS = f"ada:viewer:{VIEWER},ops:operator:{OPERATOR},boss:approver:{APPROVER}"


@dataclass
class Gateway:
    url: str
    app: FastAPI
    state_dir: Path

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def client(self, token: str | None = OPERATOR) -> CloudAgentClient:
        return CloudAgentClient(self.url, token)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


GatewayFactory = Callable[..., Gateway]


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    """Each test gets the process engine of its own environments (``flows`` keeps one per process)."""
    from flows import _runtime

    _runtime.reset()
    yield
    _runtime.reset()


@pytest.fixture
def gateway_factory(
    config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GatewayFactory]:
    """Start task API servers on the test environments: ``start(gateway_run_as="engine", ...)``.

    Keyword arguments are ``GatewaySettings`` fields. The default runs tasks on the bare engine
    (no Prefect); tests of the Prefect paths ask for ``prefect_api`` and ``gateway_run_as="flow-run"``.
    """
    monkeypatch.setenv("CLOUD_AGENT_TOKENS", TOKENS)
    stack: list[Any] = []

    def start(**overrides: Any) -> Gateway:
        overrides.setdefault("gateway_run_as", "engine")
        app = create_app(GatewaySettings(**overrides))
        serving_app = serving(app)
        url = serving_app.__enter__()
        stack.append(serving_app)
        return Gateway(url, app, state_dir)

    try:
        yield start
    finally:
        for running in reversed(stack):
            running.__exit__(None, None, None)


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> Gateway:
    """One server running tasks on the bare engine."""
    return gateway_factory()
