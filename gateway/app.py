"""The task API application: ``create_app()`` wires settings, service, routers and middleware.

A router is a module with a ``router`` (``fastapi.APIRouter``); adding one to ``ROUTERS`` is all it
takes to serve it (its handlers get the service as ``request.app.state.service`` and a caller with
``Depends(gateway.auth.require(Role.OPERATOR))``).

    uvicorn "gateway.app:create_app" --factory      # or: cloud-agent serve --port 8080
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route

from executors import executor_types
from gateway.auth import TokenRegistry
from gateway.dispatch import Dispatcher
from gateway.errors import GatewayError, describe_problems, field_problems
from gateway.local_prefect import LocalPrefectServer
from gateway.middleware import ERROR_SCOPE_KEY, BodySizeLimit, RequestAudit
from gateway.settings import GatewaySettings
from gateway.task_service import TaskService

log = structlog.get_logger("cloud_agent.gateway")

#: Modules whose ``router`` the app serves, in order.
ROUTERS: tuple[str, ...] = (
    "gateway.tasks_api",
    "gateway.logs_ws",
    "gateway.alerts_api",
    "gateway.incidents_api",
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


def create_app(
    settings: GatewaySettings | None = None,
    *,
    service: TaskService | None = None,
    dispatcher: Dispatcher | None = None,
) -> FastAPI:
    """The FastAPI app of the task API.

    Args:
        settings: defaults to ``GatewaySettings()`` (``CLOUD_AGENT_*`` environment variables).
        service: a ready ``TaskService`` (tests); built from ``settings`` otherwise.
        dispatcher: how tasks run (tests and benchmarks); ``CLOUD_AGENT_DISPATCH`` otherwise.
    """
    from flows.intake import stop_cycles
    from flows.prefect_internals import configured_api_url
    from flows.runs import settle_orphaned_runs

    api_url = configured_api_url()
    settings = (settings or GatewaySettings()).for_prefect_api(api_url)
    tokens = TokenRegistry.from_settings(settings)
    service = service or TaskService.from_settings(settings, dispatcher=dispatcher)
    # Without a Prefect API, tasks run on the engine and the first alert starts this server for
    # the cycles (never Prefect's temporary one: see gateway.local_prefect).
    local_prefect = (
        None
        if api_url is not None
        else LocalPrefectServer(
            settings.local_prefect_home, port=settings.local_prefect_port, on_ready=settle_orphaned_runs
        )
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        if local_prefect is not None:
            log.info(
                "no_prefect_api",
                tasks="run on the engine, at once",
                cycles=f"the first alert starts a local Prefect server in {settings.local_prefect_home}",
            )
        try:
            yield
        finally:
            try:
                await service.stop()
            finally:
                if local_prefect is not None:
                    if local_prefect.started:
                        stop_cycles()
                    await asyncio.to_thread(local_prefect.stop)

    app = FastAPI(
        title="Cloud Agent task API",
        version="1.0.0",
        description=(
            "Run diagnostic tasks (shell, SQL, Redis, HTTP, Elasticsearch, Kubernetes, ...) on the agents of "
            "each environment, safely: policy, approvals, limits and an audit log. Live output on the "
            "`/ws` WebSocket (`task.subscribe_logs` → `task.log`)."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.service = service
    app.state.local_prefect = local_prefect
    for module in ROUTERS:
        app.include_router(importlib.import_module(module).router)
    _install_error_handlers(app)
    _with_known_types(app)
    # Added last = outermost: the audit sees every answer, the 413 ones included.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestAudit, audit=service.audit)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    def answer(
        request: Request,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        request.scope[ERROR_SCOPE_KEY] = code
        body = {"error": {"code": code, "message": message, "fields": fields or []}}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return answer(request, exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = field_problems(exc.errors())
        code = "invalid_task" if request.url.path == "/api/v1/tasks" and request.method == "POST" else "invalid_request"
        return answer(request, 422, code, describe_problems(problems) or "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI says only "There was an error parsing the body" (a body that is not UTF-8,
            # JSON nested past the parser's depth, a number past Python's digit limit): say which.
            cause = exc.__cause__
            message = f"the request body cannot be read as JSON: {type(cause).__name__}: {str(cause)[:200]}"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only.
            headers["Allow"] = ", ".join(_methods_of(request.app, request.url.path))
        return answer(request, exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 500, "internal_error", f"an internal error occurred ({type(exc).__name__})")


def _methods_of(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in _http_routes(app.routes):
        if route.path_regex.match(path):
            methods |= route.methods or set()
    return sorted(methods)


def _http_routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    """Every HTTP route (the API's and the docs'), inside included routers too: FastAPI keeps those
    as routes of their own (``app.routes`` alone held none of the API's; a 405 had an empty ``Allow``)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _http_routes(included.routes)


def _with_known_types(app: FastAPI) -> None:
    """Document ``type`` as the task types this installation runs (and what else validators check)."""
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain_openapi()
            properties = schema.get("components", {}).get("schemas", {}).get("TaskRequest", {}).get("properties", {})
            if "type" in properties:
                properties["type"]["enum"] = list(executor_types())
            if "command" in properties:
                # TaskSpec refuses NUL bytes in a validator, which pydantic cannot describe.
                properties["command"]["pattern"] = "^[^\\x00]*$"
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


#: The sans-I/O websockets protocol: uvicorn's default one uses the deprecated ``websockets.legacy``.
_WS_PROTOCOL = "websockets-sansio"


def serve(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the task API with uvicorn until interrupted (SIGTERM or Ctrl-C: a clean shutdown that
    stops what the gateway started, the local Prefect server included).

    Raises:
        ConfigurationError: the shared result storage is set but cannot be used from this host.
    """
    import uvicorn

    # The approval instructions a cycle prints name this server, unless told another address.
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    os.environ.setdefault("CLOUD_AGENT_URL", f"http://{reachable}:{port}")
    settings = GatewaySettings()
    if settings.dispatch == "work-pool":
        # Checked again at start-up by the dispatcher; here a store this host cannot use stops
        # the gateway with one line rather than inside uvicorn's start-up traceback.
        from flows.result_storage import ensure_shared_storage

        ensure_shared_storage(settings.result_storage)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=False, ws=_WS_PROTOCOL)


@contextmanager
def serving(app: FastAPI, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on a free local port from a thread until the block ends; yields its base URL.

    For tests, benchmarks and embedding the API in another program.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws=_WS_PROTOCOL, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="task-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the task API did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
