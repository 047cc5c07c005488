"""The shared result storage's configuration and what its serializer lets into the store.

The end-to-end proof (a worker that shares no filesystem with the control side) is
``tests/integration/gateway/test_remote_worker.py``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from executors import ConfigurationError, register_secret
from flows.result_storage import SharedStoreSerializer, shared_storage_of
from gateway.cli import app


def test_no_url_means_prefects_local_folder() -> None:
    assert shared_storage_of(None) is None
    assert shared_storage_of("  ") is None


@pytest.mark.parametrize("url", ["results-bucket", "/var/lib/results", "file:///var/lib/results", "s3://", "s3:bucket"])
def test_a_url_that_names_no_shared_store_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        shared_storage_of(url)
    message = str(refused.value)
    assert message.startswith("CLOUD_AGENT_RESULT_STORAGE must be a shared store's URL") and "\n" not in message


def test_hosts_with_the_same_url_name_the_same_block_and_another_url_another() -> None:
    first = shared_storage_of("s3://rca-results/prod")
    assert first is not None
    assert first == shared_storage_of(" s3://rca-results/prod/ ")
    assert first.block_slug.startswith("remote-file-system/cloud-agent-results-")
    other = shared_storage_of("s3://rca-results/staging")
    assert other is not None and other.block_name != first.block_name


def _stored(obj: object) -> str:
    return SharedStoreSerializer().dumps(obj).decode()


def test_a_background_tasks_parameters_travel_without_the_callers_prefect_settings() -> None:
    api_key = f"pnu_{uuid.uuid4().hex}"
    record = {
        "context": {
            "settings_context": {"profile": {"name": "ephemeral"}, "settings": {"api": {"key": api_key}}},
            "tags_context": {"current_tags": ["task-api"]},
        },
        "parameters": {"task_spec": {"type": "shell", "command": "df -h"}, "actor": "ops"},
    }
    stored = _stored(record)
    assert api_key not in stored and "settings_context" not in stored
    back = SharedStoreSerializer().loads(stored.encode())
    assert back["parameters"] == record["parameters"]
    assert back["context"] == {"tags_context": {"current_tags": ["task-api"]}}


def test_a_tasks_own_parameters_are_stored_as_given_since_the_worker_runs_them() -> None:
    inline = f"inline-{uuid.uuid4().hex}"
    register_secret(inline)
    record = {"context": {}, "parameters": {"task_spec": {"type": "shell", "command": f"echo {inline}"}}}
    assert SharedStoreSerializer().loads(SharedStoreSerializer().dumps(record)) == record


def test_results_are_masked_again_for_the_secrets_of_the_writing_process() -> None:
    secret = f"result-secret-{uuid.uuid4().hex}"
    register_secret(secret)
    results = [{"id": "task-1", "output": f"token={secret}\n", "data": {"rows": [[secret, 1]]}}]
    stored = _stored(results)
    assert secret not in stored
    assert SharedStoreSerializer().loads(stored.encode()) == [
        {"id": "task-1", "output": "token=***\n", "data": {"rows": [["***", 1]]}}
    ]


def test_an_exception_stored_as_a_runs_failure_has_its_message_masked() -> None:
    secret = f"exception-secret-{uuid.uuid4().hex}"
    register_secret(secret)
    stored = _stored(RuntimeError(f"cannot connect to postgresql://rca:{secret}@db:5432, password=hunter22xx"))
    assert secret not in stored and "hunter22xx" not in stored
    back = SharedStoreSerializer().loads(stored.encode())
    assert isinstance(back, RuntimeError)
    assert str(back) == "cannot connect to postgresql://rca:***@db:5432, password=***"


def test_what_is_stored_is_json_readable_anywhere() -> None:
    stored = _stored({"status": "succeeded", "duration_ms": 12.5, "notes": []})
    assert json.loads(stored) == {"status": "succeeded", "duration_ms": 12.5, "notes": []}


def test_a_worker_with_an_invalid_storage_url_stops_with_one_line(
    config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("CLOUD_AGENT_RESULT_STORAGE", "rca-results")
    result = CliRunner().invoke(app, ["worker", "--env", "local"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: CLOUD_AGENT_RESULT_STORAGE must be a shared store's URL such as s3://bucket/prefix, not 'rca-results'"
    ]


@pytest.mark.slow  # a process that imports the gateway and Prefect: seconds
def test_a_gateway_with_an_invalid_storage_url_stops_with_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
        "CLOUD_AGENT_DISPATCH": "work-pool",
        "CLOUD_AGENT_RESULT_STORAGE": "rca-results",
        "CLOUD_AGENT_STATE_DIR": str(tmp_path / "state"),
        "CLOUD_AGENT_TOKENS": "ops:operator:operator-token-123",
    }
    serve = subprocess.run(
        [str(Path(sys.executable).parent / "cloud-agent"), "serve", "--port", "9"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert serve.returncode == 2
    assert serve.stderr.strip().splitlines() == [
        "error: CLOUD_AGENT_RESULT_STORAGE must be a shared store's URL such as s3://bucket/prefix, not 'rca-results'"
    ]
