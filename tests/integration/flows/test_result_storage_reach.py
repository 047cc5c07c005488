"""A worker whose shared result store cannot be reached stops at its start, in one line, and
says nothing of the store's credentials."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import s3fs
from typer.testing import CliRunner

from gateway.cli import app


@pytest.mark.integration
@pytest.mark.prefect
@pytest.mark.slow
def test_a_worker_that_cannot_reach_the_store_stops_at_start_with_one_line(
    prefect_api: str, config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.setenv("CLOUD_AGENT_RESULT_STORAGE", f"s3://nowhere-{uuid.uuid4().hex[:8]}/results")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cloud-agent-test")
    secret = f"unreachable-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    try:
        result = CliRunner().invoke(app, ["worker", "--env", "local"])
    finally:
        # fsspec keeps one S3 client per set of arguments for the whole process, and the block's
        # arguments do not include the endpoint read from this test's environment: a later test
        # of this process would otherwise be handed the client aimed at the closed port.
        s3fs.S3FileSystem.clear_instance_cache()
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: the result storage s3://nowhere-"), lines
    assert "cannot be written and read from this host" in lines[0] and secret not in result.stderr
