"""awk, gawk, mawk: ``read`` only for programs this validator finds free of everything that runs
commands, writes or opens files.

The program is read token by token (strings, regular expressions and comments are skipped the
way awk's lexer skips them); it is ``write`` when it uses ``system()``, a pipe (``|``, ``|&``),
output redirection in a ``print``/``printf`` statement, ``getline`` from a file, gawk's ``@``
directives and indirect calls (``@load``, ``@include``, ``@f()``), or changes ``ARGV``/``ARGC``
(which names the files awk reads). A string naming a credential file is denied. What the
validator cannot read to the end is ``write``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._allowlists import WRITES_FILE
from executors._policy.shell._family import Command, Family, Judge, check_options
from executors._policy.shell._options import table
from executors._policy.shell._paths import names_credentials
from executors._policy.shell._tables import RULE_CREDENTIALS

_LOADS = "loads code from a file"
AWK = table(
    "-F= -v= -b -c -L? -M -N -n -O -P -r -s -S -t -e= --field-separator= --assign= --characters-as-bytes "
    "--traditional --lint? --bignum --use-lc-numeric --non-decimal-data --optimize --posix --re-interval "
    "--no-optimize --sandbox --lint-old --source= --version --help -V -h -f= --file=",
    reads="-f --file",
    permute=False,
    refused={"-E": _LOADS, "--exec": _LOADS, "-i": _LOADS, "--include": _LOADS, "-l": _LOADS, "--load": _LOADS,
             "-o": WRITES_FILE, "--pretty-print": WRITES_FILE, "-p": WRITES_FILE, "--profile": WRITES_FILE,
             "-d": WRITES_FILE, "--dump-variables": WRITES_FILE, "-D": "starts a debugger",
             "--debug": "starts a debugger", "-W": "takes mawk's own options, which the policy does not read",
             "-g": WRITES_FILE, "--gen-pot": WRITES_FILE},
)  # fmt: skip
_ASSIGNMENT_OPERAND = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_TOKEN = re.compile(
    r"(?P<space>[ \t\r]+|\\\n)|(?P<newline>\n)|(?P<comment>#[^\n]*)|(?P<string>\"(?:[^\"\\\n]|\\.)*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)"
    r"|(?P<op>\|\||\|&|&&|>>|<=|>=|==|!=|!~|\+\+|--|[-+*/%^]=|[{}()\[\];,<>|!~?:=+\-*/%^$@])"
)
#: After these, a ``/`` is division; elsewhere it starts a regular expression (awk's own rule).
_OPERAND_ENDS = frozenset({"name", "number", "string", ")", "]", "$", "++", "--"})
_KEYWORDS = frozenset({"print", "printf", "return", "in", "case", "do", "else", "if", "while", "for", "delete"})
_STATEMENT_END = frozenset({";", "\n", "}", "{"})


class AwkProblem(Exception):
    """Why an awk program cannot be read to its end."""


class AwkValidator(Family):
    """The validator of awk and its variants."""

    names: ClassVar[frozenset[str]] = frozenset({"awk", "gawk", "mawk", "nawk", "busybox-awk"})

    def validate(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, AWK, files=True)
        if parsed is None:
            return
        programs = parsed.values("-e", "--source")
        operands = parsed.operands
        if parsed.has("-f", "--file"):
            judge.write(f"{command.name} -f runs a program file the policy cannot read")
        elif not programs:
            programs, operands = operands[:1], operands[1:]
        judge.reads(o for o in operands if o.text != "-" and not _ASSIGNMENT_OPERAND.match(o.text))
        for program in programs:
            if program.value is None:
                judge.write(f"an {command.name} program built at run time")
                continue
            strings, problem = check_program(program.value)
            if problem:
                judge.write(f"{command.name}: {problem}")
            for text in strings:
                if names_credentials(text, pattern=False):
                    judge.deny(RULE_CREDENTIALS, f"the {command.name} program names {text}, which holds credentials")


def check_program(program: str) -> tuple[list[str], str]:
    """The string literals of ``program``, and why it is not read-only ("" when it only reads its
    input and prints). The whole program is read, so every string is seen whatever the problem."""
    strings: list[str] = []
    problems: list[str] = []
    try:
        _scan(program, strings, problems)
    except AwkProblem as unreadable:
        problems.append(str(unreadable))
    return strings, problems[0] if problems else ""


def _scan(program: str, strings: list[str], problems: list[str]) -> None:
    previous = ""  # the kind or text of the last significant token
    depth = 0
    print_depth: int | None = None  # parenthesis depth of the print statement being read
    getline_seen = False
    index = 0
    while index < len(program):
        if program[index] == "/" and previous not in _OPERAND_ENDS:
            index = _skip_regex(program, index)
            previous = "regex"
            continue
        match = _TOKEN.match(program, index)
        if match is None:
            raise AwkProblem(f"cannot read the program at {program[index : index + 10]!r}")
        index = match.end()
        kind = match.lastgroup or ""
        text = match.group()
        if kind in ("space", "comment"):
            continue
        if kind == "string":
            strings.append(_unescape(text[1:-1]))
            previous = "string"
            continue
        if kind == "newline":
            text = "\n"
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
        if kind == "name":
            problem = _name_problem(text)
            if problem:
                problems.append(problem)
            if text in ("print", "printf"):
                print_depth = depth
            if text == "getline":
                getline_seen = True
            previous = text if text in _KEYWORDS else "name"
            continue
        if text in ("|", "|&"):
            problems.append("a pipe runs a command")
        elif text == "@":
            problems.append("gawk's @ directives and indirect calls load or call code by name")
        elif text == "<" and getline_seen:
            problems.append("getline < file reads a file the policy does not check")
        elif text in (">", ">>") and print_depth is not None and depth == print_depth:
            problems.append("print > file writes a file")
        if text in _STATEMENT_END and (print_depth is None or depth <= print_depth):
            print_depth = None
        previous = "number" if kind == "number" else text
    if depth:
        problems.append("unbalanced parentheses")


def _name_problem(name: str) -> str:
    if name == "system":
        return "system() runs a command"
    if name in ("ARGV", "ARGC"):
        return f"{name} names the files awk reads"
    if name == "extension":
        return "extension() loads a shared library"
    return ""


def _skip_regex(program: str, start: int) -> int:
    # A "/" inside a bracket expression ends the expression here even where an awk would not: the
    # rest is then read as code, which can only find more, never hide anything.
    index = start + 1
    while index < len(program):
        char = program[index]
        if char == "\n":
            break
        if char == "\\":
            index += 2
            continue
        if char == "/":
            return index + 1
        index += 1
    raise AwkProblem("an unterminated regular expression")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
