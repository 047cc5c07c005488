"""Text filters: cat, head, tail, grep, cut, sort, uniq, wc, tr, diff, jq, xxd, tee...

They read files or standard input and print. Each has an option allow-list (``_allowlists.TEXT``);
the files they read, and the files some options name (``sort --files0-from``, ``grep -f``), must
not be credential files. A recursive grep or diff searches folders: not where credential files
live. ``tee`` is a filter only when it writes nowhere but ``/dev/null``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._allowlists import GREP, RIPGREP, TEXT
from executors._policy.shell._family import Command, Family, Judge, Reader, check_options, check_reader
from executors._policy.shell._options import table
from executors._policy.shell._paths import DISCARD, harmful_write_target
from executors._policy.shell._tables import RULE_DEVICE_WRITE
from executors._policy.shell._words import UNKNOWN, literal_word

_GREPS: dict[str, Reader] = {"grep": GREP, "egrep": GREP, "fgrep": GREP, "zgrep": GREP, "rg": RIPGREP}
_RECURSIVE = ("-r", "-R", "--recursive", "--dereference-recursive")
JQ = table(
    "-r -j -a -c -n -s -e -S -C -M -R -0 -h -V --raw-output --join-output --ascii-output --compact-output "
    "--null-input --slurp --exit-status --sort-keys --color-output --monochrome-output --raw-input --tab --indent= "
    "--seq --stream --stream-errors --raw-output0 --unbuffered --args --jsonargs -f= --from-file= --help --version",
    reads="-f --from-file",
    refused={"-L": "loads jq modules from a folder", "--library-path": "loads jq modules from a folder"},
)
#: jq options followed by a name and a value; the value of the last two is a file it reads.
_JQ_PAIRS = {"--arg": False, "--argjson": False, "--slurpfile": True, "--rawfile": True}
TEE = table("-a -i -p --append --ignore-interrupts --output-error? --help --version")
_XXD_FLAGS = re.compile(r"-(a|b|C|E|e|h|i|p|ps|plain|postscript|r|u|d|autoskip|bits|capitalize|EBCDIC|include"
                        r"|uppercase|version)")  # fmt: skip
_XXD_VALUED = re.compile(r"-(c|g|l|n|o|s|R|cols|groupsize|len|name|offset|seek)")
_XXD_ATTACHED = re.compile(r"-[cglos][-+]?\w+")


class TextFilters(Family):
    """The validator of commands that filter text."""

    names: ClassVar[frozenset[str]] = frozenset({*TEXT, *_GREPS, "jq", "xxd", "tee"})

    def validate(self, command: Command, judge: Judge) -> None:
        name = command.name
        if name in _GREPS:
            self._grep(command, judge)
        elif name == "jq":
            self._jq(command, judge)
        elif name == "xxd":
            self._xxd(command, judge)
        elif name == "tee":
            self._tee(command, judge)
        else:
            if name == "strings" and any(w.text.startswith("@") for w in command.args):
                judge.write("strings reads more options from an @file")
            parsed = check_reader(command, judge, TEXT[name])
            if parsed is not None and name == "diff" and parsed.has(*_RECURSIVE):
                judge.searches("diff -r", parsed.operands)
                if not parsed.has("--no-dereference"):
                    judge.write("diff -r follows symbolic links out of the folders it compares (add --no-dereference)")
            if parsed is not None and name == "sort" and parsed.has("--files0-from"):
                judge.reads([UNKNOWN])  # and prints the files the list names: only known at run time

    def _grep(self, command: Command, judge: Judge) -> None:
        reader = _GREPS[command.name]
        parsed = check_reader(command, judge, reader)
        if parsed is None:
            return
        recursive = command.name == "rg" or parsed.has(*_RECURSIVE)
        if not recursive:
            return
        if parsed.has("-R", "--dereference-recursive"):
            judge.write(f"{command.name} -R follows symbolic links out of the folders it is given")
        folders = parsed.operands if parsed.has(*reader.pattern_options) else parsed.operands[1:]
        judge.searches(command.name, folders or [literal_word(".")])

    def _jq(self, command: Command, judge: Judge) -> None:
        rest = []
        args = command.args
        index = 0
        while index < len(args):
            text = args[index].text
            if text in _JQ_PAIRS:
                if index + 2 >= len(args):
                    judge.write(f"jq {text} needs a name and a value")
                    return
                if _JQ_PAIRS[text]:
                    judge.reads([args[index + 2]])
                index += 3
                continue
            rest.append(args[index])
            index += 1
        parsed = check_options(Command("jq", rest, command.depth, command.reads_stdin), judge, JQ, files=True)
        if parsed is None:
            return
        files = parsed.operands if parsed.has("-f", "--from-file") else parsed.operands[1:]
        judge.reads(files)

    def _xxd(self, command: Command, judge: Judge) -> None:
        files = []
        args = command.args
        index = 0
        while index < len(args):
            word = args[index]
            index += 1
            if word.value is None or word.may_be_option:
                judge.write(f"xxd: {word.text} is only known at run time")
                return
            text = word.value
            if _XXD_FLAGS.fullmatch(text) or _XXD_ATTACHED.fullmatch(text):
                continue
            if _XXD_VALUED.fullmatch(text):
                index += 1
            elif text.startswith("-") and text != "-":
                judge.write(f"xxd: {text} is not an option the policy knows to be read-only")
                return
            else:
                files.append(word)
        if len(files) > 1:
            judge.write(f"xxd writes its output to {files[1].text}")
        judge.reads(f for f in files[:1] if f.text != "-")

    def _tee(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, TEE)
        files = parsed.operands if parsed is not None else [w for w in command.args if not w.text.startswith("-")]
        for file in files:
            path = file.value
            if path is not None and harmful_write_target(path):
                judge.deny(RULE_DEVICE_WRITE, f"writing to {path} can destroy the system")
            elif path != DISCARD:
                judge.write(f"tee writes {file.text or 'a file'}")
