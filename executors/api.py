"""``api``: one HTTP request through httpx, as the spec writes it::

    {"type": "api", "params": {"method": "GET", "url": "http://localhost:8080/health",
                               "headers": {"Authorization": "Bearer xxx"}}}

``params`` may also carry ``body`` (sent as JSON unless it is a string), ``query``, ``expect_status``
(the statuses that count as success; default: below 400), ``follow_redirects`` (default false; each
hop is checked like the first request) and ``connection``: a named connection gives a ``base_url``
for relative URLs, default ``headers`` (where tokens live, from the environment) and ``verify``.
The response body is read up to the output limit and the rest counted; JSON bodies are returned
decoded.

Where a request goes is checked twice: the URL (scheme, host names the environment denies,
metadata host names) before it is sent, and every address its host resolves to by the transport
(``executors._http.PinnedTransport``), which then connects to one of those checked addresses and
never through a proxy from the environment.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract import ErrorInfo, TaskResult, TaskSpec, TaskStatus
from executors._base import Executor, RunContext
from executors._errors import BackendUnavailable, InvalidTask, PermissionDenied, TaskTimedOut, UnknownConnection
from executors._http import PinnedTransport
from executors._policy import Assessment
from executors._policy.http import check_url
from executors._pool import PerConnection
from executors._redaction import MASK

_SENSITIVE_RESPONSE_HEADERS = frozenset({"set-cookie", "authorization", "proxy-authorization", "www-authenticate"})
_STATUS_ERRORS = {401: "auth_failed", 403: "forbidden", 404: "not_found"}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\r\n\x00]")


class ApiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(default="GET", pattern=r"^[A-Za-z]+$", max_length=16)
    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    body: Any = None
    expect_status: list[int] | None = None
    follow_redirects: bool = False
    connection: str | None = None

    @field_validator("headers")
    @classmethod
    def _header_syntax(cls, headers: dict[str, str]) -> dict[str, str]:
        # Refused here with the header's name: at send time the HTTP library's refusal looked like
        # an unreachable server (and a read was retried for it).
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if _HEADER_VALUE_FORBIDDEN.search(value):
                raise ValueError(f"the value of header {name!r} contains a line break or a NUL byte")
        return headers


class ApiExecutor(Executor):
    type = "api"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._clients: PerConnection[httpx.Client] = PerConnection(httpx.Client.close)

    def validate(self, spec: TaskSpec) -> None:
        _api_params(spec)

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        params = _api_params(spec)
        client = self._client(params.connection)
        request_kwargs: dict[str, Any] = {"headers": params.headers, "params": params.query or None}
        if params.body is not None:
            if isinstance(params.body, str):
                request_kwargs["content"] = params.body.encode()
            else:
                request_kwargs["json"] = params.body
        try:
            request = client.build_request(params.method.upper(), params.url, timeout=_timeout(ctx), **request_kwargs)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise InvalidTask(f"cannot build the request for {params.url!r}: {exc}") from exc
        self._guard(request.url)
        try:
            response = client.send(request, stream=True, follow_redirects=False)
            hops = 0
            while params.follow_redirects and response.is_redirect and response.next_request and hops < 10:
                response.close()
                self._guard(response.next_request.url)
                response = client.send(response.next_request, stream=True, follow_redirects=False)
                hops += 1
            body, total, cut = _read_body(response, ctx)
        except httpx.TimeoutException as exc:
            raise TaskTimedOut(
                f"{params.method.upper()} {request.url} did not answer within {ctx.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach {request.url.host}:{request.url.port or ''}: {exc}") from exc

        data = {
            "status_code": response.status_code,
            "reason": response.reason_phrase,
            "url": str(response.url),
            "headers": {
                name: (MASK if name.lower() in _SENSITIVE_RESPONSE_HEADERS else value)
                for name, value in response.headers.items()
            },
            "body": _decode_body(body, response.headers.get("content-type", "")),
            "elapsed_ms": round(response.elapsed.total_seconds() * 1000, 3),
        }
        result = ctx.result(data=data, truncated=cut, original_bytes=total if cut else None)
        expected = params.expect_status
        ok = response.status_code in expected if expected else response.status_code < 400
        if not ok:
            result.status = TaskStatus.FAILED
            code = _STATUS_ERRORS.get(response.status_code, "http_error")
            result.error = ErrorInfo(
                code=code, message=f"HTTP {response.status_code} {response.reason_phrase} from {response.url}"
            )
        return result

    def _guard(self, url: httpx.URL) -> None:
        """The URL's own checks; its addresses are the transport's (resolved once, there)."""
        assessment = Assessment()
        config = self.environment.policy
        check_url(
            str(url), assessment, allow_hosts=config.http_allow_hosts, deny_hosts=config.http_deny_hosts, resolve=False
        )
        lifted = set(config.lift)
        for denial in assessment.denials:
            if denial.rule not in lifted:
                raise PermissionDenied(f"{denial.reason} [rule {denial.rule}]")

    def _client(self, name: str | None) -> httpx.Client:
        def make() -> httpx.Client:
            settings: dict[str, Any] = {}
            try:
                settings = dict(self.environment.connection("api", name).settings)
            except UnknownConnection:
                if name is not None:
                    raise
            policy = self.environment.policy
            transport = PinnedTransport(
                allow_hosts=policy.http_allow_hosts,
                deny_hosts=policy.http_deny_hosts,
                lifted=policy.lift,
                verify=settings.get("verify", True),
            )
            return httpx.Client(
                base_url=settings.get("base_url", ""),
                headers=settings.get("headers") or {},
                transport=transport,
                trust_env=False,  # no proxy from the environment: the connection goes where it was checked
            )

        return self._clients.get(name or "", make)

    def close(self) -> None:
        self._clients.close()


def _api_params(spec: TaskSpec) -> ApiParams:
    """The request of an api task; a bare URL in ``command`` stands for ``params.url``."""
    if "url" not in spec.params and spec.command.strip():
        spec = spec.model_copy(update={"params": {**spec.params, "url": spec.command.strip()}})
    return Executor.params(ApiParams, spec)


def _timeout(ctx: RunContext) -> httpx.Timeout:
    remaining = max(ctx.remaining(), 0.001)
    return httpx.Timeout(remaining, connect=min(remaining, 10.0))


def _read_body(response: httpx.Response, ctx: RunContext) -> tuple[bytes, int, bool]:
    """Up to the output limit of the body; the rest is read and counted, until the deadline."""
    limit = ctx.limits.max_output_bytes
    kept = bytearray()
    total = 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if len(kept) < limit:
                kept.extend(chunk[: limit - len(kept)])
            ctx.check_deadline()
    finally:
        response.close()
    return bytes(kept), total, total > len(kept)


def _decode_body(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
