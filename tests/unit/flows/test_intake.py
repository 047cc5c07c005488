"""Cycles started in this process: an alert storm waits in line for ``max_concurrent_cycles`` slots."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

import flows.cycle
import flows.runtime
from flows.alerts import AlertGroup, parse_alert_group
from flows.intake import start_in_process, starting_here
from tests.servers import wait_until
from tests.spec_data import ALERTMANAGER_SAMPLE


@pytest.fixture
def two_slots(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CLOUD_AGENT_MAX_CONCURRENT_CYCLES", "2")
    yield
    monkeypatch.delenv("CLOUD_AGENT_MAX_CONCURRENT_CYCLES")


def test_an_alert_storm_runs_max_concurrent_cycles_at_once_and_the_rest_in_line(
    two_slots: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    running, peak, finished = 0, 0, []
    release = threading.Event()

    def cycle(group: AlertGroup) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(10)
        time.sleep(0.05)
        with lock:
            running -= 1
            finished.append(group.groupKey)

    monkeypatch.setattr(flows.cycle, "rca_incident", cycle)
    sample = json.loads(ALERTMANAGER_SAMPLE.read_text())
    groups = [parse_alert_group({**sample, "groupKey": f"storm-{n}"}) for n in range(5)]

    threads = [start_in_process(group) for group in groups]
    wait_until(lambda: running >= 2, what="two cycles running", timeout=10, every=0.01)
    with lock:
        assert running == 2  # two run, three wait (``peak`` below: never a third at once)
    # Waiting in line still counts as started here: a repeated webhook is a duplicate, not a twin.
    assert all(starting_here(group) for group in groups)
    release.set()
    for thread in threads:
        thread.join(10)

    assert peak == 2
    assert sorted(finished) == sorted(group.groupKey for group in groups)
    assert not any(starting_here(group) for group in groups)
