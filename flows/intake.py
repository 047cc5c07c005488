"""Starting cycles from alerts: the Prefect-native way (an event that the ``rca-incident/alert``
deployment's trigger matches) or in this process (the embedded, one-machine mode)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable

from prefect.events import emit_event

from flows.alerts import ALERT_EVENT, AlertGroup, alert_event_payload, alert_event_resource
from flows.runtime import settings

log = logging.getLogger("cloud_agent.intake")


# Groups started in this process whose flow run has not been created yet: the window in which the
# server cannot see them yet and a second webhook would otherwise start a twin.
_starting: set[str] = set()
_starting_lock = threading.Lock()
_threads: list[threading.Thread] = []
# Set when the process shuts down: a cycle cut short then is expected, not a failure to trace.
_stopping = threading.Event()
# Slots for the cycles of this process, made for the configured limit.
_slots: tuple[int, threading.Semaphore] | None = None


def emit_alert(group: AlertGroup) -> str:
    """Emit the event the cycle's deployment trigger waits for; returns the event id."""
    event = emit_event(event=ALERT_EVENT, resource=alert_event_resource(group), payload=alert_event_payload(group))
    if event is None:
        raise RuntimeError("Prefect events are disabled here; cannot start the cycle by event")
    return str(event.id)


def start_in_process(group: AlertGroup, *, before: Callable[[], object] | None = None) -> threading.Thread:
    """Run the cycle for ``group`` in a thread of this process (no deployment needed).

    Args:
        before: called in that thread first (waiting for a Prefect server that is starting); if
            it raises, the cycle does not run and the error is logged.
    """
    from flows.cycle import rca_incident

    with _starting_lock:
        _starting.add(group.group_tag)
    slots = _cycle_slots()

    def run() -> None:
        try:
            if before is not None:
                before()
            with slots:  # in line until a running cycle ends (max_concurrent_cycles)
                rca_incident(group)
        except Exception:  # a failed run says why in Prefect; one that never started only here
            if _stopping.is_set():
                log.warning("the cycle of alert group %s stopped with this process", group.group_tag)
            else:
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


def stop_cycles() -> None:
    """Say that this process is shutting down: the cycles it runs end with it (their runs are
    settled as crashed when the Prefect server they ran on starts again)."""
    _stopping.set()
    # The cycles are daemon threads that die with the interpreter. A record one logs while it
    # tears down cannot reach Prefect's API (its log service can no longer start a thread), and
    # logging would print that failure as a traceback to whoever pressed Ctrl-C.
    logging.raiseExceptions = False


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
