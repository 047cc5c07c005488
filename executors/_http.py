"""An httpx transport that connects only to addresses the policy checked, for the api executor.

Checking a URL's host and then letting the HTTP library resolve it again leaves a gap: the name
can resolve to a public address for the check and to 169.254.169.254 for the connection (DNS
rebinding), and a proxy from the environment would make the connection somewhere else entirely.
So this transport, for every request (each redirect hop is a request of its own):

1. resolves the host once (``executors._policy.http.resolve_host``);
2. checks every address it resolves to with the environment's rules (``check_addresses``), and
   refuses the request if any is denied;
3. connects to one of those addresses — the request goes to ``http(s)://<address>:<port>``, with
   the ``Host`` header and, for HTTPS, the TLS server name (SNI) and certificate check still for
   the name (httpcore's ``sni_hostname`` extension).

The client that uses it must not read proxies from the environment (``trust_env=False``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import httpx

from executors._errors import PermissionDenied
from executors._policy import _assessment
from executors._policy import http as http_policy


class PinnedTransport(httpx.BaseTransport):
    """Resolve, check every address, connect to a checked one.

    Args:
        allow_hosts: the environment's ``policy.http_allow_hosts``.
        deny_hosts: its ``policy.http_deny_hosts``.
        lifted: default rules (by id) the environment lifts.
        **transport: passed to ``httpx.HTTPTransport`` (``verify``...).
    """

    def __init__(
        self,
        *,
        allow_hosts: Iterable[str] = (),
        deny_hosts: Iterable[str] = (),
        lifted: Iterable[str] = (),
        **transport: Any,
    ):
        self._allow = tuple(allow_hosts)
        self._deny = tuple(deny_hosts)
        self._lifted = frozenset(lifted)
        self._options = transport
        # One connection pool per name: httpcore keys pooled connections by (scheme, address,
        # port), so two names on one address would share a TLS connection made for the first.
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            addresses = http_policy.resolve_host(host)
        except (OSError, UnicodeError) as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
        assessment = _assessment.Assessment()
        http_policy.check_addresses(host, addresses, assessment, allow_hosts=self._allow, deny_hosts=self._deny)
        for denial in assessment.denials:
            if denial.rule not in self._lifted:
                raise PermissionDenied(f"{denial.reason} [rule {denial.rule}]")
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                pool = self._pools[host] = httpx.HTTPTransport(**self._options)
        failure: httpx.ConnectError | None = None
        for address in addresses:  # all checked; the first that accepts the connection serves
            try:
                return pool.handle_request(_to_address(request, address))
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _to_address(request: httpx.Request, address: http_policy.Address) -> httpx.Request:
    """``request`` sent to ``address``, still naming its host in ``Host`` and in TLS."""
    pinned = httpx.Request(
        request.method,
        request.url.copy_with(host=str(address)),
        headers=request.headers,  # Host: was set from the URL when the request was built
        stream=request.stream,
        extensions={**request.extensions, "sni_hostname": request.url.host},
    )
    return pinned
