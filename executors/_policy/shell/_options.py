"""Command-line options against an allow-list, read the way GNU ``getopt_long`` reads them.

``-abc`` is ``-a -b -c`` unless one of them takes a value (then the rest of the word, or the next
word, is its value: ``-n5``, ``-n 5``); ``--name=value`` and ``--name value``; ``--`` ends the
options; GNU programs take options after operands too. A long option must be written in full:
``getopt_long`` accepts any unique prefix of *its* options, and a prefix that is unique among the
allowed ones may be another option to the program (``--comp`` for ``--compress-program``), so an
abbreviation is an unknown option here. Anything not on the list makes the arguments not
understood; so does a word only known at run time where an option could stand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from executors._policy.shell._words import Word


@dataclass(frozen=True)
class OptionTable:
    """The options one command may be given and stay ``read``."""

    flags: frozenset[str] = frozenset()
    #: Take a value: attached (``-n5``, ``--lines=5``) or the next word.
    valued: frozenset[str] = frozenset()
    #: Take a value only when attached (``-i[SUFFIX]``, ``--color[=WHEN]``).
    optional: frozenset[str] = frozenset()
    #: Options whose value is a file the command reads (checked like a file operand).
    reads: frozenset[str] = frozenset()
    #: ``-NUM`` (``head -20``) is an option.
    numeric: bool = False
    #: Options may follow operands (GNU); False: the first operand ends the options.
    permute: bool = True
    #: Known options that are not allowed, with the reason an approver will read.
    refused: Mapping[str, str] = field(default_factory=dict)
    #: Optional-value options that take the next word as their value when it matches (journalctl
    #: ``-n 50``, lsof ``-i :5432``: these programs look at the next word themselves).
    next_value: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    def knows(self, option: str) -> bool:
        return option in self.flags or option in self.valued or option in self.optional


def table(
    spec: str = "",
    *,
    reads: str = "",
    numeric: bool = False,
    permute: bool = True,
    refused: Mapping[str, str] | None = None,
    next_value: Mapping[str, str] | None = None,
) -> OptionTable:
    """An option table from a compact spec: ``-a`` a flag, ``-k=`` takes a value, ``-i?`` takes an
    attached value only; the same for ``--long`` options. ``reads`` lists options whose value is a
    file the command reads."""
    flags, valued, optional = set(), set(), set()
    for token in spec.split():
        if token.endswith("="):
            valued.add(token[:-1])
        elif token.endswith("?"):
            optional.add(token[:-1])
        else:
            flags.add(token)
        if not token.startswith("-"):
            raise ValueError(f"option table entry {token!r} does not start with '-'")
    read_set = frozenset(reads.split())
    unknown = read_set - valued - optional
    if unknown:
        raise ValueError(f"options {sorted(unknown)} read a file but take no value")
    following = {option: re.compile(pattern) for option, pattern in (next_value or {}).items()}
    if set(following) - optional:
        raise ValueError(f"options {sorted(set(following) - optional)} take the next word but are not optional")
    return OptionTable(
        frozenset(flags),
        frozenset(valued),
        frozenset(optional),
        read_set,
        numeric,
        permute,
        dict(refused or {}),
        following,
    )


@dataclass
class Parsed:
    """Options (as written in the table, with their value) and operands; ``problem`` says why the
    arguments are not understood (parsing stops there)."""

    options: list[tuple[str, Word | None]] = field(default_factory=list)
    operands: list[Word] = field(default_factory=list)
    problem: str = ""

    def has(self, *names: str) -> bool:
        return any(option in names for option, _ in self.options)

    def values(self, *names: str) -> list[Word]:
        return [value for option, value in self.options if option in names and value is not None]


_NUMERIC = re.compile(r"-\d+")


def parse(words: Sequence[Word], options: OptionTable) -> Parsed:
    """Read ``words`` (a command's arguments) against ``options``."""
    parsed = Parsed()
    index = 0
    ended = False
    while index < len(words):
        word = words[index]
        text = word.text
        index += 1
        if ended or (not options.permute and parsed.operands):
            parsed.operands.append(word)
            continue
        if text == "--" and not word.dynamic:
            ended = True
            continue
        if word.brace:
            parsed.problem = f"{text} is a brace expansion: several words, any of which can be an option"
            return parsed
        if word.splits:
            parsed.problem = f"{text} is unquoted run-time text, which bash can split into options"
            return parsed
        if not text.startswith("-") or text == "-":
            if word.may_be_option:
                parsed.problem = f"{text} is only known at run time and could be an option"
                return parsed
            parsed.operands.append(word)
            continue
        if text.startswith("--"):
            index = _long(word, words, index, options, parsed)
        elif options.numeric and _NUMERIC.fullmatch(text) and not word.dynamic:
            parsed.options.append(("-NUM", word.tail(1)))
        else:
            index = _cluster(word, words, index, options, parsed)
        if parsed.problem:
            return parsed
    return parsed


def _long(word: Word, words: Sequence[Word], index: int, options: OptionTable, parsed: Parsed) -> int:
    name, equals, _ = word.text.partition("=")
    if name in options.valued:
        if equals:
            parsed.options.append((name, word.tail(len(name) + 1)))
            return index
        return _next_value(name, words, index, parsed)
    if name in options.optional:
        if equals:
            parsed.options.append((name, word.tail(len(name) + 1)))
            return index
        return _optional_next(name, words, index, options, parsed)
    if name in options.flags and not equals:
        parsed.options.append((name, None))
        return index
    parsed.problem = _unknown(name, options)
    return index


def _cluster(word: Word, words: Sequence[Word], index: int, options: OptionTable, parsed: Parsed) -> int:
    text = word.text
    position = 1
    while position < len(text):
        option = "-" + text[position]
        if option in options.flags:
            parsed.options.append((option, None))
            position += 1
            continue
        if option in options.valued:
            if position + 1 < len(text):
                parsed.options.append((option, word.tail(position + 1)))
                return index
            return _next_value(option, words, index, parsed)
        if option in options.optional:
            if position + 1 < len(text):
                parsed.options.append((option, word.tail(position + 1)))
                return index
            return _optional_next(option, words, index, options, parsed)
        parsed.problem = _unknown(option, options)
        return index
    return index


def _next_value(option: str, words: Sequence[Word], index: int, parsed: Parsed) -> int:
    if index >= len(words):
        parsed.problem = f"{option} needs a value"
        return index
    value = words[index]
    if value.splits:
        parsed.problem = f"the value of {option} is unquoted run-time text, which bash can split into options"
        return index
    parsed.options.append((option, value))
    return index + 1


def _optional_next(option: str, words: Sequence[Word], index: int, options: OptionTable, parsed: Parsed) -> int:
    pattern = options.next_value.get(option)
    following = words[index] if index < len(words) else None
    if pattern is not None and following is not None:
        if following.value is not None and pattern.fullmatch(following.value):
            parsed.options.append((option, following))
            return index + 1
        if following.value is None and not following.text.startswith("-"):
            # A run-time word: whether the program takes it as the value is only known then.
            parsed.problem = f"whether {following.text} is the value of {option} is only known at run time"
            return index
    parsed.options.append((option, None))
    return index


def _unknown(option: str, options: OptionTable) -> str:
    if option in options.refused:
        return f"{option} {options.refused[option]}"
    if "$" in option or "`" in option:
        return f"{option} is an option only known at run time"
    if option.startswith("--"):
        spelled = (*options.flags, *options.valued, *options.optional, *options.refused)
        known = [o for o in spelled if o.startswith(option)]
        if known:
            return f"{option} is an abbreviation (of {sorted(known)[0]}); only options written in full are checked"
    return f"{option} is not an option the policy knows to be read-only"
