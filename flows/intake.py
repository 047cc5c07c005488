"""Starting cycles from alerts: the Prefect-native way (an event that the ``rca-incident/alert``
deployment's trigger matches) or in this process (the embedded, one-machine mode)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.events import emit_event

from flows._runtime import settings
from flows.alerts import ALERT_EVENT, AlertGroup, alert_event_payload, alert_event_resource

log = logging.getLogger("cloud_agent.intake")

ACTIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]

# Groups started in this process whose flow run has not been created yet: the window in which the
# server cannot see them yet and a second webhook would otherwise start a twin.
_starting: set[str] = set()
_starting_lock = threading.Lock()
_threads: list[threading.Thread] = []
# Slots for the cycles of this process, made for the configured limit.
_slots: tuple[int, threading.Semaphore] | None = None


def active_runs(group_tag: str, *, exclude: Any = None) -> list[FlowRun]:
    """Flow runs of this alert group that are not finished, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[group_tag]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATES)),
            ),
            limit=20,
        )
    runs = [run for run in runs if run.id != exclude]
    return sorted(runs, key=lambda run: run.created or run.expected_start_time or 0)


def emit_alert(group: AlertGroup) -> str:
    """Emit the event the cycle's deployment trigger waits for; returns the event id."""
    event = emit_event(event=ALERT_EVENT, resource=alert_event_resource(group), payload=alert_event_payload(group))
    if event is None:
        raise RuntimeError("Prefect events are disabled here; cannot start the cycle by event")
    return str(event.id)


def start_in_process(group: AlertGroup) -> threading.Thread:
    """Run the cycle for ``group`` in a thread of this process (no deployment needed)."""
    from flows.cycle import rca_incident

    with _starting_lock:
        _starting.add(group.group_tag)
    slots = _cycle_slots()

    def run() -> None:
        try:
            with slots:  # in line until a running cycle ends (max_concurrent_cycles)
                rca_incident(group)
        except Exception:  # a failed run says why in Prefect; one that never started only here
            log.exception("the cycle of alert group %s failed", group.group_tag)
        finally:
            with _starting_lock:
                _starting.discard(group.group_tag)

    context = contextvars.copy_context()  # the Prefect settings (API URL) may live only in a context
    thread = threading.Thread(target=context.run, args=(run,), name=f"rca-{group.group_id}", daemon=True)
    thread.start()
    with _starting_lock:
        _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
    return thread


def _cycle_slots() -> threading.Semaphore:
    global _slots
    limit = settings().max_concurrent_cycles
    with _starting_lock:
        if _slots is None or _slots[0] != limit:
            _slots = (limit, threading.Semaphore(limit))
        return _slots[1]


def wait_for_cycles(timeout: float) -> bool:
    """Wait for the cycles started in this process to end (a shutdown); True when all did."""
    with _starting_lock:
        threads = list(_threads)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def starting_here(group: AlertGroup) -> bool:
    with _starting_lock:
        return group.group_tag in _starting
