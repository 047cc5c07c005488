"""A stand-in for the person in the Prefect UI: answers a paused cycle's fix form.

The demo uses it so that ``make demo`` runs unattended (``--approve wait`` leaves the decision to
you in the UI); the integration tests use it for the approve and reject paths. It goes through
Prefect's API exactly as the UI does: find the paused run of the alert group, resume it with
``run_input``.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run


def answer_when_paused(
    group_tag: str,
    *,
    approve: bool,
    approver: str = "demo-operator",
    delay: float = 3.0,
    timeout: float = 600.0,
    say: Callable[[str], None] | None = None,
) -> bool:
    """Wait for the alert group's run to pause, then approve or reject its fix. True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with get_client(sync_client=True) as client:
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[group_tag]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                ),
                limit=1,
            )
        if not paused:
            continue
        if say is not None:
            verb = "approves" if approve else "rejects"
            say(f"the fix waits for a person in the Prefect UI; the stand-in approver {verb} it in {delay:g} s")
        time.sleep(delay)
        resume_flow_run(
            paused[0].id,
            run_input={
                "approve": approve,
                "approver": approver,
                "comment": "approved by the stand-in approver" if approve else "rejected by the stand-in approver",
            },
        )
        return True
    return False


def answer_in_background(group_tag: str, *, approve: bool, **kwargs: object) -> threading.Thread:
    # The thread gets this context: the Prefect settings (API URL) may live only in a context.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(answer_when_paused, group_tag), kwargs={"approve": approve, **kwargs}, daemon=True
    )
    thread.start()
    return thread
