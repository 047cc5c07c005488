"""Shells and interpreters: bash/sh -c, python, perl...; eval, source, trap.

``bash -c 'TEXT'`` is a command line of its own: TEXT is judged like the task's, in a shell that
knows none of this one's variables. A shell or interpreter given a script runs what the policy
cannot read (``write``); given code on its standard input, it is denied (code piped into a
shell); given inline code (``python -c``), it is ``destructive`` for lack of a better answer.
``eval`` and ``alias`` turn text into code and are denied.
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._family import Command, Family, Judge
from executors._policy.shell._options import parse, table
from executors._policy.shell._tables import (
    INTERPRETERS,
    RULE_DYNAMIC,
    RULE_EVAL,
    RULE_PIPE_TO_INTERPRETER,
    RULE_UNPARSEABLE,
    SHELLS,
    VERSIONED_INTERPRETER,
)

#: Shell options a read may set: errors, tracing, globbing; not allexport, not a login or
#: interactive shell (they read start-up files and run PROMPT_COMMAND).
SHELL_OPTIONS = frozenset("c e u x v f n p h B E T C r".split())
SHELL_LONG = frozenset({"--norc", "--noprofile", "--posix", "--noediting", "--restricted"})
SET_O_NAMES = frozenset(
    "errexit nounset xtrace pipefail noglob noclobber verbose posix errtrace functrace noexec hashall braceexpand "
    "monitor notify physical".split()
)
INLINE_CODE_FLAGS = frozenset({"-c", "-e", "-E", "-r", "--eval", "-x", "--exec", "-p", "-n"})
JSON_TOOL = table("--sort-keys --indent= --compact --no-ensure-ascii --json-lines --tab --no-indent -h --help")
_PYTHON_FLAGS = frozenset({"-I", "-E", "-s", "-S", "-P", "-B", "-u", "-q"})


class Interpreters(Family):
    """The validator of shells, interpreters and the builtins that turn text into code."""

    names: ClassVar[frozenset[str]] = frozenset({*SHELLS, *INTERPRETERS, "eval", "alias", "fc", "source", ".", "trap"})

    def claims(self, name: str) -> bool:
        return bool(VERSIONED_INTERPRETER.fullmatch(name))

    def validate(self, command: Command, judge: Judge) -> None:
        name = command.name
        if name in ("eval", "alias", "fc"):
            judge.deny(RULE_EVAL, f"{name} runs text as code, which the policy cannot check")
        elif name in ("source", "."):
            judge.write(f"{name} runs a script the policy cannot read")
            judge.reads(command.args[:1])
        elif name == "trap":
            self._trap(command, judge)
        elif name in SHELLS:
            self._shell(command, judge)
        else:
            self._interpreter(command, judge)

    def _trap(self, command: Command, judge: Judge) -> None:
        operands = [w for w in command.args if w.text not in ("-l", "-p", "--")]
        if not operands or operands[0].value in ("", "-"):
            return  # list, reset or ignore signals
        action = operands[0]
        if action.value is None:
            judge.deny(RULE_DYNAMIC, "trap action built at run time")
        else:
            judge.nested(action.value, command.depth)

    def _shell(self, command: Command, judge: Judge) -> None:
        name, args = command.name, command.args
        command_mode = False
        reads_stdin_flag = False
        index = 0
        while index < len(args):
            word = args[index]
            text = word.text
            if word.value is None:
                break
            if text in ("--rcfile", "--init-file"):
                judge.write(f"{name} {text} runs a start-up file the policy cannot read")
                index += 2
                continue
            if text in ("-O", "+O"):
                judge.write(f"{name} {text}: shopt options the policy does not allow")
                index += 2
                continue
            if text in ("-o", "+o"):
                option = args[index + 1].value if index + 1 < len(args) else None
                if option not in SET_O_NAMES:
                    judge.write(f"{name} {text} {option or ''}: a shell option the policy does not allow")
                index += 2
                continue
            if text in SHELL_LONG:
                index += 1
                continue
            if text == "--":
                index += 1
                break
            if re.fullmatch(r"[-+][A-Za-z]+", text):
                letters = set(text[1:])
                if "o" in letters:  # -o NAME, also at the end of a group: -euo pipefail
                    option = args[index + 1].value if index + 1 < len(args) else None
                    if option not in SET_O_NAMES:
                        judge.write(f"{name} -o {option or ''}: a shell option the policy does not allow")
                    letters.discard("o")
                    index += 1
                command_mode = command_mode or (text[0] == "-" and "c" in letters)
                reads_stdin_flag = reads_stdin_flag or "s" in letters
                unknown = letters - SHELL_OPTIONS - {"s"}
                if unknown:
                    judge.write(f"{name} -{''.join(sorted(unknown))}: shell options the policy does not allow "
                                "(login, interactive, allexport, shopt...)")  # fmt: skip
                index += 1
                continue
            if text.startswith("-"):
                judge.write(f"{name} {text}: a shell option the policy does not allow")
                index += 1
                continue
            break
        rest = args[index:]
        if command_mode:
            if not rest:
                judge.deny(RULE_UNPARSEABLE, f"{name} -c without a command")
            elif rest[0].value is None:
                judge.deny(RULE_DYNAMIC, f"{name} -c runs a command built at run time")
            else:
                judge.nested(rest[0].value, command.depth)
        elif rest and not reads_stdin_flag:
            judge.write(f"{name} runs the script {rest[0].text}, which the policy cannot read")
            judge.reads(rest[:1])
        elif command.reads_stdin:
            judge.deny(RULE_PIPE_TO_INTERPRETER, f"{name} would run code from its input")
        else:
            judge.write(f"an interactive {name}")

    def _interpreter(self, command: Command, judge: Judge) -> None:
        name, args = command.name, command.args
        texts = [a.text for a in args]
        if name.startswith("python") and self._json_tool(command, judge):
            return
        inline = any(t in INLINE_CODE_FLAGS or re.fullmatch(r"-[A-Za-z]*[ceEr]", t) for t in texts)
        if inline:
            judge.destructive(f"{name} runs inline code the policy cannot check")
            return
        scripts = [a for a in args if not a.text.startswith("-")]
        if scripts:
            judge.write(f"{name} runs {scripts[0].text}, which the policy cannot read")
            judge.reads(scripts[:1])
        elif command.reads_stdin or "-" in texts:
            judge.deny(RULE_PIPE_TO_INTERPRETER, f"{name} would run code from its input")
        else:
            judge.write(f"{name} runs code the policy cannot check")

    def _json_tool(self, command: Command, judge: Judge) -> bool:
        """``python3 -I -m json.tool [FILE]``: formats JSON (a second operand is the file it writes)."""
        args = command.args
        index = 0
        while index < len(args) and args[index].value in _PYTHON_FLAGS:
            index += 1
        if [w.value for w in args[index : index + 2]] != ["-m", "json.tool"]:
            return False
        if not {"-I", "-P"} & {w.value for w in args[:index]}:
            # -m imports from the working folder first: a json/ planted there would run.
            judge.write("python -m json.tool imports from the working folder first; use python3 -I -m json.tool")
        parsed = parse(args[index + 2 :], JSON_TOOL)
        if parsed.problem:
            judge.write(f"python -m json.tool: {parsed.problem}")
        elif len(parsed.operands) > 1:
            judge.write(f"python -m json.tool writes {parsed.operands[1].text}")
        judge.reads(o for o in parsed.operands[:1] if o.text != "-")
        return True
