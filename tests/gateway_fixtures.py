"""A real task API server per test (uvicorn in a thread), on the test environments: the fixtures
``gateway_factory`` and ``gateway`` (offered to every test folder by ``tests/conftest.py``)."""

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
from tests.identities import OPERATOR, TOKENS, VIEWER


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


def restarted_mid_task(factory: GatewayFactory, **settings: Any) -> dict[str, Any]:
    """A background task started on a gateway of ``settings`` that stops once the task is out on a
    worker (its run id recorded); a second gateway of the same settings follows it to the end.
    The task's final view."""
    from tests.servers import wait_until

    settings = {"gateway_poll_seconds": 0.05, "shutdown_grace_seconds": 0, **settings}
    first = factory(**settings)
    with first.http(OPERATOR) as http:
        task_id = http.post(
            "/api/v1/tasks", json={"type": "shell", "command": "sleep 1.5; echo survived", "sync": False, "timeout": 20}
        ).json()["id"]
        seen: dict[str, Any] = {}

        def out_on_a_worker_or_ended() -> bool:
            seen.update(http.get(f"/api/v1/tasks/{task_id}").json())
            return bool(seen["flow_run_id"]) or seen["status"] not in ("pending", "running")

        # A loaded Prefect server can take a while to create the run; a task that ended without
        # one (the dispatch failed) is reported with its error, not as a timeout.
        wait_until(out_on_a_worker_or_ended, what="the task's run on the worker", timeout=90)
        assert seen["flow_run_id"], f"the task ended before it reached a worker: {seen}"
    factory.stop(first)  # while its task runs on the worker
    second = factory(**settings)
    with second.client(VIEWER) as client:
        return client.wait(task_id, timeout=30, poll_seconds=0.1)
