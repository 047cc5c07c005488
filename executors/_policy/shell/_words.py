"""Words as bash will pass them: which parts are literal, which are only known at run time, and
what the analyser can still say about them.

bashlex gives a word's text with its quotes removed and the positions of its expansions; this
module reads the word's source again, quote by quote, to learn what bashlex does not say: which
characters were quoted (an unquoted ``*`` is a glob, an unquoted ``$x`` is split into words),
whether the word could begin with ``-`` once expanded (an option nobody wrote), and, when every
variable in it was set to literal text earlier in the line, the texts it can take.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

#: More combinations than this (``$a$b$c`` over loops) and a word counts as unknown.
MAX_VALUES = 64
_BLANK_OR_GLOB = re.compile(r"[\s*?\[]")
#: Characters bash never leaves unquoted inside a word: seeing one means bashlex and bash disagree.
_OPERATOR_CHARS = frozenset("()<>|&; \t\n`")
_PLAIN_SPECIAL = re.compile(r"[\\'\"$()<>|&; \t\n`]")
_DOUBLE_SPECIAL = re.compile(r"[\\\"$`]")
_BRACE = re.compile(r"\{[^{}\x01]*(,|\.\.)[^{}\x01]*\}")


@dataclass(frozen=True)
class Expansion:
    """What one run-time part of a word can be: the texts it can take (``None``: anything), and
    whether it is a single token that cannot begin with ``-`` nor hold blanks or glob characters."""

    values: frozenset[str] | None = None
    safe: bool = False

    @staticmethod
    def literal(values: frozenset[str]) -> Expansion:
        safe = all(not _BLANK_OR_GLOB.search(v) and not v.startswith("-") and v for v in values)
        return Expansion(values, safe)

    def union(self, other: Expansion) -> Expansion:
        if self.values is None or other.values is None:
            return Expansion(None, self.safe and other.safe)
        return Expansion.literal(self.values | other.values)


ANYTHING = Expansion()
SAFE_TOKEN = Expansion(None, safe=True)


@dataclass(frozen=True)
class Segment:
    """A piece of a word: literal text, or the expansion ``node`` (a bashlex node) and its source."""

    text: str = ""
    quoted: bool = False
    node: object | None = None


@dataclass(frozen=True)
class Word:
    """One shell word. ``text`` is bashlex's (quotes removed, expansions as written)."""

    text: str
    dynamic: bool = False
    glob: bool = False
    brace: bool = False
    #: Once expanded, it may begin with ``-`` (an option nobody wrote).
    may_be_option: bool = False
    #: Unquoted run-time text: bash may split it into several words, or none.
    splits: bool = False
    #: The texts it can take, when every run-time part is known (before globbing).
    values: tuple[str, ...] | None = None
    #: A glob covering every text it can take (run-time parts as ``*``).
    pattern: str = "*"
    #: Set when bash would do something with it the analyser does not follow.
    not_understood: str = ""

    @property
    def value(self) -> str | None:
        """The one text bash passes for this word, when the analyser knows it."""
        if self.glob or self.brace or self.splits or self.values is None or len(self.values) != 1:
            return None
        return self.values[0]

    @property
    def is_pattern(self) -> bool:
        """Does it stand for file names only known on the machine (a glob, braces, run-time text)?"""
        return self.glob or self.brace or self.values is None

    def forms(self) -> list[str]:
        """Texts or glob patterns covering what this word can name."""
        if self.values is not None:
            return list(self.values)
        return [self.pattern]

    def tail(self, skip: int) -> Word:
        """The rest of this word after its first ``skip`` literal characters (``--file=X`` → ``X``)."""
        values = None
        if self.values is not None:
            values = tuple(v[skip:] for v in self.values)
        return Word(self.text[skip:], dynamic=self.dynamic, glob=self.glob, brace=self.brace, splits=self.splits,
                    values=values, pattern=self.pattern[skip:] or "*", not_understood=self.not_understood)  # fmt: skip


def literal_word(text: str) -> Word:
    """A word the analyser made itself (a ``find`` path, a ``watch`` argument)."""
    return Word(text, values=(text,), pattern=text)


#: A word nobody can know before it runs (what ``xargs`` appends).
UNKNOWN = Word("", dynamic=True, may_be_option=True, splits=True, pattern="*")


def scan(raw: str, base: int, parts: list) -> list[Segment] | str:
    """Split the source ``raw`` of a word (starting at ``base`` in its command) into literal and
    expansion segments; returns why not when the word holds what this reader does not follow."""
    starts = {part.pos[0] - base: part for part in parts}
    segments: list[Segment] = []
    double = False
    index = 0
    length = len(raw)
    while index < length:
        part = starts.get(index)
        if part is not None:
            end = part.pos[1] - base
            if getattr(part, "kind", "") == "parameter" and end - index == 1:
                # A lone "$": before a quote outside double quotes it is $'...' or $"..."; else literal.
                follower = raw[index + 1 : index + 2]
                if not double and follower in ("'", '"'):
                    return "ansi-c"
                segments.append(Segment("$", quoted=double))
                index += 1
                continue
            segments.append(Segment(raw[index:end], quoted=double, node=part))
            index = end
            continue
        char = raw[index]
        if double:
            if char == "\\" and raw[index + 1 : index + 2] in ("$", "`", '"', "\\", "\n"):
                if raw[index + 1] != "\n":
                    segments.append(Segment(raw[index + 1], quoted=True))
                index += 2
            elif char == '"':
                double = False
                index += 1
            elif char in "$`":
                return f"an expansion bashlex did not report at {raw[index : index + 8]!r}"
            else:
                end = _run_end(raw, index, _DOUBLE_SPECIAL, starts)
                segments.append(Segment(raw[index:end], quoted=True))
                index = end
            continue
        if char == "\\":
            if index + 1 < length and raw[index + 1] != "\n":
                segments.append(Segment(raw[index + 1], quoted=True))
            index += 2
        elif char == "'":
            end = raw.find("'", index + 1)
            if end < 0:
                return "an unterminated quote"
            segments.append(Segment(raw[index + 1 : end], quoted=True))
            index = end + 1
        elif char == '"':
            double = True
            index += 1
        elif char == "$" or char in _OPERATOR_CHARS:
            return f"shell syntax bashlex did not report at {raw[index : index + 8]!r}"
        else:
            end = _run_end(raw, index, _PLAIN_SPECIAL, starts)
            segments.append(Segment(raw[index:end], quoted=False))
            index = end
    if double:
        return "an unterminated double quote"
    return segments


def _run_end(raw: str, index: int, special: re.Pattern[str], starts: dict) -> int:
    """Where a run of ordinary characters from ``index`` ends: a special one, or an expansion."""
    match = special.search(raw, index + 1)
    end = match.start() if match else len(raw)
    return min([end, *(start for start in starts if index < start < end)])


def build(segments: list[Segment], expansions: list[Expansion], *, split: bool = True) -> Word:
    """The word made of ``segments``, whose expansion segments can take ``expansions`` (in order).
    ``split`` is False for assignment values, which bash neither splits nor globs.

    Its text is the literal characters as bash reads them (bashlex loses backslashes inside
    quotes: ``"a\\nb"``, ``x='a\\nb'``) with each expansion as written."""
    text = "".join(segment.text for segment in segments)
    shape = []
    glob = False
    splits = False
    pattern = []
    choices: list[list[str]] = []
    expansion_index = 0
    for segment in segments:
        if segment.node is None:
            shape.append(segment.text if not segment.quoted else "\x01" * len(segment.text))
            if not segment.quoted and split and re.search(r"[*?\[]", segment.text):
                glob = True
            pattern.append(segment.text)
            choices.append([segment.text])
            continue
        expansion = expansions[expansion_index]
        expansion_index += 1
        shape.append("\x00")
        pattern.append("*")
        if not segment.quoted and split and not expansion.safe:
            splits = True
        choices.append(sorted(expansion.values) if expansion.values is not None else [])
    dynamic = expansion_index > 0
    brace = split and bool(_BRACE.search("".join(shape)))
    values: tuple[str, ...] | None = None
    if all(choices) and _product_size(choices) <= MAX_VALUES:
        values = tuple(dict.fromkeys("".join(c) for c in itertools.product(*choices)))
    first = segments[0] if segments else Segment("")
    if first.node is not None:
        expansion = expansions[0]
        may_be_option = not expansion.safe or (
            expansion.values is not None and any(v.startswith("-") for v in expansion.values)
        )
    else:
        may_be_option = not first.quoted and split and first.text[:1] in ("*", "?", "[")
    # A brace expansion is several words, any of which can be an option ({-o,/tmp/x}).
    return Word(
        text,
        dynamic=dynamic,
        glob=glob,
        brace=brace,
        may_be_option=may_be_option or splits or brace,
        splits=splits or brace,
        values=values,
        pattern="".join(pattern) or "*",
    )


def _product_size(choices: list[list[str]]) -> int:
    size = 1
    for choice in choices:
        size *= len(choice)
    return size
