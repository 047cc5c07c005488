"""Prefect settings the flows change for their own runs, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.context import SettingsContext
from prefect.settings import get_current_settings


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
