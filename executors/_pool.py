"""A small pool of idle connections, so a task does not pay for a new TCP and auth handshake."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")
T = TypeVar("T")


class PerConnection(Generic[T]):
    """One client (or pool) per named connection: made on first use, closed all together.

    Every executor keeps its drivers' clients this way, so connections and pools are reused from
    task to task and released when the executor closes.
    """

    def __init__(self, close: Callable[[T], None]):
        self._close = close
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, name: str, make: Callable[[], T]) -> T:
        with self._lock:
            item = self._items.get(name)
            if item is None:
                item = make()
                self._items[name] = item
            return item

    def close(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for item in items:
            with suppress(Exception):  # a client that cannot close cleanly is dropped all the same
                self._close(item)


@dataclass
class Lease(Generic[C]):
    connection: C
    reusable: bool = True

    def discard(self) -> None:
        """Do not return this connection to the pool (it is broken or in an unknown state)."""
        self.reusable = False


class ConnectionPool(Generic[C]):
    """Last-in-first-out idle connections; at most ``max_idle`` kept, any number lent out."""

    def __init__(self, connect: Callable[[], C], close: Callable[[C], None], max_idle: int = 4):
        self._connect = connect
        self._close = close
        self._max_idle = max_idle
        self._idle: list[C] = []
        self._lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[Lease[C]]:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        lease = Lease(connection if connection is not None else self._connect())
        try:
            yield lease
        except BaseException:
            lease.discard()
            raise
        finally:
            self._give_back(lease)

    def _give_back(self, lease: Lease[C]) -> None:
        if lease.reusable:
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append(lease.connection)
                    return
        self._quietly_close(lease.connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            self._quietly_close(connection)

    def _quietly_close(self, connection: C) -> None:
        with suppress(Exception):  # closing a dead connection may fail; nothing to do about it
            self._close(connection)
