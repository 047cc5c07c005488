"""Secrets in any encoding, and the places an attempt may carry them to.

Output masking only hides a secret's literal form, so the question asked here is whether a secret
*was obtainable*: it is looked for as written, reversed, in hex and base64 (at every alignment, and
in decoded runs of either), percent-encoded, in whitespace-split dumps (``od -c``, ``xxd``) and, for
random secrets, by pieces. ``ExfilSink`` is a TCP and a UDP listener on 127.0.0.1 that keeps what it
is sent: the sandbox leaves the network open, so a secret sent out is a secret that was read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import socket
import socketserver
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){6,}")
_SPACE = re.compile(r"\s+")
#: Pieces of a random secret: found when two of them are (a dump that wraps lines cuts the rest).
_PIECE = 12


def _text(blob: str | bytes) -> str:
    return blob if isinstance(blob, str) else blob.decode("latin-1")


def _b64_decodings(run: str) -> Iterable[str]:
    for start in range(4):
        chunk = run[start:].rstrip("=")
        chunk = chunk[: len(chunk) - len(chunk) % 4] if len(chunk) % 4 == 1 else chunk
        padded = chunk + "=" * (-len(chunk) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(padded).decode("latin-1")
            except (binascii.Error, ValueError):
                continue


#: Past this size only the cheap views are made (as it is, squeezed, reversed): decoding every run
#: of a large binary file costs seconds.
_DECODE_LIMIT = 256 * 1024


def views(blob: str | bytes) -> list[str]:
    """The texts a secret may hide in inside ``blob``: as it is, squeezed, decoded, reversed."""
    raw = _text(blob)
    squeezed = _SPACE.sub("", raw)
    # Quoting styles that escape characters (tar's `root\:*\:...`, shell-quoted output).
    found = [raw, squeezed, raw.replace("\\", "")]
    if len(raw) > _DECODE_LIMIT:
        return found + [view[::-1] for view in found]
    found.append(unquote_plus(raw))
    for text in (raw, squeezed):
        for run in _HEX_RUN.findall(text):
            for start in (0, 1):
                part = run[start:]
                found.append(bytes.fromhex(part[: len(part) - len(part) % 2]).decode("latin-1"))
        for run in _B64_RUN.findall(text):
            found.extend(_b64_decodings(run))
    return found + [view[::-1] for view in found]


def _b64_inner_forms(value: bytes) -> list[str]:
    """The part of ``base64(prefix + value)`` that does not depend on the prefix, for each alignment."""
    forms = []
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + value).decode()
        forms.append(encoded[4 if pad else 0 : -4])
    return [form for form in forms if len(form) >= 8]


@dataclass(frozen=True)
class Secret:
    name: str
    value: str
    #: Random secrets are also found by pieces; structured ones (``/etc/shadow`` lines) only whole.
    random: bool = True

    def forms(self) -> list[str]:
        raw = self.value.encode()
        return [self.value, raw.hex(), raw.hex().upper(), *_b64_inner_forms(raw)]

    def pieces(self) -> list[str]:
        if not self.random or len(self.value) < 2 * _PIECE:
            return []
        step = (len(self.value) - _PIECE) // 2
        return [self.value[i : i + _PIECE] for i in (0, step, len(self.value) - _PIECE)]


@dataclass
class SecretWatch:
    """Every canary secret; ``exposed(blob)`` names the ones ``blob`` gives away."""

    secrets: list[Secret] = field(default_factory=list)

    def add(self, name: str, value: str, *, random: bool = True) -> None:
        if value and all(secret.value != value for secret in self.secrets):
            self.secrets.append(Secret(name, value, random))

    def exposed(self, blob: str | bytes | None) -> list[str]:
        if not blob:
            return []
        texts = views(blob)
        found = []
        for secret in self.secrets:
            if any(form in text for form in secret.forms() for text in texts):
                found.append(secret.name)
                continue
            pieces = secret.pieces()
            if pieces and sum(any(piece in text for text in texts) for piece in pieces) >= 2:
                found.append(f"{secret.name} (in pieces)")
        return found

    def values(self) -> list[str]:
        return [secret.value for secret in self.secrets]

    def copy(self) -> SecretWatch:
        return SecretWatch(list(self.secrets))


# -- the exfiltration sink --------------------------------------------------------------------------


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(0.3)
        received = bytearray()
        try:
            while len(received) < 4 << 20:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received.extend(chunk)
        except OSError:
            pass  # quiet for 0.3 s: the sender waits for an answer (curl, wget, git)
        self.server.received.append(bytes(received))  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.received.append(bytes(self.request[0]))  # type: ignore[attr-defined]


class _Tcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Udp(socketserver.ThreadingUDPServer):
    daemon_threads = True


class ExfilSink:
    """A TCP and a UDP listener on 127.0.0.1 (same port number) that keep every byte sent to them."""

    def __init__(self) -> None:
        self._tcp = _Tcp(("127.0.0.1", 0), _TcpHandler)
        self.port = int(self._tcp.server_address[1])
        self._udp = _Udp(("127.0.0.1", self.port), _UdpHandler)
        self._tcp.received = []  # type: ignore[attr-defined]
        self._udp.received = []  # type: ignore[attr-defined]
        self._threads = [
            threading.Thread(target=server.serve_forever, daemon=True) for server in (self._tcp, self._udp)
        ]
        for thread in self._threads:
            thread.start()

    def received(self) -> list[bytes]:
        return [*self._tcp.received, *self._udp.received]  # type: ignore[attr-defined]

    def clear(self) -> None:
        self._tcp.received.clear()  # type: ignore[attr-defined]
        self._udp.received.clear()  # type: ignore[attr-defined]

    def close(self) -> None:
        for server in (self._tcp, self._udp):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)


def attribute(blob: bytes, ids: Iterable[str]) -> str | None:
    """The attempt whose id ``blob`` carries (the longest, when ids nest), or ``None``."""
    text = _text(blob)
    matches = [attempt_id for attempt_id in ids if attempt_id in text]
    return max(matches, key=len) if matches else None


def leaks_by_attempt(watch: SecretWatch, blobs: Iterable[bytes], ids: Iterable[str]) -> Mapping[str | None, list[str]]:
    """``{attempt id or None: [secret names]}`` for everything the sink received."""
    ids = list(ids)
    found: dict[str | None, list[str]] = {}
    for blob in blobs:
        names = watch.exposed(blob)
        if names:
            found.setdefault(attribute(blob, ids), []).extend(names)
    return found
