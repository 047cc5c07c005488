"""schemathesis against the served OpenAPI spec: no 500s, no answer outside the documented schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.environments import write_environment
from tests.gateway_fixtures import GatewayFactory
from tests.identities import APPROVER

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Bounded: examples per operation, and the whole run (the test fails past it).
MAX_EXAMPLES = 30
TIME_LIMIT_SECONDS = 60


def test_the_api_keeps_its_openapi_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway_factory: GatewayFactory
) -> None:
    # Generated shell commands must not do anything: reads only, stopped after a second.
    folder = tmp_path / "fuzz"
    write_environment(
        folder,
        "local",
        agents=["agent-local-001"],
        policy={"max_risk": "read"},
        limits={"max_timeout_seconds": 1, "max_output_bytes": 4096},
    )
    monkeypatch.setenv("CLOUD_AGENT_CONFIG_DIR", str(folder))
    gateway = gateway_factory()
    st = Path(sys.executable).parent / "st"
    command = [
        str(st),
        "run",
        f"{gateway.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {APPROVER}",  # the approver reaches every operation
        # The task API's operations; other routers (the Alertmanager webhook starts diagnosis cycles)
        # are fuzzed by their own tests.
        "--include-path-regex",
        r"^/(api/v1/(tasks|agents)|healthz)",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis ran past {TIME_LIMIT_SECONDS} s:\n{exc.stdout!s:.4000}")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
