"""find: ``read`` only with tests and actions that read and print.

``-exec``/``-execdir``/``-ok`` run a command: it is judged, with ``{}`` standing for the files
find can pass (a pattern built from the starting points and ``-name``: ``find /etc -name shadow
-exec cat {} ;`` reads ``/etc/*shadow``). ``-delete`` removes files (denied over a system
folder); ``-fprint``, ``-fls``... write files. Any primary not on the list is not understood.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from executors._policy.shell._family import Command, Family, Judge
from executors._policy.shell._paths import is_system_path
from executors._policy.shell._tables import RULE_RM_ROOT
from executors._policy.shell._words import Word

#: Primaries without an argument.
_FLAGS = frozenset(
    """
    -daystart -depth -d -follow -ignore_readdir_race -mount -noignore_readdir_race -noleaf -warn -nowarn -xdev
    -empty -executable -false -nogroup -nouser -readable -true -writable -print -print0 -ls -prune -quit
    -not -a -and -o -or ! ( ) ,
    """.split()
)
#: Primaries with one argument (a number, a pattern, a name...).
_VALUED = frozenset(
    """
    -maxdepth -mindepth -regextype -amin -anewer -atime -cmin -cnewer -ctime -fstype -gid -group -ilname -iname -inum
    -ipath -iregex -iwholename -links -lname -mmin -mtime -name -newer -path -perm -regex -samefile -size -type -uid
    -used -user -wholename -xtype -context -printf -files0-from
    """.split()
)
_NEWER_XY = re.compile(r"-newer[aBcmt][aBcmt]")
_LEVEL = re.compile(r"-O\d")
_LEADING = frozenset({"-H", "-L", "-P", "-D"})
_WRITES = frozenset({"-fprint", "-fprint0", "-fprintf", "-fls"})
_RUNS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_VAGUE = frozenset({"-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex", "-lname", "-ilname", "-o",
                    "-or"})  # fmt: skip


class FindValidator(Family):
    """The validator of find."""

    names: ClassVar[frozenset[str]] = frozenset({"find"})

    def validate(self, command: Command, judge: Judge) -> None:
        args = command.args
        index = 0
        # Leading options: -H -L -P, -D debugopts, -Olevel.
        while index < len(args) and (args[index].text in _LEADING or _LEVEL.fullmatch(args[index].text)):
            index += 2 if args[index].text == "-D" else 1
        paths: list[Word] = []
        while index < len(args) and not _starts_expression(args[index]):
            paths.append(args[index])
            index += 1
        for path in paths:
            if path.may_be_option:
                judge.write(f"find: {path.text} is only known at run time and could be a primary")
                return
        expression = args[index:]
        texts = [w.text for w in expression]
        found = _found_by(paths, texts)
        position = 0
        while position < len(expression):
            word = expression[position]
            text = word.text
            if word.dynamic or word.may_be_option:
                judge.write(f"find: {text} is only known at run time")
                return
            if text in _RUNS:
                end = position + 1
                while end < len(expression) and texts[end] not in (";", "+"):
                    end += 1
                inner = [_substitute(w, found) for w in expression[position + 1 : end]]
                judge.argv(inner, command.depth, reads_stdin=False)
                position = end + 1
            elif text == "-delete":
                if not paths or any(is_system_path(p.pattern if p.is_pattern else p.text, pattern=p.is_pattern)
                                    for p in paths):  # fmt: skip
                    judge.deny(RULE_RM_ROOT, "find -delete over a system folder")
                else:
                    judge.destructive("find -delete removes files")
                position += 1
            elif text in _WRITES:
                judge.write(f"find {text} writes a file")
                position += 3 if text == "-fprintf" else 2
            elif text in _FLAGS:
                position += 1
            elif text in _VALUED or _NEWER_XY.fullmatch(text):
                if text == "-files0-from" and position + 1 < len(expression):
                    judge.reads([expression[position + 1]])
                position += 2
            else:
                judge.write(f"find: {text} is not a primary the policy knows to be read-only")
                return


def _starts_expression(word: Word) -> bool:
    return word.text.startswith("-") or word.text in ("(", "!", ")", ",")


def _substitute(word: Word, found: Word) -> Word:
    if "{}" not in word.text:
        return word
    pattern = word.text.replace("{}", found.pattern)
    return Word(word.text.replace("{}", found.pattern), dynamic=True, glob=True, pattern=pattern)


def _found_by(paths: Sequence[Word], texts: Sequence[str]) -> Word:
    """What ``{}`` stands for: a file under the paths matching ``-name``, as a glob pattern."""
    names = [texts[i + 1] for i in range(len(texts) - 1) if texts[i] in ("-name", "-iname")]
    name = names[-1] if len(names) == 1 and not _VAGUE.intersection(texts) else "*"
    root = paths[0].text if len(paths) == 1 and not paths[0].is_pattern else "*"
    if not paths:
        root = "."
    pattern = f"{root.rstrip('/')}/*{name}"
    return Word(pattern, dynamic=True, glob=True, pattern=pattern)
