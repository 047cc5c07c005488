"""A local Prefect server for the demo: the flows run against it and its UI shows them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.local_prefect import LocalPrefectServer


@contextmanager
def local_prefect_server(home: Path) -> Iterator[str]:
    """Start ``prefect server start`` on a free local port in ``home``; yield its API URL; stop it after.

    One server process (rather than Prefect's temporary one, which has no UI) because the demo
    talks to it from two threads — the cycle and the stand-in approver — and because a person can
    open its UI while the demo runs. The gateway's own local server is the same machinery.
    """
    with LocalPrefectServer(home) as server:
        assert server.api_url is not None
        yield server.api_url
