"""Risk of an HTTP request, and the guard against reaching cloud metadata endpoints.

An agent inside a cloud network can read instance credentials from the metadata service
(169.254.169.254 and friends). A task must not be able to, whatever spelling of the address it
uses (decimal ``2852039166``, hex, octal, a DNS name that resolves there, an IPv6 address that
carries the IPv4 one: IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``).

Every address a name resolves to is checked (``check_addresses``), and the api executor then
connects to one of those very addresses (``executors._http``), so a name that resolves elsewhere
the second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urlsplit

from contract import RiskClass
from executors._policy._assessment import Assessment

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
#: NAT64 prefixes: the well-known one and the local-use range (RFC 6052, RFC 8215).
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
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
    check_addresses(
        host, _addresses_of(host, resolve=resolve), assessment, allow_hosts=allow_hosts, deny_hosts=deny_hosts
    )


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve_host(host: str) -> list[Address]:
    """Every address ``host`` resolves to (a literal address is its own); ``OSError`` if none.

    The one resolver of the policy and the api executor, so both see the same answer (and tests
    can map names to addresses by replacing it).
    """
    literal = _literal_address(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    addresses: list[Address] = []
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        except ValueError:
            continue
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    return addresses


def check_addresses(
    host: str,
    addresses: Sequence[Address],
    assessment: Assessment,
    *,
    allow_hosts: Iterable[str] = (),
    deny_hosts: Iterable[str] = (),
) -> None:
    """Record a denial if any address ``host`` resolves to may not be reached.

    Each address is judged with the IPv4 address it carries, if it carries one: an environment
    that denies ``10.0.0.0/8`` also denies ``::ffff:10.1.2.3`` and ``64:ff9b::a01:203``.
    """
    allowed = {h.lower() for h in allow_hosts}
    networks = [_network(pattern) for pattern in deny_hosts if "/" in pattern]
    for address in addresses:
        forms = [address, *([embedded] if (embedded := embedded_ipv4(address)) else [])]
        if any(str(form) in allowed for form in forms):
            continue
        shown = f"{host} is (or resolves to) {address}" + (f", which carries {forms[1]}," if len(forms) > 1 else "")
        for form in forms:
            if any(network is not None and form.version == network.version and form in network for network in networks):
                assessment.deny(RULE_DENIED_HOST, f"{shown} in a network denied in this environment")
                return
            if _is_metadata_address(form):
                assessment.deny(RULE_METADATA, f"{shown} a cloud metadata / link-local address")
                return


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for or tunnels to, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return ipaddress.IPv4Address(int(address.teredo[1]))  # the client, the one packets end at
    packed = address.packed
    if any(address in network for network in NAT64_NETWORKS) or (
        packed[:12] == bytes(12) and int.from_bytes(packed[12:], "big") > 1  # IPv4-compatible, not :: or ::1
    ):
        return ipaddress.IPv4Address(packed[12:])
    return None


def _network(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return None


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


def _addresses_of(host: str, *, resolve: bool) -> list[Address]:
    literal = _literal_address(host)
    if literal is not None:
        return [literal]
    if not resolve:
        return []
    try:
        return resolve_host(host)
    except (OSError, UnicodeError):
        return []  # unresolvable: the request itself will fail with a clear "unreachable"


def _is_metadata_address(address: Address) -> bool:
    embedded = embedded_ipv4(address)
    if embedded is not None:
        address = embedded
    return any(address in network for network in METADATA_NETWORKS if address.version == network.version)
