"""Commands that change the machine, and the default rules that deny their worst forms.

Nothing here is ``read``. ``rm -rf /`` and recursive ``chmod``/``chown`` of system folders, disk
wipers, power commands, ``dd``/``cp``/``mv`` onto devices or the account databases, ``kill -9 1``
are denied whatever the approval; the rest is ``write`` or ``destructive``. ``kill -0``, ``kill
-l`` and ``dd`` without ``of=`` only look. A copy is a read of its sources: a credential file is
denied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from executors._policy.shell._family import Command, Family, Judge
from executors._policy.shell._paths import harmful_write_target, is_system_path
from executors._policy.shell._tables import (
    DISK_WIPERS,
    POWER_COMMANDS,
    RULE_DEVICE_WRITE,
    RULE_DISK,
    RULE_KILL_ALL,
    RULE_POWER,
    RULE_RECURSIVE_ROOT,
    RULE_RM_ROOT,
)
from executors._policy.shell._words import Word

_DD_READ_OPERANDS = frozenset({"if", "bs", "ibs", "obs", "cbs", "count", "skip", "iseek", "iflag", "status"})


class KnownWriters(Family):
    """The validator of commands known to change files, processes or the machine."""

    names: ClassVar[frozenset[str]] = frozenset(
        {*DISK_WIPERS, *POWER_COMMANDS, "rm", "rmdir", "chmod", "chown", "chgrp", "mv", "cp", "scp", "rsync",
         "install", "dd", "kill", "pkill", "killall", "killall5", "renice", "init", "telinit", "umount"}
    )  # fmt: skip

    def claims(self, name: str) -> bool:
        return name.startswith("mkfs")

    def validate(self, command: Command, judge: Judge) -> None:
        name, args = command.name, command.args
        if name.startswith("mkfs") or name in DISK_WIPERS:
            judge.deny(RULE_DISK, f"{name} destroys file systems or disks")
        elif name in POWER_COMMANDS:
            judge.deny(RULE_POWER, f"{name} takes the host down")
        elif name == "rm":
            _rm(args, judge)
        elif name in ("chmod", "chown", "chgrp"):
            flags, operands = _flags(args)
            if {"R", "--recursive"} & flags and any(_system(op) for op in operands[1:]):
                judge.deny(RULE_RECURSIVE_ROOT, f"recursive {name} over a system folder")
            else:
                judge.write(f"{name} changes file permissions or owners")
        elif name in ("mv", "cp", "scp", "rsync", "install"):
            _copy(name, args, judge)
        elif name == "dd":
            _dd(args, judge)
        elif name in ("kill", "pkill", "killall", "killall5"):
            _kill(name, args, judge)
        elif name in ("init", "telinit"):
            if any(w.value in ("0", "6", "1", "s", "S") for w in args):
                judge.deny(RULE_POWER, f"{name} changes the runlevel")
            else:
                judge.write(f"{name} talks to init")
        elif name == "renice":
            judge.write("renice changes the priority of running processes")
        else:
            judge.write(f"{name} changes files or mounts")


def _flags(args: Sequence[Word]) -> tuple[set[str], list[Word]]:
    """Short flags (split: ``-rf`` gives r and f), long flags, and the operands."""
    flags: set[str] = set()
    operands: list[Word] = []
    ended = False
    for arg in args:
        text = arg.text
        if not ended and text == "--":
            ended = True
        elif not ended and text.startswith("--"):
            flags.add(text.split("=", 1)[0])
        elif not ended and text.startswith("-") and len(text) > 1:
            flags.update(text[1:])
        else:
            operands.append(arg)
    return flags, operands


def _system(word: Word) -> bool:
    if word.values is None:
        return True  # only known at run time: could be /
    return any(is_system_path(v, pattern=word.is_pattern) for v in word.values)


def _rm(args: Sequence[Word], judge: Judge) -> None:
    flags, operands = _flags(args)
    if "--no-preserve-root" in flags:
        judge.deny(RULE_RM_ROOT, "rm --no-preserve-root")
    elif {"r", "R", "--recursive"} & flags and any(_system(op) for op in operands):
        judge.deny(RULE_RM_ROOT, f"recursive rm of {' '.join(op.text or '$?' for op in operands)}")
    else:
        judge.destructive("rm deletes files")


def _copy(name: str, args: Sequence[Word], judge: Judge) -> None:
    _, operands = _flags(args)
    target = operands[-1].value if len(operands) > 1 else None
    if target is not None and harmful_write_target(target):
        judge.deny(RULE_DEVICE_WRITE, f"{name} onto {target} can destroy the system")
        return
    if name == "mv" and any(_system(op) and op.text != "/tmp" for op in operands[:-1]):
        judge.deny(RULE_RECURSIVE_ROOT, "moving a system folder away")
        return
    if name != "mv":
        judge.reads(op for op in operands[:-1] if op.value is not None)  # a copy of a credential file is a read
    judge.write(f"{name} changes files")


def _dd(args: Sequence[Word], judge: Judge) -> None:
    judge.reads(arg.tail(3) for arg in args if arg.text.startswith("if="))
    for arg in args:
        if arg.text.startswith("of="):
            target = arg.tail(3).value
            if target is None or harmful_write_target(target):
                judge.deny(RULE_DEVICE_WRITE, f"dd writing to {target or 'a run-time target'}")
                return
            judge.write(f"dd writes {target}")
            return
    # Without of=, dd prints what it reads, like cat.
    if not all(arg.text.split("=", 1)[0] in _DD_READ_OPERANDS for arg in args):
        judge.write("dd with operands other than if=, bs=, count=, skip=, iflag=, status=")


def _kill(name: str, args: Sequence[Word], judge: Judge) -> None:
    texts = [w.value for w in args]
    if name == "killall5":
        judge.deny(RULE_KILL_ALL, "killall5 signals every process")
        return
    if name == "kill":
        targets = [t for t in texts if t is None or not t.startswith("-") or t == "-1"]
        if any(t in ("1", "-1") for t in targets):
            judge.deny(RULE_KILL_ALL, "kill of init or of every process")
            return
        # Only looking: list the signals, or ask whether processes exist (signal 0, nothing sent).
        if texts in (["-l"], ["-L"]) or (
            texts[:1] == ["-0"] and len(texts) > 1 and all(t is not None and t.isdigit() for t in texts[1:])
        ):
            return
    judge.write(f"{name} signals processes")
