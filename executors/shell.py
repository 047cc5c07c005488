"""``shell``: run a command line under bash on the agent's host.

The command has passed the shell policy before it gets here. A ``read`` task runs in the sandbox
and an approved ``write`` in its own PID namespace (``executors._sandbox``), so that a command the
policy misjudged still changes nothing, and nothing a task starts outlives it. It runs in its own session and process
group with stdin closed and an environment stripped of secret-looking variables; stdout and stderr
are read as they come (each line goes to the output sink, e.g. the WebSocket log stream) and kept
up to the size limit while the rest is counted. At the deadline the group gets SIGTERM, then
SIGKILL after a short grace, and so does every process left in its session, so nothing outlives
the task — background jobs included.

The command also carries its own deadline: it runs under coreutils ``timeout``, set a little
beyond the executor's, so that a task whose worker or gateway was killed mid-way (nobody left to
enforce its timeout) still stops at its deadline instead of running unsupervised.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from contract import ErrorInfo, TaskResult, TaskSpec, TaskStatus
from executors._audit import sqlite_path
from executors._base import Executor, RunContext
from executors._errors import BackendUnavailable
from executors._redaction import holds_secret, is_secret_key
from executors._sandbox import confinement
from executors._settings import AgentSettings

#: Time between SIGTERM and SIGKILL at a timeout.
KILL_GRACE_SECONDS = 0.5
#: How long output is still read after the command exits (background jobs writing late).
DRAIN_SECONDS = 0.1
#: The command's own guard fires this long after the executor's deadline: the executor stops the
#: task first whenever it is alive to do so.
GUARD_SLACK_SECONDS = 2.0
_READ_CHUNK = 65536
#: A streamed line longer than this is sent in pieces of this many characters.
MAX_LINE_CHARS = 16_384


@dataclass
class _Stream:
    """One of stdout/stderr: kept text up to the limit, total size, and the unfinished line.

    Lines go to the output sink up to the same limit as the result keeps, and a line longer than
    ``MAX_LINE_CHARS`` goes in pieces: 100 MB of output (or of bytes without a newline) costs the
    sink what the result costs, not 100 MB of lines or one 100 MB string.
    """

    name: str
    limit: int
    kept: bytearray = field(default_factory=bytearray)
    total: int = 0
    #: Bytes passed on to the sink so far; past ``limit`` the rest is only counted.
    streamed: int = 0
    pending_line: str = ""
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )

    def feed(self, chunk: bytes, ctx: RunContext) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept.extend(chunk[:room])
        if ctx.on_output is None or self.streamed > self.limit:
            return
        piece = chunk[: self.limit - self.streamed]
        self.streamed += len(chunk)
        text = self.pending_line + self.decoder.decode(piece)
        *lines, self.pending_line = text.split("\n")
        for line in lines:
            ctx.emit(line, self.name)
        while len(self.pending_line) > MAX_LINE_CHARS:
            ctx.emit(self.pending_line[:MAX_LINE_CHARS], self.name)
            self.pending_line = self.pending_line[MAX_LINE_CHARS:]
        if self.streamed > self.limit:
            if self.pending_line:
                ctx.emit(self.pending_line, self.name)
                self.pending_line = ""
            ctx.emit(f"[... output beyond {self.limit} bytes is not streamed; the result says how much there was ...]",
                     self.name)  # fmt: skip

    def close(self, ctx: RunContext) -> None:
        if ctx.on_output is not None and self.streamed <= self.limit:
            rest = self.pending_line + self.decoder.decode(b"", final=True)
            if rest:
                ctx.emit(rest, self.name)

    def text(self) -> str:
        return bytes(self.kept).decode("utf-8", errors="replace")

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    @property
    def binary(self) -> bool:
        try:
            bytes(self.kept).decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by the size limit is not binary output.
            return not (self.truncated and exc.start >= len(self.kept) - 3)
        return False


class ShellExecutor(Executor):
    type = "shell"

    def _run(self, spec: TaskSpec, ctx: RunContext) -> TaskResult:
        confined = confinement(
            self.environment.sandbox,
            ctx.risk,
            environment=self.environment.name,
            inherited=_child_environment(),
            hidden=self._agent_folders(),
        )
        if confined.warning:
            ctx.warnings.append(confined.warning)
        try:
            process = subprocess.Popen(
                confined.wrap(_guarded(spec.command, ctx.remaining() + GUARD_SLACK_SECONDS)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=dict(confined.environment),
                close_fds=True,
            )
        except OSError as exc:
            raise BackendUnavailable(f"cannot start bash: {exc}") from exc

        streams = {
            process.stdout: _Stream("stdout", ctx.limits.max_output_bytes),
            process.stderr: _Stream("stderr", ctx.limits.max_output_bytes),
        }
        timed_out = False
        try:
            timed_out = _pump(process, streams, ctx)
        finally:
            _terminate_session(process.pid, graceful=timed_out)
            process.wait()
            for pipe in streams:
                if pipe is not None:
                    pipe.close()
        stdout, stderr = streams[process.stdout], streams[process.stderr]
        for stream in (stdout, stderr):
            stream.close(ctx)

        result = ctx.result(
            exit_code=process.returncode,
            output=stdout.text(),
            stderr=stderr.text(),
            truncated=stdout.truncated or stderr.truncated,
            original_bytes=stdout.total if stdout.truncated else (stderr.total if stderr.truncated else None),
        )
        if stdout.binary or stderr.binary:
            result.notes.append("the output is not valid UTF-8; undecodable bytes are shown as U+FFFD")
        if timed_out:
            result.status = TaskStatus.TIMED_OUT
            result.exit_code = None
            result.error = ErrorInfo(
                code="timed_out",
                message=f"killed after its {ctx.timeout:g} s timeout (process group and session)",
            )
        elif process.returncode != 0:
            result.status = TaskStatus.FAILED
            last = stderr.text().strip().splitlines()[-1:] or [""]
            reason = (
                f"killed by signal {-process.returncode}"
                if process.returncode < 0
                else (f"exited with status {process.returncode}")
            )
            result.error = ErrorInfo(code="exit_status", message=f"{reason}{': ' + last[0] if last[0] else ''}")
        return result

    def _agent_folders(self) -> list[Path]:
        """What a read task must not see of the agent itself: its configuration, its state (task
        history with every output, models) and its audit log."""
        settings = AgentSettings()
        folders = [settings.state_dir]
        if self.environment.folder is not None:
            folders.append(self.environment.folder.parent)
        audit_file = sqlite_path(settings.resolved_audit_url())
        if audit_file is not None:
            folders += [audit_file, Path(f"{audit_file}-wal"), Path(f"{audit_file}-shm")]
        return folders


def _guarded(command: str, seconds: float) -> list[str]:
    """``bash -c command`` under ``timeout``, which signals its whole process group at the deadline."""
    guard = shutil.which("timeout")
    if guard is None:  # not a GNU userland: the executor's own deadline is all there is
        return ["bash", "-c", command]
    return [guard, "--kill-after", f"{KILL_GRACE_SECONDS:g}s", f"{seconds:.3f}s", "bash", "-c", command]


def _pump(process: subprocess.Popen[bytes], streams: dict, ctx: RunContext) -> bool:
    """Read both pipes until the command exits (then drain briefly). True when it timed out."""
    selector = selectors.DefaultSelector()
    for pipe in streams:
        os.set_blocking(pipe.fileno(), False)
        selector.register(pipe, selectors.EVENT_READ)
    exited_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= ctx.deadline:
                return True
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at >= DRAIN_SECONDS:
                break
            wait = min(ctx.deadline - now, DRAIN_SECONDS if exited_at is not None else 0.05)
            for key, _ in selector.select(timeout=max(wait, 0.0)):
                try:
                    chunk = os.read(key.fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                streams[key.fileobj].feed(chunk, ctx)
        try:
            process.wait(timeout=max(ctx.deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            return True
        return False
    finally:
        selector.close()


def _child_environment() -> dict[str, str]:
    """The agent's environment without its secrets and its own settings.

    A variable goes by its name (``*PASSWORD*``, ``*TOKEN*``...) or by its value: one holding a
    registered secret under an innocent name (``REDIS_URL=redis://:pw@...``) is not handed on
    either, since output masking cannot see ``printenv REDIS_URL | base64``.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if not is_secret_key(key) and not key.startswith("CLOUD_AGENT_") and not holds_secret(value)
    }


def _terminate_session(leader: int, *, graceful: bool) -> None:
    """Stop every process of the task: its process group, then whatever is left in its session
    or below its leader (a child that called setsid() left both group and session)."""
    # While the leader lives, its children name it as their parent: note them before it dies. One
    # that has exited (the usual case) has had them re-parented already; a scan would find nothing more.
    tracked = _task_processes(leader) if _alive({leader}) else set()
    if graceful:
        _signal_group(leader, signal.SIGTERM)
        _signal_each(tracked, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while time.monotonic() < deadline and (_task_processes(leader) or _alive(tracked)):
            time.sleep(0.02)
    _signal_group(leader, signal.SIGKILL)
    _signal_each(tracked | _task_processes(leader), signal.SIGKILL)


def _signal_each(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _task_processes(leader: int) -> set[int]:
    """Live processes in the leader's session (``leader`` is its id), and the leader's descendants."""
    members: set[int] = set()
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None or len(fields) <= 3 or fields[0] == b"Z":
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        if int(fields[3]) == leader:
            members.add(pid)
    # Every descendant, through members too: the leader is the command's guard, whose child bash
    # is a member of the session while what bash started with setsid is not.
    stack = list(children.get(leader, []))
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            members.add(pid)
            stack.extend(children.get(pid, []))
    return members


def _alive(pids: set[int]) -> bool:
    return any((fields := _stat_fields(pid)) is not None and fields[:1] != [b"Z"] for pid in pids)


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, session...);
    ``None`` when the process is gone. Plain ``os.read``: this runs for every process, every task."""
    try:
        descriptor = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        stat = os.read(descriptor, 4096)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return stat[stat.rfind(b")") + 2 :].split()
