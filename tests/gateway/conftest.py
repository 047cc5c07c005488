"""A real task API server per test (uvicorn in a thread), on the test environments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
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
    running: AbstractContextManager[str] = field(repr=False)

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def client(self, token: str | None = OPERATOR) -> CloudAgentClient:
        return CloudAgentClient(self.url, token)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


class GatewayFactory:
    """Starts task API servers: ``factory(gateway_run_as="engine", ...)``; all stop at the test's end.

    Keyword arguments are ``GatewaySettings`` fields. The default runs tasks on the bare engine
    (no Prefect); tests of the Prefect paths ask for ``prefect_api`` and a ``gateway_run_as``.
    """

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.started: list[Gateway] = []

    def __call__(self, **overrides: Any) -> Gateway:
        overrides.setdefault("gateway_run_as", "engine")
        app = create_app(GatewaySettings(**overrides))
        running = serving(app)
        gateway = Gateway(running.__enter__(), app, self.state_dir, running)
        self.started.append(gateway)
        return gateway

    def stop(self, gateway: Gateway) -> None:
        """Stop one server now (its lifespan's shutdown runs), as a restart does."""
        if gateway in self.started:
            self.started.remove(gateway)
            gateway.running.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    """Each test gets the process engine of its own environments (``flows`` keeps one per process)."""
    from flows import _runtime

    _runtime.reset()
    yield
    _runtime.reset()


@pytest.fixture
def gateway_factory(config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayFactory]:
    """Task API servers on the test environments (see ``GatewayFactory``)."""
    monkeypatch.setenv("CLOUD_AGENT_TOKENS", TOKENS)
    factory = GatewayFactory(state_dir)
    try:
        yield factory
    finally:
        for gateway in reversed(list(factory.started)):
            factory.stop(gateway)


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> Gateway:
    """One server running tasks on the bare engine."""
    return gateway_factory()
