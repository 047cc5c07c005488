"""Shared result storage: how a worker on another host hands its results back.

Prefect keeps a persisted result, and the parameters of a background task run, in result storage,
by default a folder of the machine that writes them (``PREFECT_LOCAL_STORAGE_PATH``). On one
machine that is enough. A worker on another host writes there too, and the control side cannot
read it: a dispatched batch completes on the worker and its results ``do not exist`` here, and a
single task's parameters written by the gateway cannot be read by the worker, which deletes the
task run.

With ``CLOUD_AGENT_RESULT_STORAGE=s3://bucket/prefix`` on every host (the gateway, the control
worker and each environment's worker), results and background-task parameters go to that bucket
instead, through Prefect's own result storage:

- a ``remote-file-system`` block named after the URL is saved on the Prefect server; it holds the
  URL only. A result's metadata names the block, so any host reading a result finds the store.
- the process's Prefect settings point results and background-task parameters at that block, and
  serialize them as JSON with ``SharedStoreSerializer`` (below).

Credentials and the endpoint stay on each host: s3fs (botocore) reads ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_ENDPOINT_URL_S3`` (or an instance role) from the host's own
environment, so nothing secret is saved on the Prefect server and two hosts may reach the store at
different addresses. We chose a shared bucket over sending results back through the Prefect API
(artifacts, variables): Prefect resolves results by their storage block everywhere it reads them
(``State.result()``, ``run_deployment``, the UI), and a background task's parameters travel the same
way, so one store serves both directions without a second path of our own to keep in step.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import UUID

from prefect.serializers import JSONSerializer, prefect_json_object_encoder
from pydantic import BaseModel, ConfigDict, Field

from executors import ConfigurationError, redact_output_value, redact_text, register_secret

if TYPE_CHECKING:
    from prefect.states import State

#: Block type of the store: Prefect's own fsspec block (``s3://`` needs s3fs, installed with us).
BLOCK_TYPE = "remote-file-system"
#: Written at start-up to prove this host can write and read the store.
PROBE_FOLDER = "cloud-agent-probe"
#: Credentials botocore reads from the environment: masked wherever a task might print them.
_CREDENTIAL_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
#: Prefect's record of a background task run's parameters (``Task.create_run``): these keys only.
_PARAMETER_RECORD_KEYS = frozenset({"context", "parameters", "wait_for"})


class SharedStorage(BaseModel):
    """The shared result store of a deployment: its URL and the Prefect block that names it."""

    model_config = ConfigDict(frozen=True)

    url: str
    block_name: str

    @property
    def block_slug(self) -> str:
        return f"{BLOCK_TYPE}/{self.block_name}"


def shared_storage_of(url: str | None) -> SharedStorage | None:
    """The store ``CLOUD_AGENT_RESULT_STORAGE`` names, or ``None`` for Prefect's local folder.

    Raises:
        ConfigurationError: ``url`` is not a remote storage URL such as ``s3://bucket/prefix``.
    """
    if url is None or not url.strip():
        return None
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc or parts.scheme in ("file", "local"):
        raise ConfigurationError(
            f"CLOUD_AGENT_RESULT_STORAGE must be a shared store's URL such as s3://bucket/prefix, not {url!r}"
        )
    # Named after the URL: hosts agree on the block without coordinating, and a new bucket is a
    # new block (results written to the old one stay readable).
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return SharedStorage(url=url, block_name=f"cloud-agent-results-{digest}")


_lock = threading.Lock()
_ready: dict[tuple[str, str], SharedStorage] = {}


def ensure_shared_storage(url: str | None = None) -> SharedStorage | None:
    """Make the configured store usable from this process; ``None`` when none is configured.

    Saves its block on the Prefect server if missing, writes and reads a probe object (so a host
    without access fails at start, not at its first result), and registers the storage
    credentials of the environment as secrets. Done once per process, store and server.

    Args:
        url: the store's URL; by default ``CLOUD_AGENT_RESULT_STORAGE`` (the flows' settings).

    Raises:
        ConfigurationError: the URL is invalid, or the store cannot be written and read from here.
    """
    if url is None:
        from flows.runtime import settings

        url = settings().result_storage
    storage = shared_storage_of(url)
    if storage is None:
        return None
    from prefect.settings import get_current_settings

    key = (storage.url, str(get_current_settings().api.url))
    with _lock:
        if key in _ready:
            return _ready[key]
        for variable in _CREDENTIAL_VARIABLES:
            if os.environ.get(variable):
                register_secret(os.environ[variable])
        block = _saved_block(storage)
        _probe(block, storage)
        _ready[key] = storage
        return storage


def _saved_block(storage: SharedStorage) -> Any:
    from prefect.filesystems import RemoteFileSystem

    try:
        return RemoteFileSystem.load(storage.block_name)
    except ValueError:  # Prefect's "Unable to find block document named ..."
        pass
    block = RemoteFileSystem(basepath=storage.url)
    try:
        block.save(storage.block_name)
    except Exception:  # another host saved it first: the same URL, so the same block
        return RemoteFileSystem.load(storage.block_name)
    return block


def _probe(block: Any, storage: SharedStorage) -> None:
    path = f"{PROBE_FOLDER}/{socket.gethostname()}"  # one object per host, rewritten at each start
    try:
        block.write_path(path, b"ok")
        if block.read_path(path) != b"ok":
            raise OSError("what was written came back different")
    except Exception as exc:
        message = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise ConfigurationError(
            f"the result storage {storage.url} cannot be written and read from this host ({message}); "
            "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL_S3"
        ) from exc


@contextmanager
def shared_result_storage(url: str | None = None) -> Iterator[SharedStorage | None]:
    """Run the body with results and background-task parameters in the shared store, if configured.

    Without a configured store the body runs with Prefect's local defaults (the one-machine mode).
    Threads and tasks started inside inherit the settings (they are a context variable).

    Raises:
        ConfigurationError: as ``ensure_shared_storage``.
    """
    storage = ensure_shared_storage(url)
    if storage is None:
        yield None
        return
    from prefect.settings import (
        PREFECT_RESULTS_DEFAULT_SERIALIZER,
        PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
        PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK,
        temporary_settings,
    )

    with temporary_settings(
        {
            PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: storage.block_slug,
            PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK: storage.block_slug,
            PREFECT_RESULTS_DEFAULT_SERIALIZER: SharedStoreSerializer.model_fields["type"].default,
        }
    ):
        yield storage


_blocks: dict[UUID, Any] = {}
#: A run's Completed state can be seen before its result is in the store (Prefect writes some
#: results after the state): reads are tried this often, this far apart, as Prefect's own are.
READ_ATTEMPTS = 10
READ_RETRY_SECONDS = 0.25


def read_result(state: State[Any]) -> Any:
    """The result of a completed run, read from the store its metadata names.

    Prefect's ``State.result()`` reads the store's block document for every result it reads, with
    a client it never closes (a socket left to the garbage collector each time), though all of a
    worker's results name the same block: here the block is loaded once per process.
    """
    from prefect.blocks.core import Block
    from prefect.results import ResultRecordMetadata, ResultStore

    metadata = state.data
    if not isinstance(metadata, ResultRecordMetadata) or metadata.storage_block_id is None:
        return state.result(raise_on_failure=True)
    block = _blocks.get(metadata.storage_block_id)
    if block is None:
        block = _blocks.setdefault(metadata.storage_block_id, Block.load_from_ref(metadata.storage_block_id))
    assert metadata.storage_key is not None, "a persisted result has a key"
    store = ResultStore(result_storage=block, serializer=metadata.serializer)
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return store.read(metadata.storage_key).result
        except Exception:
            if attempt == READ_ATTEMPTS:
                raise
            time.sleep(READ_RETRY_SECONDS)


async def aread_result(state: State[Any]) -> Any:
    """``read_result`` for event loops."""
    from prefect.blocks.core import Block
    from prefect.results import ResultRecordMetadata, ResultStore

    metadata = state.data
    if not isinstance(metadata, ResultRecordMetadata) or metadata.storage_block_id is None:
        return await state.aresult(raise_on_failure=True)
    block = _blocks.get(metadata.storage_block_id)
    if block is None:
        block = _blocks.setdefault(metadata.storage_block_id, await Block.aload_from_ref(metadata.storage_block_id))
    assert metadata.storage_key is not None, "a persisted result has a key"
    store = ResultStore(result_storage=block, serializer=metadata.serializer)
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return (await store.aread(metadata.storage_key)).result
        except Exception:
            if attempt == READ_ATTEMPTS:
                raise
            await asyncio.sleep(READ_RETRY_SECONDS)


class SharedStoreSerializer(JSONSerializer[Any]):
    """JSON for what goes into the shared store, with nothing secret in it.

    - A background task run's parameter record carries the caller's whole Prefect settings
      (``serialize_context``), secrets included (``PREFECT_API_KEY``, a database password), and
      the worker would run the task under them, the gateway's API URL and folders included. The
      record goes without them: the worker runs the task under its own settings.
    - Results are masked again for the secrets registered in the writing process (the engine
      masks them already; this also covers anything a flow adds), and an exception's message is
      masked like a log line before it is stored as the reason of a failed run.
    - JSON, not pickle: hosts may run different Python versions, our results are JSON data by
      contract, and the store stays readable by people and by the leak checks.

    The task's own parameters are stored as given: the worker needs them to run it.
    """

    type: str = Field(default="cloud-agent-json", frozen=True)
    object_encoder: str | None = Field(default="flows.result_storage.encode_for_shared_store")

    def dumps(self, obj: Any) -> bytes:
        if _is_parameter_record(obj):
            context = {k: v for k, v in obj["context"].items() if k != "settings_context"}
            return super().dumps({**obj, "context": context})
        return super().dumps(redact_output_value(obj))


def _is_parameter_record(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and "context" in obj
        and set(obj) <= _PARAMETER_RECORD_KEYS
        and isinstance(obj["context"], Mapping)
    )


def encode_for_shared_store(obj: Any) -> Any:
    """Prefect's JSON encoding of objects, with exception messages masked."""
    encoded = prefect_json_object_encoder(obj)
    if isinstance(obj, BaseException) and isinstance(encoded, dict):
        encoded["message"] = redact_text(str(encoded.get("message", "")))
    return encoded
