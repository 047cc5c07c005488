"""A remote run seen ended before its last log batch reached the server: the result's output
fills in the lines the log had not brought, and nothing else."""

from __future__ import annotations

import asyncio

from executors import TaskResult, TaskSpec, TaskStatus
from gateway.dispatch._common import DispatchItem
from gateway.dispatch.work_pool import _Watch


def _watch(received: list[tuple[str, str]]) -> _Watch:
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()
    finally:
        loop.close()
    item = DispatchItem("t-1", TaskSpec(type="shell", command="true"), "local", "tester", max_timeout=5)
    return _Watch(item, lambda stream, line: received.append((stream, line)), future, pickup_deadline=0.0)


def _result(output: str, stderr: str = "", **fields: object) -> TaskResult:
    return TaskResult(type="shell", status=TaskStatus.SUCCEEDED, output=output, stderr=stderr, **fields)


def test_the_lines_the_log_had_not_brought_come_from_the_result_in_order() -> None:
    received: list[tuple[str, str]] = []
    watch = _watch(received)
    watch.deliver("stdout", "one")
    watch.deliver_rest_of(_result("one\ntwo\nthree\n", "warn\n"))
    assert received == [("stdout", "one"), ("stdout", "two"), ("stdout", "three"), ("stderr", "warn")]


def test_a_result_that_does_not_continue_the_log_adds_nothing() -> None:
    received: list[tuple[str, str]] = []
    watch = _watch(received)
    watch.deliver("stdout", "masked ***")
    watch.deliver_rest_of(_result("masked secret\nmore\n"))
    watch.deliver_rest_of(_result("masked ***\nmore\n", truncated=True))
    assert received == [("stdout", "masked ***")]


def test_a_complete_log_gets_no_repeats() -> None:
    received: list[tuple[str, str]] = []
    watch = _watch(received)
    for line in ("a", "b"):
        watch.deliver("stdout", line)
    watch.deliver_rest_of(_result("a\nb"))
    assert received == [("stdout", "a"), ("stdout", "b")]
