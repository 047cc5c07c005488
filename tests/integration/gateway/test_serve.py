"""``cloud-agent serve`` without a Prefect server, as a new user starts it: a task runs at once (no
Prefect server starts for it), an alert's cycle runs on the local Prefect server the first alert
starts, SIGTERM, Ctrl-C and even SIGKILL leave no process behind, and nothing prints a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.alerts import parse_alert_group
from tests.identities import OPERATOR, TOKENS
from tests.spec_data import ALERTMANAGER_SAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = Path(sys.executable).parent / "cloud-agent"
#: Every process the gateway starts inherits this variable: how survivors are found.
MARK = "CA_TEST_SERVE_MARK"
STARTUP_SECONDS = 180.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    state: Path
    log: Path
    mark: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=120)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:g} s")


@pytest.fixture
def served(tmp_path: Path, config_dir: Path) -> Iterator[Served]:
    mark = uuid.uuid4().hex
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # no profile naming a server
        "CLOUD_AGENT_STATE_DIR": str(tmp_path / "state"),
        "CLOUD_AGENT_CONFIG_DIR": str(config_dir),
        "CLOUD_AGENT_TOKENS": TOKENS,
        "CLOUD_AGENT_CYCLE_START": "in-process",
        "CLOUD_AGENT_DISPATCH": "in-process",
        MARK: mark,
    })  # fmt: skip
    env.pop("CLOUD_AGENT_GATEWAY_RUN_AS", None)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    serving = Served(process, f"http://127.0.0.1:{port}", tmp_path / "state", log, mark)
    try:
        _wait(lambda: _answers(serving.url) or process.poll() is not None, STARTUP_SECONDS, "serve answering")
        assert process.poll() is None, serving.output()
        yield serving
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in marked_processes(mark):  # never leave one behind, even when the test failed
            os.kill(pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- finding processes ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, str, int] | None:
    """``(parent pid, state, start time)`` of a process, ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` by its parent chain: ``{pid: start time}``."""
    parents: dict[int, int] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], starts[int(entry.name)] = stat[0], stat[2]
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = starts[pid]
                frontier.append(pid)
    return found


def marked_processes(mark: str) -> set[int]:
    """Living processes whose environment carries the gateway's mark (its children inherit it)."""
    found = set()
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if needle in environment.split(b"\0") and stat is not None and stat[1] != "Z":
            found.add(int(entry.name))
    return found


def survivors(served: Served, known: dict[int, int]) -> set[int]:
    alive = {pid for pid, start in known.items() if (stat := _stat(pid)) is not None and stat[2] == start}
    return {pid for pid in alive | marked_processes(served.mark) if (_stat(pid) or (0, "Z", 0))[1] != "Z"}


def stop(served: Served, how: signal.Signals) -> dict[int, int]:
    """Send ``how``; wait for the gateway to exit; what ran below it just before (its Prefect server among them)."""
    below = descendants(served.process.pid)
    commands = [_command(pid) for pid in below]
    assert any("prefect server start" in command for command in commands), commands
    served.process.send_signal(how)
    served.process.wait(timeout=90)
    return below


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# -- the tests ----------------------------------------------------------------------------------------


def _alert() -> tuple[dict[str, Any], str]:
    payload = json.loads(ALERTMANAGER_SAMPLE.read_text())
    payload["groupKey"] = f"serve-test-{uuid.uuid4().hex}"
    return payload, parse_alert_group(payload).group_tag


def _local_api(served: Served) -> str | None:
    path = served.state / "prefect" / "api-url"
    return path.read_text().strip() if path.exists() else None


def _flow_runs(api: str, tag: str) -> list[dict[str, Any]]:
    try:
        answer = httpx.post(f"{api}/flow_runs/filter", json={"flow_runs": {"tags": {"all_": [tag]}}}, timeout=10)
    except httpx.HTTPError:
        return []
    return answer.json() if answer.status_code == 200 else []


def test_a_task_runs_at_once_an_alert_runs_its_cycle_and_sigterm_leaves_nothing_behind(served: Served) -> None:
    with served.http() as http:
        started = time.perf_counter()
        first = http.post("/api/v1/tasks", json={"type": "shell", "command": "echo first"})
        first_seconds = time.perf_counter() - started
        assert first.status_code == 200 and first.json()["result"]["output"] == "first\n", first.text
        # No Prefect server started for a task: the gateway has no other process to its name.
        assert marked_processes(served.mark) == {served.process.pid}
        print(f"\nfirst task through a fresh `cloud-agent serve`: {first_seconds * 1000:.0f} ms")

        payload, tag = _alert()
        accepted = http.post("/api/v1/alerts", json=payload)
        assert accepted.status_code == 202 and accepted.json()["status"] == "accepted", accepted.text
        # The webhook answered before the server was up; a task is not held up meanwhile.
        second = http.post("/api/v1/tasks", json={"type": "shell", "command": "echo second"})
        assert second.json()["status"] == "succeeded"

    api = _wait(lambda: _local_api(served), 30, "the local Prefect server's URL")
    runs = _wait(
        lambda: [r for r in _flow_runs(api, tag) if r["state"] and r["state"]["type"] in ("COMPLETED", "FAILED")],
        300, "the alert's cycle ending", poll=1.0,
    )  # fmt: skip
    assert runs[0]["state"]["type"] == "COMPLETED", runs[0]["state"]
    key = f"rca-{runs[0]['id'][:8]}-report"
    [report] = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}, timeout=10).json()
    assert "**Outcome:**" in report["data"] and "In progress" not in report["data"]

    below = stop(served, signal.SIGTERM)

    _wait(lambda: not survivors(served, below), 30, f"processes of the gateway ending: {survivors(served, below)}")
    output = served.output()
    assert "Traceback" not in output and "database is locked" not in output, output[-3000:]
    assert not (served.state / "prefect" / "api-url").exists()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_an_interrupted_or_killed_gateway_takes_its_prefect_server_with_it(served: Served, how: signal.Signals) -> None:
    payload, _ = _alert()
    with served.http() as http:
        assert http.post("/api/v1/alerts", json=payload).status_code == 202
    api = _wait(lambda: _local_api(served), 30, "the local Prefect server's URL")
    _wait(lambda: _answers_health(api), STARTUP_SECONDS, "the local Prefect server answering", poll=0.5)
    assert len(marked_processes(served.mark)) >= 2  # the gateway and its Prefect server

    below = stop(served, how)

    _wait(lambda: not survivors(served, below), 60, f"processes of the gateway ending: {survivors(served, below)}")
    if how is signal.SIGINT:
        assert "Traceback" not in served.output(), served.output()[-3000:]


def _answers_health(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
