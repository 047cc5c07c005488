"""sed: ``read`` only for scripts this validator reads through and finds read-only.

GNU sed runs programs (``e``, ``s///e``), writes files (``w``, ``W``, ``s///w``, ``-i``) and reads
files (``r``, ``R``). The script is parsed command by command, the way sed does; what is not
understood, and every one of those commands, makes it ``write``. A file an ``r`` would read is
also compared with the credential files.
"""

from __future__ import annotations

from typing import ClassVar

from executors._policy.shell._allowlists import WRITES_FILE
from executors._policy.shell._family import Command, Family, Judge, check_options
from executors._policy.shell._options import table
from executors._policy.shell._words import literal_word

_IN_PLACE = "edits files in place"
SED = table(
    "-n --quiet --silent -e= --expression= -E -r --regexp-extended -s --separate -u --unbuffered -z --null-data "
    "-l= --line-length= --posix --debug --sandbox -b --binary --help --version -f= --file=",
    reads="-f --file",
    refused={"-i": _IN_PLACE, "--in-place": _IN_PLACE, "--follow-symlinks": _IN_PLACE, "-c": _IN_PLACE,
             "--copy": _IN_PLACE, "-w": WRITES_FILE},
)  # fmt: skip
#: Commands without arguments, or whose argument (a label, a number) is harmless.
_PLAIN = frozenset("=dDgGhHnNpPxzF")
_NUMBERED = frozenset("qQlL")
_LABELLED = frozenset("btT:v")
_TEXT = frozenset("aic")


class ScriptProblem(Exception):
    """Why a sed script is not read-only, or cannot be read."""


class SedValidator(Family):
    """The validator of sed."""

    names: ClassVar[frozenset[str]] = frozenset({"sed"})

    def validate(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, SED, files=True)
        if parsed is None:
            return
        if parsed.has("-f", "--file"):
            judge.write("sed -f runs a script file the policy cannot read")
        scripts = parsed.values("-e", "--expression")
        files = parsed.operands
        if not scripts and not parsed.has("-f", "--file"):
            scripts, files = files[:1], files[1:]
        judge.reads(f for f in files if f.text != "-")
        for script in scripts:
            if script.value is None:
                judge.write("a sed script built at run time")
                continue
            try:
                for path in read_files(script.value):
                    judge.reads([literal_word(path)])
                check_script(script.value)
            except ScriptProblem as problem:
                judge.write(f"sed: {problem}")


def read_files(script: str) -> list[str]:
    """The files ``r``/``R`` commands in ``script`` would read (a rough scan: for the credential check)."""
    files = []
    for line in script.splitlines():
        stripped = line.strip().lstrip("0123456789$,/!~+ ")
        if stripped[:1] in ("r", "R") and stripped[1:2] in (" ", "\t"):
            files.append(stripped[1:].strip())
    return files


def check_script(script: str) -> None:
    """Raise ``ScriptProblem`` unless every command of ``script`` only reads and prints."""
    reader = _Script(script)
    reader.commands()


class _Script:
    def __init__(self, text: str):
        self.text = text
        self.index = 0

    def peek(self) -> str:
        return self.text[self.index] if self.index < len(self.text) else ""

    def skip_blanks(self) -> None:
        while self.peek() in (" ", "\t"):
            self.index += 1

    def commands(self) -> None:
        depth = 0
        while True:
            while self.peek() in (" ", "\t", "\n", ";"):
                self.index += 1
            char = self.peek()
            if not char:
                break
            if char == "#":
                self.until_newline()
                continue
            if char == "}":
                depth -= 1
                self.index += 1
                if depth < 0:
                    raise ScriptProblem("unbalanced '}'")
                continue
            self.address()
            self.skip_blanks()
            if self.peek() == ",":
                self.index += 1
                self.skip_blanks()
                self.address(second=True)
                self.skip_blanks()
            while self.peek() == "!":
                self.index += 1
                self.skip_blanks()
            char = self.peek()
            if char == "{":
                depth += 1
                self.index += 1
                continue
            self.command()
        if depth:
            raise ScriptProblem("unbalanced '{'")

    def address(self, *, second: bool = False) -> None:
        char = self.peek()
        if char.isdigit() or (second and char in "+~"):
            self.index += 1
            while self.peek().isdigit():
                self.index += 1
            if self.peek() == "~":
                self.index += 1
                while self.peek().isdigit():
                    self.index += 1
        elif char == "$":
            self.index += 1
        elif char in ("/", "\\"):
            if char == "\\":
                self.index += 1
            delimiter = self.peek()
            if not delimiter or delimiter == "\n":
                raise ScriptProblem("an address without its delimiter")
            self.index += 1
            self.delimited(delimiter)
            while self.peek() in ("I", "M"):
                self.index += 1

    def delimited(self, delimiter: str) -> None:
        """Skip to just after the next unescaped ``delimiter``."""
        while True:
            char = self.peek()
            if not char:
                raise ScriptProblem(f"an unterminated {delimiter}...{delimiter}")
            self.index += 1
            if char == "\\":
                self.index += 1
            elif char == delimiter:
                return

    def until_newline(self) -> None:
        end = self.text.find("\n", self.index)
        self.index = len(self.text) if end < 0 else end

    def end_of_command(self) -> None:
        self.skip_blanks()
        if self.peek() not in ("", "\n", ";", "}", "#"):
            raise ScriptProblem(f"unexpected {self.text[self.index : self.index + 10]!r}")

    def command(self) -> None:
        char = self.peek()
        self.index += 1
        if char in _PLAIN:
            self.end_of_command()
        elif char in _NUMBERED:
            self.skip_blanks()
            while self.peek().isdigit():
                self.index += 1
            self.end_of_command()
        elif char in _LABELLED:
            while self.peek() not in ("", "\n", ";"):
                self.index += 1
        elif char in _TEXT:
            self.text_argument()
        elif char == "s":
            self.substitute()
        elif char == "y":
            delimiter = self.peek()
            if not delimiter or delimiter in "\\\n":
                raise ScriptProblem("y without its delimiter")
            self.index += 1
            self.delimited(delimiter)
            self.delimited(delimiter)
            self.end_of_command()
        elif char in ("e", "w", "W"):
            raise ScriptProblem(f"the {char!r} command {'runs a command' if char == 'e' else 'writes a file'}")
        elif char in ("r", "R"):
            raise ScriptProblem(f"the {char!r} command reads a file into the output")
        else:
            raise ScriptProblem(f"{char!r} is not a sed command the policy knows to be read-only")

    def text_argument(self) -> None:
        # a\ (newline) text, or GNU's one-line "a text": to the end of the line, and on across
        # lines that end with a backslash.
        while True:
            char = self.peek()
            if not char:
                return
            self.index += 1
            if char == "\\":
                self.index += 1
            elif char == "\n":
                return

    def substitute(self) -> None:
        delimiter = self.peek()
        if not delimiter or delimiter in "\\\n":
            raise ScriptProblem("s without its delimiter")
        self.index += 1
        self.delimited(delimiter)
        self.delimited(delimiter)
        while True:
            char = self.peek()
            if char in ("g", "p", "i", "I", "m", "M") or char.isdigit():
                self.index += 1
            elif char == "e":
                raise ScriptProblem("s///e runs the pattern space as a command")
            elif char == "w":
                raise ScriptProblem("s///w writes a file")
            else:
                break
        self.end_of_command()
