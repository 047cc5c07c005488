"""The Prefect internals the project relies on (``flows.prefect_internals``), each assumption pinned: when
Prefect moves, these fail before production does."""

from __future__ import annotations

import asyncio
import contextlib
import inspect

from prefect.settings import get_current_settings
from prefect.utilities.callables import get_call_parameters

import flows.prefect_internals as internals
from flows.task_lane import environment_task


def test_each_environment_has_a_task_key_of_its_own() -> None:
    # A task worker serves the keys of the tasks it was given: a prod task must never carry a key
    # a staging worker serves. The key derives from the function's qualified name and code.
    prod, staging = environment_task("prod"), environment_task("staging")
    assert prod.task_key != staging.task_key
    assert prod.task_key.startswith("run_in_prod") and staging.task_key.startswith("run_in_staging")
    assert environment_task("prod").task_key == prod.task_key  # stable for the same environment
    assert prod.fn.__code__.co_qualname == "run_in_prod"


def test_a_renamed_function_still_takes_its_arguments() -> None:
    def add(a: int, b: int = 1) -> int:
        return a + b

    renamed = internals.renamed_function(add, "add_in_prod")
    assert renamed(2, b=3) == 5 and renamed.__code__.co_name == "add_in_prod"
    assert get_call_parameters(renamed, (2,), {}) == {"a": 2, "b": 1}


def test_flow_runs_can_be_made_without_the_heartbeat_thread() -> None:
    before = get_current_settings().flows.heartbeat_frequency
    with internals.without_flow_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == before


def test_run_flow_still_runs_a_created_flow_run_in_this_thread() -> None:
    from prefect.flow_engine import run_flow

    parameters = inspect.signature(run_flow).parameters
    assert {"flow", "flow_run", "parameters", "return_type"} <= set(parameters)


def test_a_thread_can_hold_one_sync_client(prefect_api: str) -> None:
    from prefect.context import SyncClientContext

    with internals.sync_client_context() as context:
        assert isinstance(context, SyncClientContext) and SyncClientContext.get() is context
        assert str(context.client.api_url).rstrip("/") == prefect_api.rstrip("/")


def test_the_process_api_is_what_the_settings_say() -> None:
    url = get_current_settings().api.url
    assert internals.configured_api_url() == (str(url) if url else None)


def test_the_task_worker_stops_on_sigterm_without_prefects_loop_thread() -> None:
    # Prefect registers the worker's own `handle_sigterm` for SIGTERM when the worker starts (so an
    # override replaces it); the override cancels the task that made the worker, and only that.
    from prefect.task_worker import TaskWorker

    assert "_register_signal(signal.SIGTERM, self.handle_sigterm)" in inspect.getsource(TaskWorker.astart)

    async def serving() -> None:
        worker = internals.prompt_task_worker(environment_task("pin"))
        worker.handle_sigterm(15, None)
        assert worker.stopping
        await asyncio.sleep(5)  # cancelled here, at the loop's next turn

    async def main() -> str:
        serve = asyncio.create_task(serving())
        bystander = asyncio.create_task(asyncio.sleep(0.5, result="kept"))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serve, timeout=2)
        return f"{serve.cancelled()} {await bystander}"

    assert asyncio.run(main()) == "True kept"
