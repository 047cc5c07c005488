"""The installation's own Prefect server: one per state folder (a second process shares it rather
than starting another on the same database), stopped only by the process that started it, and a
new owner settles the runs a stopped one left unfinished."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Running

from flows.runs import settle_orphaned_runs
from gateway.local_prefect import LocalPrefectServer, LocalPrefectUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STARTUP = 180.0


@flow(name="left-running")
def left_running() -> None:
    """Never run here: a flow run is created for it and left Running, as a killed gateway leaves one."""


def _state_of(api_url: str, run_id: object) -> str:
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
        assert state is not None
        return state.type.value


def test_one_server_per_state_folder_shared_then_settled_by_the_next_owner(tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    first = LocalPrefectServer(home, on_ready=settle_orphaned_runs)
    second = LocalPrefectServer(home)
    try:
        url = first.start()
        assert first.owned and second.running_elsewhere() == url
        assert second.start() == url and not second.owned  # shared: no second server on the database
        assert second.wait_ready(STARTUP) == url == first.wait_ready(STARTUP)
        with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
            orphan = client.create_flow_run(left_running, state=Running())

        second.stop()  # not its server to stop
        assert first.wait_ready(1) == url and _state_of(url, orphan.id) == "RUNNING"
        first.stop()
        with pytest.raises(LocalPrefectUnavailable, match="was not started"):
            first.wait_ready(1)

        third = LocalPrefectServer(home, on_ready=settle_orphaned_runs)
        try:
            again = third.start()
            assert third.owned and third.wait_ready(STARTUP) == again
            assert _state_of(again, orphan.id) == "CRASHED"
        finally:
            third.stop()
    finally:
        second.stop()
        first.stop()
    assert not (home / "api-url").exists()
    assert LocalPrefectServer(home).running_elsewhere() is None  # nobody runs it now
