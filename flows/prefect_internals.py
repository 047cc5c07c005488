"""Every Prefect internal the project relies on, in one place, each pinned by a test
(``tests/unit/flows/test_prefect_internals.py``): the process's Prefect API, flow runs without the
heartbeat thread, a task function renamed so that its task key is an environment's own, a flow run
executed in this process from a worker, a thread holding one sync client for its life, and a task
worker that stops on SIGTERM without waiting on Prefect's loop thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from prefect.context import SettingsContext, refresh_global_settings_context
from prefect.settings import get_current_settings

T = TypeVar("T")


def configured_api_url() -> str | None:
    """The Prefect API this process talks to (``PREFECT_API_URL``, from the environment, the Prefect
    profile or a test harness), or ``None`` when there is none and Prefect would start a
    temporary server of its own on first use."""
    url = get_current_settings().api.url
    return str(url) if url else None


def use_api(url: str) -> None:
    """Make ``url`` the Prefect API of the whole process, every thread included (and of the
    processes it starts): the gateway's local server once it has chosen its port."""
    os.environ["PREFECT_API_URL"] = url
    # Prefect read its settings when it was imported; a context already holding settings (a test
    # harness's) keeps them, every other thread now reads these.
    refresh_global_settings_context()


@contextmanager
def without_flow_heartbeats() -> Iterator[None]:
    """Run flows in this context without the flow-run heartbeat thread.

    Prefect 3.9's heartbeat thread sleeps in one-second steps and the engine joins it when the run
    ends, so every synchronous flow run lasts at least ~1 s longer than its work. That second
    dominates a batch of 200 ms queries and a synchronous API task. Batches are short and their
    dispatcher waits for them with a timeout (and marks tasks of a lost batch ``crashed``), so
    they do not need the heartbeat's crash detection; the long-running cycle keeps it.
    """
    current = get_current_settings()
    if current.flows.heartbeat_frequency is None:
        yield
        return
    quiet = current.model_copy(update={"flows": current.flows.model_copy(update={"heartbeat_frequency": None})})
    context = SettingsContext.get()
    assert context is not None, "Prefect always has a settings context"
    with SettingsContext(profile=context.profile, settings=quiet):
        yield


def renamed_function(function: Callable[..., T], name: str) -> Callable[..., T]:
    """``function`` under ``name``, code object included.

    Prefect keys a background task by its function's qualified name and code (``task_key``); a
    task worker serves only the keys of the tasks it was given. Renaming the code gives a task of
    its own key to each name: how a prod task only ever reaches a prod worker.
    """
    function.__name__ = function.__qualname__ = name
    function.__code__ = function.__code__.replace(co_name=name, co_qualname=name)
    return function


def run_flow_here(flow: Any, flow_run: Any) -> Any:
    """Run ``flow_run`` (already created on the server) of ``flow`` in this thread; its final state.

    What Prefect's own process worker does in a subprocess, without the process (a worker that runs
    batches of 200 ms tasks cannot spend seconds starting Python for each).
    """
    from prefect.flow_engine import run_flow

    return run_flow(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")


def sync_client_context() -> contextlib.AbstractContextManager[Any]:
    """One sync Prefect client for the thread that enters it (a run started without one in context
    creates a client of its own and checks the server version: ~10 ms per task run)."""
    from prefect.context import SyncClientContext

    return SyncClientContext()


def prompt_task_worker(*tasks: Any, **options: Any) -> Any:
    """Prefect's ``TaskWorker`` for ``tasks``, stopping at once on SIGTERM (see
    ``_prompt_task_worker_class``); made in the event loop that will serve it."""
    return _prompt_task_worker_class()(*tasks, **options)


@cache
def _prompt_task_worker_class() -> type[Any]:
    """Prefect's task worker, stopping at once on SIGTERM.

    Prefect's handler (registered by ``TaskWorker.start``) runs ``astop`` on Prefect's global loop
    thread, waits for it, and raises ``StopTaskWorker`` wherever the main thread happens to be: a
    busy loop thread kept ``cloud-agent worker`` running more than 30 s after systemd's stop, and
    an exception raised inside an event-loop callback is logged and swallowed. This handler only
    asks the event loop to cancel the task that serves the worker (the one that made it), as
    ``asyncio.run`` does on Ctrl-C; the serving process unwinds from there.

    Defined on first use: importing Prefect's task worker costs 0.25 s, which every process that
    imports this module (the gateway, the cycle) would pay for a class only workers use.
    """
    from prefect.task_worker import TaskWorker

    class PromptTaskWorker(TaskWorker):
        def __init__(self, *tasks: Any, **options: Any) -> None:
            super().__init__(*tasks, **options)
            self._loop = asyncio.get_running_loop()  # Prefect's TaskWorker wants one too
            self._serving = asyncio.current_task()

        def handle_sigterm(self, signum: int, frame: object) -> None:
            self.stopping = True
            if self._serving is not None:
                self._loop.call_soon_threadsafe(self._serving.cancel)

    return PromptTaskWorker
