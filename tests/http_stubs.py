"""Small HTTP services for tests and benchmarks, each in a thread of this process: a health
endpoint to probe, and a reflector that answers with the request it was sent (the headers a
misbehaving service would echo back, tokens included)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: What a stub answers for one GET: its status and its JSON body, from the request's handler.
Answer = Callable[[http.server.BaseHTTPRequestHandler], tuple[int, Any]]


@contextlib.contextmanager
def serve_json(answer: Answer, host: str = "127.0.0.1") -> Iterator[str]:
    """Answer every GET on ``host`` (a free port) with ``answer(request)`` as JSON; yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, payload = answer(self)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # the test's output is the test's

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="http-stub", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def health_endpoint(host: str = "127.0.0.1") -> Iterator[str]:
    """``{"status": "ok"}`` on ``/health`` (404 elsewhere); yields the endpoint's URL."""

    def answer(request: http.server.BaseHTTPRequestHandler) -> tuple[int, Any]:
        if request.path.startswith("/health"):
            return 200, {"status": "ok"}
        return 404, {"error": "not found"}

    with serve_json(answer, host) as url:
        yield f"{url}/health"


@contextlib.contextmanager
def header_reflector(host: str = "127.0.0.1") -> Iterator[str]:
    """Every GET answered with its path and headers, ``{"path": ..., "headers": {...}}``; yields the base URL."""
    with serve_json(lambda request: (200, {"path": request.path, "headers": dict(request.headers)}), host) as url:
        yield url
