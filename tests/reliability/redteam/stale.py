"""What a red-team run that died left behind, cleaned before the next one starts.

A run that ends without its tear-down (pytest-timeout stops the process outright, a CI job is
killed) leaves canary folders, loop devices, ``sleep`` canaries, the twin agent and private servers.
Everything of a run carries a recognisable name — ``cloud-agent-redteam-<run>`` folders, ``rtc-``
/``rtp-`` process names, a ``.redteam`` file in each private server's folder — and only what is
older than ``STALE_AFTER`` is touched, so that a run going on beside this one keeps its canaries.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

#: Older than any run can be (pytest's timeout for a test is 300 s; a mode takes a minute or two).
STALE_AFTER = 20 * 60
#: The file that marks a private server's folder as the red team's.
SERVER_MARK = ".redteam"
_CANARY_ROOTS = (Path("/etc"), Path("/root"), Path("/opt"), Path("/var/tmp"))
_FOLDER = re.compile(r"^cloud-agent-redteam-[0-9a-f]{6}$")
_PROCESS = re.compile(
    r"^(rtc-[0-9a-f]{6}-|rtp-[0-9a-f]{6}-|\S*python\S* -c import time; time.sleep\(3600\) redteam-twin)"
)
_TICKS = os.sysconf("SC_CLK_TCK")


def _age_of_process(pid: int) -> float | None:
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - start_ticks / _TICKS


def _old(path: Path, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > STALE_AFTER
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def clean_stale_runs() -> list[str]:
    """Remove what dead runs left; returns what was removed (for the log)."""
    now = time.time()
    removed: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        age = _age_of_process(int(entry))
        if _PROCESS.match(cmdline) and age is not None and age > STALE_AFTER:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)
                removed.append(f"process {entry} ({cmdline[:60]})")
    stale_folders = [
        folder
        for root in _CANARY_ROOTS
        if root.is_dir()
        for folder in root.iterdir()
        if _FOLDER.match(folder.name) and _old(folder, now)
    ]
    if stale_folders:
        listing = subprocess.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
                                 capture_output=True, text=True, check=False).stdout  # fmt: skip
        for line in listing.splitlines():
            device, _, backing = line.strip().partition(" ")
            if any(backing.strip().startswith(f"{folder}/") for folder in stale_folders):
                subprocess.run(["blockdev", "--setrw", device], capture_output=True, check=False)
                subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)
                removed.append(f"loop device {device}")
    for folder in stale_folders:
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    for mark in Path("/tmp").glob(f"reliability-*/{SERVER_MARK}"):
        folder = mark.parent
        if _old(mark, now):
            for pid in _processes_mentioning(f"{folder}/"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(f"private server {folder}")
    return removed
