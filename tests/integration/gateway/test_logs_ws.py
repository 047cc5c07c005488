"""``/ws``: each output line reaches subscribers as it is printed; late subscribers catch up."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import websocket

from tests.gateway_fixtures import Gateway, GatewayFactory
from tests.identities import OPERATOR, VIEWER
from tests.servers import wait_until

pytestmark = pytest.mark.integration

#: Prints its own clock four times, half a second apart, the first after 0.5 s.
TICKING = "for i in 1 2 3 4; do sleep 0.5; date +%s.%N; done"


class Subscriber:
    """The spec's ``websocket-client`` example, as written there, plus a record of arrival times."""

    def __init__(self, url: str, header: list[str] | None = None):
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.done = threading.Event()

        def on_message(ws: websocket.WebSocketApp, message: str) -> None:
            data = json.loads(message)
            self.messages.append((time.time(), data))
            if data["type"] == "task.status" and data["data"]["final"]:
                self.done.set()

        self.ws = websocket.WebSocketApp(url, on_message=on_message, header=header)
        self.thread = threading.Thread(target=self.ws.run_forever, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.ws.sock and self.ws.sock.connected):
            assert time.monotonic() < deadline, "the WebSocket did not connect"
            time.sleep(0.01)

    def subscribe(self, task_id: str) -> None:
        self.ws.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": task_id}}))

    def lines(self) -> list[tuple[float, dict[str, Any]]]:
        return [(at, m["data"]) for at, m in self.messages if m["type"] == "task.log"]

    def close(self) -> None:
        self.ws.close()
        self.thread.join(5)


def _submit(gateway: Gateway, command: str) -> str:
    with gateway.http(OPERATOR) as http:
        response = http.post("/api/v1/tasks", json={"type": "shell", "command": command, "sync": False, "timeout": 20})
    assert response.status_code == 202
    return str(response.json()["id"])


@pytest.fixture(params=["task-run", "flow-run"])
def prefect_gateway(request: pytest.FixtureRequest, prefect_api: str, gateway_factory: GatewayFactory) -> Gateway:
    """Tasks run in-process as Prefect task runs (the default) or ``execute-batch`` flow runs."""
    return gateway_factory(gateway_run_as=request.param, anonymous_role="viewer")


def test_each_line_arrives_before_the_next_is_printed(prefect_gateway: Gateway) -> None:
    subscriber = Subscriber(prefect_gateway.ws_url)  # anonymous, as in the spec's example
    try:
        task_id = _submit(prefect_gateway, TICKING)
        subscriber.subscribe(task_id)
        assert subscriber.done.wait(20), "no final status"
    finally:
        subscriber.close()
    lines = subscriber.lines()
    assert [data["line"].count(".") for _, data in lines] == [1, 1, 1, 1]
    delays = [arrived - float(data["line"]) for arrived, data in lines]
    # Live: each line is out before the task prints the next, half a second later (how fast,
    # bench/task_api.py measures).
    assert all(delay < 0.5 for delay in delays), f"line delays: {[round(d, 3) for d in delays]}"
    assert lines[-1][0] - lines[0][0] > 1.2  # streamed as printed, not delivered at the end
    statuses = [m["data"] for _, m in subscriber.messages if m["type"] == "task.status"]
    assert statuses[-1] == {"task_id": task_id, "status": "succeeded", "final": True, "exit_code": 0, "error": None}


def test_a_late_subscriber_first_gets_the_lines_so_far(gateway: Gateway) -> None:
    task_id = _submit(gateway, "echo one; echo two >&2; sleep 1; echo three")
    hub = gateway.app.state.service.hub
    wait_until(lambda: hub.line_count(task_id) >= 2, what="the task's first two lines", every=0.01)
    subscriber = Subscriber(gateway.ws_url, header=[f"Authorization: Bearer {VIEWER}"])
    try:
        subscriber.subscribe(task_id)
        assert subscriber.done.wait(20)
    finally:
        subscriber.close()
    lines = [(data["stream"], data["line"]) for _, data in subscriber.lines()]
    assert lines == [("stdout", "one"), ("stderr", "two"), ("stdout", "three")]
    assert [data["seq"] for _, data in subscriber.lines()] == [1, 2, 3]


def test_a_finished_task_replays_its_output_after_a_restart(gateway_factory: GatewayFactory) -> None:
    first = gateway_factory()
    with first.client() as client:
        task = client.execute_shell(None, "printf 'a\\nb\\r\\nc\\rd\\n'")
    second = gateway_factory(anonymous_role="viewer")
    subscriber = Subscriber(second.ws_url)
    try:
        subscriber.subscribe(task["id"])
        assert subscriber.done.wait(10)
    finally:
        subscriber.close()
    # The lines a live subscriber was sent: split at newlines only, a carriage return kept in its line.
    expected = [("a", True), ("b\r", True), ("c\rd", True)]
    assert [(d["line"], d["replayed"]) for _, d in subscriber.lines()] == expected


def test_bad_messages_and_unknown_tasks_get_errors(gateway: Gateway) -> None:
    connection = websocket.create_connection(gateway.ws_url, header=[f"Authorization: Bearer {VIEWER}"], timeout=5)
    try:
        replies = []
        for message in (
            "not json",
            json.dumps({"type": "task.shout", "data": {}}),
            json.dumps({"type": "task.subscribe_logs", "data": {"task_id": "task-none"}}),
            json.dumps({"type": "ping", "data": {}}),
        ):
            connection.send(message)
            replies.append(json.loads(connection.recv()))
    finally:
        connection.close()
    assert [(r["type"], r["data"].get("code")) for r in replies] == [
        ("error", "invalid_message"),
        ("error", "unknown_message_type"),
        ("error", "task_not_found"),
        ("pong", None),
    ]


def test_a_websocket_without_a_token_is_refused_unless_it_sends_one(gateway: Gateway) -> None:
    with gateway.client() as client:
        task = client.execute_shell(None, "echo secret-ish")
    connection = websocket.create_connection(gateway.ws_url, timeout=5)
    try:
        connection.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": task["id"]}}))
        refused = json.loads(connection.recv())
        connection.send(json.dumps({"type": "task.subscribe_logs", "data": {"task_id": task["id"], "token": VIEWER}}))
        replayed = json.loads(connection.recv())
    finally:
        connection.close()
    assert refused["data"]["code"] == "unauthenticated"
    assert replayed["type"] == "task.log" and replayed["data"]["line"] == "secret-ish"
