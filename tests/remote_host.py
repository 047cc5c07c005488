"""A worker host that shares no filesystem with the test process, on this machine only.

- Network: a network namespace joined to the host by a veth pair in a private /30 picked at
  random from 10.213.0.0/16 (one free in this machine's addresses). The namespace has its own
  loopback: nothing of the host (the test Prefect server, PostgreSQL...) is reachable from it
  except what the test publishes on the host's end of the veth, through ``PortForward``.
- Filesystem: the worker runs under bubblewrap with ``/`` read-only and a fresh tmpfs on
  ``/tmp``, where its Prefect home, state folder and configuration live. The test process keeps
  its Prefect home and results under its own ``/tmp``, which the worker cannot see, and the
  worker can write nothing the test process could read.

Everything is torn down whatever happens: the worker (bubblewrap's own PID namespace dies with
it), the forwards, the namespace and both ends of the veth.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: Private range the /30s are taken from (RFC 1918; not routed anywhere from here).
NETWORK = ipaddress.ip_network("10.213.0.0/16")


def missing_tools() -> list[str]:
    """What this machine lacks to build an isolated host (root, ip, bwrap, nsenter)."""
    missing = [tool for tool in ("ip", "bwrap", "nsenter") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@dataclass(frozen=True)
class IsolatedNetwork:
    """A network namespace and the addresses at both ends of its veth pair."""

    namespace: str
    host_address: str
    worker_address: str


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-4", "-o", "addr", "show").stdout
    subnets = list(NETWORK.subnets(new_prefix=30))
    for subnet in random.sample(subnets, 64):
        if f" {next(subnet.hosts())}/" not in used and f" {list(subnet.hosts())[1]}/" not in used:
            return subnet
    raise RuntimeError(f"no free /30 in {NETWORK} on this machine")


@contextlib.contextmanager
def isolated_network() -> Iterator[IsolatedNetwork]:
    """A fresh network namespace joined to the host by a veth pair; removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    namespace, host_end, worker_end = f"rca-far-{tag}", f"rcah{tag}", f"rcaw{tag}"
    subnet = _free_subnet()
    host_address, worker_address = (str(address) for address in subnet.hosts())
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", worker_end)
        _ip("link", "set", worker_end, "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "addr", "add", f"{worker_address}/30", "dev", worker_end)
        _ip("-n", namespace, "link", "set", worker_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield IsolatedNetwork(namespace, host_address, worker_address)
    finally:
        # Deleting the namespace deletes its end of the veth, and so the pair; the host end is
        # removed explicitly in case the namespace never got it.
        _ip("netns", "del", namespace, check=False)
        _ip("link", "del", host_end, check=False)


class PortForward:
    """Publishes ``127.0.0.1:target_port`` on ``address`` (a new port), in a thread of its own.

    The test servers listen on loopback, as the control side reaches them; a worker in the
    namespace reaches them at another address, as a worker on another host would.
    """

    def __init__(self, address: str, target_port: int):
        self.address = address
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="port-forward", daemon=True)

    def __enter__(self) -> PortForward:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connect, self.address, 0), self._loop
        ).result(10)
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])
        return self

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        with contextlib.suppress(RuntimeError):
            self._loop.close()


@contextlib.contextmanager
def s3_server() -> Iterator[int]:
    """moto's S3-compatible server on a free loopback port, in a thread; yields the port.

    The same server as ``moto_server``, without a Python process of its own to start (moto and
    Flask take seconds to import).
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield server.get_host_and_port()[1]
    finally:
        server.stop()


def _code_under_tmp() -> list[str]:
    """A checkout or virtualenv under /tmp (a CI clone there) would vanish under the worker's private
    /tmp: bound back read-only at the same path. Code is no shared state; results and files are."""
    code = {ROOT, BIN.resolve().parent}
    return [arg for path in sorted(code) if path.is_relative_to("/tmp") for arg in ("--ro-bind", str(path), str(path))]


class IsolatedWorker:
    """``cloud-agent worker --env ENV`` in ``network``'s namespace, with a filesystem of its own.

    Args:
        network: where it runs.
        environment: the environment it serves.
        config_dir: the environments folder, bound read-only into its private ``/tmp``.
        env: its whole process environment beyond the basics (the Prefect API URL, storage...).
        log: where its output goes (a file of the test process: the worker cannot see it).
    """

    def __init__(self, network: IsolatedNetwork, environment: str, config_dir: Path, env: Mapping[str, str], log: Path):
        self.network = network
        self.environment = environment
        self.config_dir = config_dir
        self.env = dict(env)
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [
            "ip", "netns", "exec", self.network.namespace,
            "bwrap", "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--ro-bind", str(self.config_dir), "/tmp/deployments",
            *_code_under_tmp(),
            "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent", "--chdir", "/tmp",
            str(BIN / "cloud-agent"), "worker", "--env", self.environment, "--poll-seconds", "0.5",
        ]  # fmt: skip

    def start(self) -> IsolatedWorker:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/tmp/home",
            "PREFECT_HOME": "/tmp/prefect",
            "CLOUD_AGENT_STATE_DIR": "/tmp/state",
            "CLOUD_AGENT_CONFIG_DIR": "/tmp/deployments",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            # Lines reach the API in 50 ms batches instead of 2 s ones.
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.05",
            **self.env,
        }
        with self.log.open("ab") as output:
            self._process = subprocess.Popen(self.argv(), env=environment, stdout=output, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def mount_namespace_pid(self) -> int:
        """The worker's first process inside its own mount namespace: bubblewrap's child.

        (The namespace's process list holds other workers' processes too, each ``ip netns exec``
        in a mount namespace of its own: only our bubblewrap's child is ours.)
        """
        assert self._process is not None
        pid = self._process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not children:
            raise RuntimeError(f"bubblewrap ({pid}) has no child: the worker is not running")
        return int(children[0])

    def sees(self, path: Path) -> bool:
        """Whether ``path`` exists in the worker's view of the filesystem (its mounts and its root:
        bubblewrap pivots into a new root, which joining the mount namespace alone keeps out)."""
        probe = ["nsenter", "-t", str(self.mount_namespace_pid()), "--mount", "--root", "test", "-e", str(path)]
        return subprocess.run(probe, check=False, timeout=10).returncode == 0

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # bubblewrap goes; the worker, in its PID namespace, dies with it
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def __enter__(self) -> IsolatedWorker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
