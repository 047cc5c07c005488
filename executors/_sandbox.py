"""Where a shell task runs: the sandbox for reads, a PID namespace for approved writes.

The classifier decides what is a read; this module makes a misjudged read harmless. A ``read``
shell task runs as an unprivileged host user (``cloud-agent-sandbox``) under bubblewrap::

    prlimit (CPU s, memory, processes, file size)
      bwrap  (/ read-only, private /tmp, minimal /dev, own PID/IPC/UTS [and net] namespaces,
              the agent's state and configuration hidden, dies with its parent)
        setpriv (host uid and gid of the sandbox user, no capabilities, no new privileges)
          bash -c COMMAND          with a cleared environment

The uid changes *on the host*: a user namespace made by root alone keeps root's file access, so
bwrap runs as root without one and the command drops to the sandbox user inside. The host's /proc
stays visible (read-only), so ``ps``, ``top`` and ``lsof`` show the machine with its real user
names; other users' ``/proc/<pid>/environ`` stays closed to the sandbox user.

An approved ``write`` task runs with the privileges its environment configures (the agent's own by
default) but in its own PID namespace: when the command's shell exits or is killed at its timeout,
the kernel kills everything it started, double-forked daemons included.

Where the sandbox cannot start (no bubblewrap, no sandbox user, not root, namespaces refused), read
tasks are refused with the fix in the message, unless the environment says ``sandbox: off``: then
they run as before and every result and audit record carries a warning.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract import RiskClass
from executors._errors import SandboxUnavailable

SANDBOX_USER = "cloud-agent-sandbox"
#: What a sandboxed command finds on its PATH: the system's programs, nothing from the agent's venv.
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Paths that hold other people's credentials on ordinary hosts and pods; hidden when present.
DEFAULT_HIDDEN = ("/run/secrets", "/var/run/secrets", "/etc/cloud-agent")
_MIB = 1024 * 1024


class SandboxConfig(BaseModel):
    """``sandbox:`` in ``environment.yaml``. ``sandbox: off`` (or ``false``) turns it off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: The host user read tasks run as (created by set-up: ``scripts/prepare-sandbox.sh``).
    user: str = SANDBOX_USER
    #: ``host`` keeps the network (diagnostics need it); ``none`` gives the task loopback only.
    network: Literal["host", "none"] = "host"
    cpu_seconds: int = Field(default=120, gt=0)
    memory_mb: int = Field(default=2048, gt=0)
    #: Processes of the sandbox user at once (all its tasks together: the kernel counts per user).
    processes: int = Field(default=512, gt=0)
    file_size_mb: int = Field(default=256, gt=0)
    #: Size of the task's private ``/tmp``.
    tmp_mb: int = Field(default=256, gt=0)
    #: More paths to hide from read tasks (the agent's state and configuration always are).
    hide: list[str] = Field(default_factory=list)
    #: Variables of the agent's environment a read task may see (secret-looking ones never pass).
    pass_env: list[str] = Field(default_factory=list)
    #: The user approved write tasks run as (default: the agent's own user).
    write_user: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _on_or_off(cls, value: Any) -> Any:
        # YAML reads ``sandbox: off`` as False and ``sandbox: on`` as True.
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, str) and value.lower() in ("on", "off", "true", "false"):
            return {"enabled": value.lower() in ("on", "true")}
        return value


@dataclass(frozen=True)
class _Tools:
    bwrap: str
    prlimit: str
    setpriv: str


@dataclass(frozen=True)
class Confinement:
    """How one shell task is started: the launcher in front of its command, its environment and
    what to tell the caller about it."""

    prefix: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    warning: str | None = None

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]


def confinement(
    config: SandboxConfig,
    risk: RiskClass,
    *,
    environment: str,
    inherited: Mapping[str, str],
    hidden: Sequence[Path] = (),
) -> Confinement:
    """The confinement of a shell task of class ``risk`` in ``environment``.

    Args:
        config: the environment's sandbox settings.
        risk: the task's class, as the policy decided it.
        environment: the environment's name (for messages).
        inherited: the environment a write task gets (the agent's, secrets already removed).
        hidden: the agent's own folders (state, configuration) a read task must not see.

    Raises:
        SandboxUnavailable: a read task's sandbox cannot start; the message names the fix.
    """
    if not config.enabled:
        return Confinement(
            environment=dict(inherited),
            warning=(
                f"ran without the sandbox: environment {environment!r} sets 'sandbox: off', so this "
                f"{risk.value} task ran with the agent's own privileges and nothing stopped it from changing the host"
            ),
        )
    if risk is RiskClass.READ:
        return _read_sandbox(config, environment, inherited, hidden)
    return _write_namespace(config, environment, inherited)


def _read_sandbox(
    config: SandboxConfig, environment: str, inherited: Mapping[str, str], hidden: Sequence[Path]
) -> Confinement:
    return Confinement(
        prefix=_read_launcher(config, _launchers(config.user), hidden),
        environment=_sandbox_environment(config, inherited),
    )


def _read_launcher(config: SandboxConfig, tools: _Tools, hidden: Sequence[Path]) -> tuple[str, ...]:
    account = pwd.getpwnam(config.user)
    bwrap = [
        tools.bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--perms", "1777", "--size", str(config.tmp_mb * _MIB), "--tmpfs", "/tmp",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        *(["--unshare-net"] if config.network == "none" else []),
        "--die-with-parent", "--new-session",
        # Only what setpriv needs to become the sandbox user; it drops these too before the command.
        "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
        *_hiding([*hidden, *map(Path, DEFAULT_HIDDEN), *map(Path, config.hide)]),
        "--chdir", "/tmp",
        "--",
    ]  # fmt: skip
    prlimit = [
        tools.prlimit,
        f"--cpu={config.cpu_seconds}",
        f"--as={config.memory_mb * _MIB}",
        f"--nproc={config.processes}",
        f"--fsize={config.file_size_mb * _MIB}",
        "--",
    ]
    setpriv = [
        tools.setpriv,
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        # The sandbox user's own groups (set-up puts it in ``adm`` to read logs), none of root's.
        "--init-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    return (*prlimit, *bwrap, *setpriv)


def _write_namespace(config: SandboxConfig, environment: str, inherited: Mapping[str, str]) -> Confinement:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        why = "unshare is missing" if unshare is None else "the agent is not root"
        raise SandboxUnavailable(
            f"an approved write task in environment {environment!r} runs in its own PID namespace, which needs "
            f"util-linux's unshare and a root agent ({why}); "
            f"or set 'sandbox: off' in deployments/{environment}/environment.yaml"
        )
    # --kill-child: the namespace's first process dies with unshare; when it dies, the kernel kills
    # every other process of the namespace. --mount-proc gives ps a /proc of the namespace.
    prefix = [unshare, "--pid", "--fork", "--kill-child", "--mount-proc"]
    if config.write_user is not None:
        try:
            account = pwd.getpwnam(config.write_user)
        except KeyError:
            raise SandboxUnavailable(
                f"sandbox.write_user {config.write_user!r} of environment {environment!r} is not a user on this host"
            ) from None
        setpriv = shutil.which("setpriv") or "setpriv"
        prefix += ["--", setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]
    return Confinement(prefix=(*prefix, "--"), environment=dict(inherited))


@functools.cache
def _launchers(user: str) -> _Tools:
    """The sandbox's programs, checked once per process by starting one sandbox; the reason it
    cannot start, with its fix, otherwise."""
    fix_setup = "run scripts/prepare-sandbox.sh as root (make services does)"
    found = {name: shutil.which(name) for name in ("bwrap", "prlimit", "setpriv")}
    if found["bwrap"] is None:
        raise SandboxUnavailable(
            "read shell tasks run in a bubblewrap sandbox and bwrap is not installed: apt-get install -y bubblewrap"
            f" ({fix_setup}), or set 'sandbox: off' for the environment"
        )
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise SandboxUnavailable(
            f"the sandbox needs util-linux's {' and '.join(missing)}: apt-get install -y util-linux"
        )
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise SandboxUnavailable(
            f"read shell tasks run as the unprivileged user {user!r}, which does not exist here: {fix_setup}, "
            "or set 'sandbox: off' for the environment"
        ) from None
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            f"read shell tasks run as the unprivileged user {user!r}, and only a root agent can switch to it: run the "
            "worker as root (each read task drops to that user), or set 'sandbox: off' for the environment"
        )
    tools = _Tools(bwrap=found["bwrap"] or "", prlimit=found["prlimit"] or "", setpriv=found["setpriv"] or "")
    probe = SandboxConfig(user=user)
    try:
        done = subprocess.run(
            [*_read_launcher(probe, tools, ()), "/bin/sh", "-c", "exit 0"],
            env=_sandbox_environment(probe, {}),
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"the sandbox did not start: {exc}") from exc
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise SandboxUnavailable(
            f"the sandbox did not start ({reason[0]}); this kernel or container may refuse namespaces "
            "(a container needs to allow them, e.g. seccomp and CAP_SYS_ADMIN for the agent), "
            "or set 'sandbox: off' for the environment"
        )
    return tools


def _hiding(paths: Sequence[Path]) -> list[str]:
    """bwrap arguments that put an empty folder (or ``/dev/null``) over each existing path."""
    arguments: list[str] = []
    for path in dict.fromkeys(p.resolve() for p in paths if p.is_absolute()):
        if path == Path("/") or not path.exists():
            continue
        if path.is_dir():
            arguments += ["--tmpfs", str(path)]
        else:
            arguments += ["--ro-bind", "/dev/null", str(path)]
    return arguments


def _sandbox_environment(config: SandboxConfig, inherited: Mapping[str, str]) -> dict[str, str]:
    environment = {
        "PATH": SANDBOX_PATH,
        "HOME": "/tmp",
        "USER": config.user,
        "LOGNAME": config.user,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    for name in config.pass_env:
        if name in inherited:  # ``inherited`` has had its secrets removed already
            environment[name] = inherited[name]
    return environment
