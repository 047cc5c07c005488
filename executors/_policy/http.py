"""Risk of an HTTP request, and the guard against reaching cloud metadata endpoints.

An agent inside a cloud network can read instance credentials from the metadata service
(169.254.169.254 and friends). A task must not be able to, whatever spelling of the address it
uses (decimal ``2852039166``, hex, octal, IPv4-mapped IPv6, a DNS name that resolves there).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from executors._policy._assessment import Assessment
from executors._spec import RiskClass

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METADATA_HOSTNAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.0.0/16",  # link-local: AWS, GCP, Azure, OpenStack metadata; ECS task metadata
        "100.100.100.200/32",  # Alibaba Cloud
        "fe80::/10",
        "fd00:ec2::254/128",  # AWS IMDS over IPv6
    )
)
PLAIN_HOST = re.compile(r"[\w.:-]+")
RULE_METADATA = "http.metadata-endpoint"
RULE_SCHEME = "http.scheme"
RULE_DENIED_HOST = "http.denied-host"


def method_risk(method: str) -> RiskClass:
    method = method.upper()
    if method in READ_METHODS:
        return RiskClass.READ
    if method == "DELETE":
        return RiskClass.DESTRUCTIVE
    return RiskClass.WRITE


def check_url(
    url: str,
    assessment: Assessment,
    *,
    allow_hosts: Iterable[str] = (),
    deny_hosts: Iterable[str] = (),
    resolve: bool = True,
) -> None:
    """Record a denial in ``assessment`` if ``url`` may not be requested from this environment."""
    try:
        parts = urlsplit(url)
        # curl and browsers decode %-escapes in the host: %31%36%39.254.169.254 is 169.254.169.254
        host = unquote(parts.hostname or "").rstrip(".").lower()
    except ValueError:
        assessment.deny(RULE_SCHEME, f"not a valid URL: {url!r}")
        return
    if parts.scheme not in ("http", "https"):
        assessment.deny(RULE_SCHEME, f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
        return
    if not host:
        assessment.deny(RULE_SCHEME, f"URL has no host: {url!r}")
        return
    if not PLAIN_HOST.fullmatch(host):
        # e.g. curl's URL globbing, 169.254.169.{254}: the host that is contacted is not this text
        assessment.deny(RULE_SCHEME, f"{host!r} is not a plain host name or address")
        return
    allowed = {h.lower() for h in allow_hosts}
    if host in allowed:
        return
    for denied in deny_hosts:
        if _host_matches(host, denied.lower()):
            assessment.deny(RULE_DENIED_HOST, f"requests to {host} are denied in this environment")
            return
    if host in METADATA_HOSTNAMES:
        assessment.deny(RULE_METADATA, f"{host} is a cloud metadata endpoint")
        return
    for address in _addresses_of(host, resolve=resolve):
        if str(address) in allowed:
            return
        if _is_metadata_address(address):
            assessment.deny(
                RULE_METADATA,
                f"{host} is (or resolves to) {address}, a cloud metadata / link-local address",
            )
            return


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if "/" in pattern:
        try:
            network = ipaddress.ip_network(pattern, strict=False)
            literal = _literal_address(host)
            return literal is not None and literal in network
        except ValueError:
            return False
    return host == pattern


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        # inet_aton accepts the spellings browsers and curl accept too: 2852039166, 0xa9fea9fe,
        # 0251.0376.0251.0376, 169.254.43518.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _addresses_of(host: str, *, resolve: bool) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    literal = _literal_address(host)
    if literal is not None:
        return [literal]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # unresolvable: the request itself will fail with a clear "unreachable"
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return addresses


def _is_metadata_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in METADATA_NETWORKS if address.version == network.version)
