"""Where a running task's output lines go while it runs.

A process that wants the lines of a task it dispatched in-process (the task API streaming to a
WebSocket) registers a sink under the task id. A task running on a remote worker has no sink in
that process: its lines go to the Prefect task-run log instead, where the UI shows them and the
gateway can follow them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

OutputSink = Callable[[str, str], None]

_lock = threading.Lock()
_sinks: dict[str, OutputSink] = {}


def register_sink(task_id: str, sink: OutputSink) -> None:
    with _lock:
        _sinks[task_id] = sink


def unregister_sink(task_id: str) -> None:
    with _lock:
        _sinks.pop(task_id, None)


def sink_for(task_id: str | None) -> OutputSink | None:
    if task_id is None:
        return None
    with _lock:
        return _sinks.get(task_id)
