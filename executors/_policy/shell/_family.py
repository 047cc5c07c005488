"""What a command family's validator is given and may do.

A validator (one per family module) receives one simple ``Command`` (its name and argument words,
after wrappers and quoting are seen through) and a ``Judge`` to report to: ``write`` for anything
it does not know to be read-only, ``deny`` for a default rule, ``reads`` for the files it reads
(credential files are denied), ``nested`` and ``argv`` for commands it runs. A validator that
reports nothing has judged the command ``read``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from executors._policy._assessment import Assessment
from executors._policy.shell._options import OptionTable, Parsed, parse
from executors._policy.shell._words import Word


@dataclass
class ShellRules:
    """The environment's additions to the shell policy."""

    #: Commands trusted as read-only with any options (an environment's own diagnostics).
    read_only_commands: frozenset[str] = frozenset()
    http_allow_hosts: tuple[str, ...] = ()
    http_deny_hosts: tuple[str, ...] = ()
    redis_denied: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Command:
    """One simple command: ``name`` (the program's base name) and its argument words."""

    name: str
    args: list[Word]
    depth: int = 0
    #: Its standard input is a pipe or a redirection (code piped into a shell is denied).
    reads_stdin: bool = False


class Judge(Protocol):
    """What a validator reports to (the parse walk)."""

    rules: ShellRules
    assessment: Assessment

    def write(self, reason: str) -> None: ...

    def destructive(self, reason: str) -> None: ...

    def deny(self, rule: str, reason: str) -> None: ...

    def reads(self, words: Iterable[Word], *, listing: bool = False) -> None: ...

    def searches(self, name: str, folders: Iterable[Word]) -> None: ...

    def nested(self, text: str, depth: int) -> None: ...

    def argv(self, words: Sequence[Word], depth: int, *, reads_stdin: bool) -> None: ...

    def denials_of(self, words: Sequence[Word], depth: int, *, reads_stdin: bool) -> None: ...

    def urls(self, urls: Iterable[str], *, resolve: bool = True) -> None: ...

    def assigns(self, name: str, *, exported: bool, value: Word | None = None) -> None: ...


class Family(ABC):
    """The validator of one family of commands (``names``)."""

    names: ClassVar[frozenset[str]]

    @abstractmethod
    def validate(self, command: Command, judge: Judge) -> None:
        """Report to ``judge`` everything about ``command`` that is not a plain read."""

    def claims(self, name: str) -> bool:
        """Does this family also judge ``name``, which is not in ``names`` (``mkfs.ext4``, ``python3.11``)?"""
        return False


@dataclass(frozen=True)
class Reader:
    """A command that reads files and prints what it finds: its options, and what its operands are.

    ``operands``: ``files`` (each is read), ``none`` (they are not files: ``tr`` sets, ``seq``
    numbers), ``pattern`` (the first one is not a file unless one of ``pattern_options`` gave the
    pattern: grep, jq). ``max_files``: more file operands than this and the last is written
    (``uniq IN OUT``). ``listing``: it shows names and sizes, not contents, so globs are not
    compared with credential files.
    """

    options: OptionTable
    operands: Literal["files", "none", "pattern"] = "files"
    pattern_options: frozenset[str] = field(default_factory=frozenset)
    max_files: int | None = None
    listing: bool = False


def check_options(command: Command, judge: Judge, options: OptionTable, *, files: bool = False) -> Parsed | None:
    """Parse ``command``'s arguments; report ``write`` (and return None) when they are not understood,
    else check the files its options read and return them. ``files``: its operands are files it
    reads, so when the arguments are not understood every operand-looking word is still checked."""
    parsed = parse(command.args, options)
    if parsed.problem:
        judge.write(f"{command.name}: {parsed.problem}")
        # What it reads may still be a credential file: denied whatever the rest.
        judge.reads([w for w in command.args if not w.text.startswith("-") and (files or w.value is not None)])
        return None
    judge.reads([value for option, value in parsed.options if option in options.reads and value is not None])
    return parsed


def check_reader(command: Command, judge: Judge, reader: Reader) -> Parsed | None:
    """Judge a ``Reader`` command: its options, and the files among its operands."""
    parsed = check_options(command, judge, reader.options, files=reader.operands != "none" and not reader.listing)
    if parsed is None:
        return None
    files = parsed.operands
    if reader.operands == "none":
        return parsed
    if reader.operands == "pattern" and not parsed.has(*reader.pattern_options):
        files = files[1:]
    if reader.max_files is not None and (len(files) > reader.max_files or any(f.splits for f in files)):
        judge.write(f"{command.name} writes its output to its operand {files[-1].text}")
    judge.reads([f for f in files if f.text != "-"], listing=reader.listing)
    return parsed


@dataclass(frozen=True)
class Verbs:
    """A command whose first operand is a verb (``systemctl status``, ``kubectl get``).

    ``read``: the verbs that only read ("" for none given); ``options``: the options allowed with
    them; ``takes_value``: every option that takes a value, allowed or not, so the verb is found
    whatever the options (``systemctl -H db1 reboot``); ``denied``: verbs a default rule denies,
    with the rule; ``destructive``: verbs that remove things.
    """

    read: frozenset[str]
    options: OptionTable
    takes_value: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()
    deny_rule: str = ""
    destructive: frozenset[str] = frozenset()


def find_verb(args: Sequence[Word], takes_value: frozenset[str]) -> tuple[int, Word | None]:
    """The position and word of the first operand, skipping options and their values."""
    index = 0
    while index < len(args):
        text = args[index].text
        if text == "--":
            index += 1
            break
        if not text.startswith("-") or text == "-":
            break
        index += 2 if text in takes_value else 1
    return (index, args[index]) if index < len(args) else (index, None)


def check_verb(command: Command, judge: Judge, verbs: Verbs) -> tuple[str, Parsed] | None:
    """Judge a verb command; return its verb and parsed arguments when it only reads."""
    position, word = find_verb(command.args, verbs.takes_value)
    verb = "" if word is None else (word.value or word.text)
    if word is not None and word.value is None:
        judge.write(f"{command.name}: the verb {word.text} is only known at run time")
        # It may expand to options, and a later word be the verb: a denied one still is.
        later = [w.value for w in command.args[position + 1 :]]
        denied = next((v for v in later if v in verbs.denied), None)
        if denied:
            judge.deny(verbs.deny_rule, f"{command.name} {denied}")
        return None
    if verb in verbs.denied:
        judge.deny(verbs.deny_rule, f"{command.name} {verb}")
        return None
    if verb in verbs.destructive:
        judge.destructive(f"{command.name} {verb} removes things")
        return None
    if verb not in verbs.read:
        judge.write(f"{command.name} {verb or '(no verb)'} is not a read-only {command.name} command")
        return None
    parsed = check_options(command, judge, verbs.options)
    if parsed is None:
        return None
    return verb, parsed
