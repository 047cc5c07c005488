"""The api executor connects only to addresses it checked: one resolution per request, every
address checked (IPv6 forms that carry an IPv4 address included), the connection made to a
checked address with the name kept in ``Host`` and in TLS, no proxy from the environment, and
every redirect hop checked the same way.

Names are mapped to addresses by replacing the one resolver (``executors._policy.http.resolve_host``);
``*.test`` names exist nowhere else, so a request that arrives proves the transport connected to
the address it was given, not to one the HTTP library looked up itself.
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from executors import CloudAgent, EnvironmentCatalog, PermissionDenied, TaskStatus, open_audit_log
from executors._http import PinnedTransport
from executors._policy import Assessment
from executors._policy import http as http_policy
from tests.environments import LOCAL_CONNECTIONS, write_environment

pytestmark = pytest.mark.integration

METADATA = ipaddress.ip_address("169.254.169.254")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path.removeprefix("/to/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str]] = []
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a refused TLS handshake is expected in one test


def _serving(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def web() -> Iterator[_Server]:
    yield from _serving(_Server())


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """``{name: [addresses]}`` the resolver answers from; counts its calls in ``hosts["calls"]``."""
    table: dict[str, list[Any]] = {"calls": []}
    real = http_policy.resolve_host

    def resolve(host: str) -> list[Any]:
        table["calls"].append(host)
        if host in table:
            return [ipaddress.ip_address(a) if isinstance(a, str) else a for a in table[host]]
        if host.endswith(".test"):
            raise OSError(f"{host}: no such name")
        return real(host)

    monkeypatch.setattr(http_policy, "resolve_host", resolve)
    return table


@pytest.fixture
def web_agent(config_dir: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudAgent]:
    # A proxy in the environment that would swallow every request if it were used.
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    policy = {"http_deny_hosts": ["10.0.0.0/8"]}
    write_environment(config_dir, "web", agents=["agent-web-001"], policy=policy, connections=LOCAL_CONNECTIONS)
    catalog = EnvironmentCatalog.load(config_dir)
    with CloudAgent(catalog, open_audit_log(f"sqlite:///{state_dir / 'web.sqlite3'}")) as running:
        yield running


def _get(agent: CloudAgent, url: str, **params: Any) -> Any:
    return agent.run({"agent_id": "agent-web-001", "type": "api", "params": {"url": url, **params}})


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(
    web_agent: CloudAgent, web: _Server, hosts: dict[str, list[Any]]
) -> None:
    hosts["service.test"] = ["127.0.0.1"]

    result = _get(web_agent, f"http://service.test:{web.port}/health")

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.data["body"] == f"host=service.test:{web.port}"
    assert result.data["url"] == f"http://service.test:{web.port}/health"
    assert web.requests == [("/health", f"service.test:{web.port}")]


def test_one_denied_address_among_several_refuses_the_request(
    web_agent: CloudAgent, web: _Server, hosts: dict[str, list[Any]]
) -> None:
    hosts["mixed.test"] = ["127.0.0.1", "::ffff:169.254.169.254"]

    result = _get(web_agent, f"http://mixed.test:{web.port}/health")

    assert result.status in (TaskStatus.FAILED, TaskStatus.DENIED)
    assert result.error is not None and "[rule http.metadata-endpoint]" in result.error.message
    assert "169.254.169.254" in result.error.message
    assert web.requests == []


def test_a_name_that_changes_its_answer_is_checked_where_it_is_used(
    web_agent: CloudAgent, web: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: harmless while the policy looks, the metadata service when connecting.
    answers = iter([["127.0.0.1"], ["64:ff9b::a9fe:a9fe"]])
    calls: list[str] = []

    def rebinding(host: str) -> list[Any]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    monkeypatch.setattr(http_policy, "resolve_host", rebinding)
    result = _get(web_agent, f"http://rebind.test:{web.port}/health")

    assert calls == ["rebind.test", "rebind.test"], "once by the policy, once by the transport"
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "forbidden"
    assert "64:ff9b::a9fe:a9fe, which carries 169.254.169.254" in result.error.message
    assert web.requests == []


def test_a_redirect_to_a_name_of_a_denied_address_is_not_followed(
    web_agent: CloudAgent, web: _Server, hosts: dict[str, list[Any]]
) -> None:
    hosts["service.test"] = ["127.0.0.1"]
    hosts["internal.test"] = ["::ffff:10.1.2.3"]
    hosts["imds.test"] = ["2002:a9fe:a9fe::1"]
    start = f"http://service.test:{web.port}/to"

    to_internal = _get(web_agent, f"{start}/internal.test:{web.port}/secret", follow_redirects=True)
    to_imds = _get(web_agent, f"{start}/imds.test/latest/meta-data/", follow_redirects=True)
    to_literal = _get(web_agent, f"{start}/[::169.254.169.254]/latest/", follow_redirects=True)
    to_allowed = _get(web_agent, f"{start}/service.test:{web.port}/health", follow_redirects=True)

    assert to_internal.error is not None and "[rule http.denied-host]" in to_internal.error.message
    assert to_imds.error is not None and "[rule http.metadata-endpoint]" in to_imds.error.message
    assert to_literal.error is not None and "[rule http.metadata-endpoint]" in to_literal.error.message
    assert to_allowed.status is TaskStatus.SUCCEEDED, to_allowed.error
    assert [path for path, _ in web.requests].count("/secret") == 0
    assert ("/health", f"service.test:{web.port}") in web.requests


def test_proxy_variables_are_ignored(web_agent: CloudAgent, web: _Server) -> None:
    # web_agent sets HTTP_PROXY and friends to a closed port: a proxied request would fail.
    result = _get(web_agent, f"http://127.0.0.1:{web.port}/health")

    assert result.status is TaskStatus.SUCCEEDED, result.error


def test_an_unresolvable_name_is_unreachable(web_agent: CloudAgent, hosts: dict[str, list[Any]]) -> None:
    result = _get(web_agent, "http://nowhere.test/health")

    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.code == "unreachable"
    assert "cannot resolve nowhere.test" in result.error.message


# -- TLS: the certificate is checked for the name, not the address ---------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for ``service.test`` it signed (openssl, as in Debian)."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=cloud-agent test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=service.test"
    )
    (folder / "leaf.ext").write_text("subjectAltName=DNS:service.test\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
    )  # fmt: skip
    return folder


@pytest.fixture
def tls_web(certificates: Path) -> Iterator[_Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "leaf.pem", certificates / "leaf.key")
    yield from _serving(_Server(context))


def _client(certificates: Path) -> httpx.Client:
    verify = ssl.create_default_context(cafile=str(certificates / "ca.pem"))
    return httpx.Client(transport=PinnedTransport(verify=verify), trust_env=False)


def test_tls_is_verified_for_the_name_while_connecting_to_the_address(
    tls_web: _Server, certificates: Path, hosts: dict[str, list[Any]]
) -> None:
    hosts["service.test"] = ["127.0.0.1"]
    hosts["other.test"] = ["127.0.0.1"]
    with _client(certificates) as client:
        response = client.get(f"https://service.test:{tls_web.port}/health")
        with pytest.raises(httpx.ConnectError, match=r"certificate verify failed|Hostname mismatch"):
            client.get(f"https://other.test:{tls_web.port}/health")

    assert response.status_code == 200 and response.text == f"host=service.test:{tls_web.port}"
    assert str(response.url) == f"https://service.test:{tls_web.port}/health"


def test_the_transport_refuses_before_connecting_unless_the_rule_is_lifted(
    web: _Server, hosts: dict[str, list[Any]]
) -> None:
    hosts["service.test"] = ["127.0.0.1"]
    url = f"http://service.test:{web.port}/health"
    strict = PinnedTransport(deny_hosts=["127.0.0.0/8"])
    lifted = PinnedTransport(deny_hosts=["127.0.0.0/8"], lifted=["http.denied-host"])

    with httpx.Client(transport=strict, trust_env=False) as client, pytest.raises(PermissionDenied):
        client.get(url)
    assert web.requests == []
    with httpx.Client(transport=lifted, trust_env=False) as client:
        assert client.get(url).status_code == 200
    assert web.requests == [("/health", f"service.test:{web.port}")]


# -- the address rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:169.254.169.254", "169.254.169.254"),  # IPv4-mapped
        ("::169.254.169.254", "169.254.169.254"),  # IPv4-compatible (deprecated, still routed by some)
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 well-known prefix
        ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254"),  # Teredo (client obfuscated)
        ("::1", None),
        ("::", None),
        ("2001:db8::1", None),
    ],
)
def test_ipv6_forms_that_carry_an_ipv4_address(address: str, carried: str | None) -> None:
    found = http_policy.embedded_ipv4(ipaddress.ip_address(address))  # type: ignore[arg-type]

    assert (str(found) if found else None) == carried


@pytest.mark.parametrize(
    ("addresses", "rule"),
    [
        (["127.0.0.1"], None),
        (["::1"], None),
        (["169.254.169.254"], "http.metadata-endpoint"),
        (["fd00:ec2::254"], "http.metadata-endpoint"),
        (["127.0.0.1", "64:ff9b::a9fe:a9fe"], "http.metadata-endpoint"),
        (["10.9.8.7"], "http.denied-host"),
        (["::ffff:10.9.8.7"], "http.denied-host"),
        (["2002:a09:807::"], "http.denied-host"),
    ],
)
def test_every_address_is_checked_with_the_environment_rules(addresses: list[str], rule: str | None) -> None:
    assessment = Assessment()
    parsed = [ipaddress.ip_address(a) for a in addresses]

    http_policy.check_addresses("host.test", parsed, assessment, deny_hosts=["10.0.0.0/8"])

    assert [d.rule for d in assessment.denials] == ([rule] if rule else [])


def test_allow_hosts_lift_an_address() -> None:
    assessment = Assessment()
    http_policy.check_addresses(
        "imds.test", [METADATA], assessment, allow_hosts=["169.254.169.254"], deny_hosts=["169.254.0.0/16"]
    )
    assert assessment.denials == []
