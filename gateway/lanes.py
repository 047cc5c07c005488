"""Per-agent concurrency: at most N tasks of an agent run at once, a bounded number wait.

The spec warns that many concurrent tasks hurt an agent. Each agent gets a lane whose width is
its environment's ``limits.max_concurrent_tasks_per_agent``; tasks beyond it wait in order, up to
``queue_per_agent`` of them, and a task that would wait beyond that is refused (429) before it is
recorded. Lanes live on the event loop: admission is synchronous, so it cannot race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from gateway.errors import QueueFull


class _Lane:
    def __init__(self, width: int):
        self.width = width
        self.slots = asyncio.Semaphore(width)
        self.admitted = 0
        self.running = 0


class Ticket:
    """A place in an agent's lane: ``async with ticket:`` waits for a slot and runs in it."""

    def __init__(self, lane: _Lane):
        self._lane = lane
        self._released = False
        self._holding = False

    async def __aenter__(self) -> Ticket:
        await self._lane.slots.acquire()
        self._holding = True
        self._lane.running += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        """Give the place back (also when the task never got to run)."""
        if self._released:
            return
        self._released = True
        self._lane.admitted -= 1
        if self._holding:
            self._lane.running -= 1
            self._lane.slots.release()


class AgentLanes:
    """One lane per agent, created on first use.

    Args:
        width_of: the number of tasks an agent may run at once.
        queue_per_agent: how many more may wait.
    """

    def __init__(self, width_of: Callable[[str], int], queue_per_agent: int):
        self._width_of = width_of
        self.queue_per_agent = queue_per_agent
        self._lanes: dict[str, _Lane] = {}

    def admit(self, agent_id: str) -> Ticket:
        """A ticket in ``agent_id``'s lane, or ``QueueFull`` when its queue is full."""
        lane = self._lanes.get(agent_id)
        if lane is None:
            lane = self._lanes[agent_id] = _Lane(self._width_of(agent_id))
        if lane.admitted >= lane.width + self.queue_per_agent:
            raise QueueFull(
                f"agent {agent_id!r} has {lane.width} tasks running and {self.queue_per_agent} waiting; "
                "try again shortly",
                retry_after=1,
            )
        lane.admitted += 1
        return Ticket(lane)

    def load(self, agent_id: str) -> tuple[int, int]:
        """``(running, waiting)`` for ``agent_id``."""
        lane = self._lanes.get(agent_id)
        if lane is None:
            return 0, 0
        return lane.running, lane.admitted - lane.running
