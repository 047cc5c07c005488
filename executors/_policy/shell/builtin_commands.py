"""Shell builtins and tiny utilities: echo, printf, test, cd, read, set, declare, export, sleep...

Most only print or test. Those that set variables report them (``export BASH_ENV=...`` is denied,
exporting a name not known to be harmless needs an approval); ``declare -i``, ``let`` and
``mapfile -C`` evaluate text as code (through array subscripts, or a callback) and are ``write``,
as are ``set -a`` (it exports every later assignment), ``hash -p``, ``enable`` and ``complete``.
"""

from __future__ import annotations

from typing import ClassVar

from executors._policy.shell._family import Command, Family, Judge, Reader, check_options, check_reader
from executors._policy.shell._options import table

#: They print, test, wait or move around: any argument is fine.
PLAIN = frozenset(
    "echo test [ true false : sleep seq yes expr cd pushd popd dirs wait exit return shift jobs times caller help "
    "logout type which whereis disown unset".split()
)
BC = Reader(table("-l -q -s -w -i --mathlib --quiet --standard --warn --interactive -h --help -v --version"))
READ = table("-r -s -e -a= -d= -n= -N= -p= -t= -u= -i=")
MAPFILE = table("-d= -n= -O= -s= -t -u=", refused={"-C": "runs a callback", "-c": "runs a callback"})
SET_LETTERS = frozenset("eEuxvfnCBHPThbmp")
SET_O_NAMES = frozenset(
    "errexit nounset xtrace pipefail noglob noclobber verbose posix errtrace functrace noexec hashall braceexpand "
    "monitor notify physical ignoreeof interactive-comments nolog vi emacs history histexpand".split()
)
SHOPT_NAMES = frozenset(
    "nullglob failglob dotglob globstar nocaseglob nocasematch lastpipe inherit_errexit xpg_echo checkwinsize".split()
)
DECLARE_LETTERS = frozenset("aAgrtuxlpFf")


class Builtins(Family):
    """The validator of shell builtins and the small utilities that go with them."""

    names: ClassVar[frozenset[str]] = frozenset(
        {*PLAIN, "printf", "bc", "read", "mapfile", "readarray", "getopts", "set", "shopt", "declare", "typeset",
         "local", "export", "readonly", "let", "ulimit", "umask", "hash", "history", "compgen", "complete", "bind",
         "enable", "suspend"}
    )  # fmt: skip

    def validate(self, command: Command, judge: Judge) -> None:
        name, args = command.name, command.args
        if name in PLAIN:
            return
        if name == "printf":
            self._printf(command, judge)
        elif name == "bc":
            check_reader(command, judge, BC)
        elif name == "read":
            parsed = check_options(command, judge, READ)
            for variable in (parsed.operands + parsed.values("-a")) if parsed is not None else []:
                judge.assigns(variable.text, exported=False)
        elif name in ("mapfile", "readarray"):
            parsed = check_options(command, judge, MAPFILE)
            for variable in parsed.operands[:1] if parsed is not None else []:
                judge.assigns(variable.text, exported=False)
        elif name == "getopts":
            for variable in args[1:2]:
                judge.assigns(variable.text, exported=False)
        elif name == "set":
            self._set(command, judge)
        elif name == "shopt":
            self._shopt(command, judge)
        elif name in ("declare", "typeset", "local", "export", "readonly"):
            self._declare(command, judge)
        elif name == "let":
            judge.write("let evaluates arithmetic, which runs what array subscripts hold")
        elif name in ("ulimit", "umask"):
            if any(not w.text.startswith("-") for w in args):
                judge.write(f"{name} with a value changes the shell's limits")
        elif name == "hash":
            if any(w.text.startswith("-") and "p" in w.text for w in args):
                judge.write("hash -p makes a name run another program")
        elif name == "history":
            if args:
                judge.write("history with options reads or writes a history file")
        elif name == "compgen":
            if any(w.text.startswith("-") and ("C" in w.text or "F" in w.text) for w in args):
                judge.write("compgen -C/-F runs a command")
        else:  # complete, bind, enable, suspend
            judge.write(f"{name} changes the shell (completions, key bindings, builtins, jobs)")

    def _printf(self, command: Command, judge: Judge) -> None:
        args = command.args
        if not args:
            return
        first = args[0]
        if first.value is None and first.may_be_option:
            judge.write("printf: its first argument is only known at run time and could be -v")
        elif first.value == "-v" and len(args) > 1:
            judge.assigns(args[1].text, exported=False)

    def _set(self, command: Command, judge: Judge) -> None:
        args = command.args
        index = 0
        while index < len(args):
            word = args[index]
            text = word.text
            index += 1
            if word.value is None:
                judge.write(f"set: {text} is only known at run time")
                return
            if text == "--" or text[:1] not in ("-", "+") or text in ("-", "+"):
                return  # the rest are positional parameters
            if "o" in text[1:]:  # -o NAME, also at the end of a group: -euo pipefail
                option = args[index].value if index < len(args) else None
                index += 1
                if option is not None and option not in SET_O_NAMES:
                    judge.write(f"set -o {option}: a shell option the policy does not allow (allexport, keyword...)")
                text = text.replace("o", "")
            if set(text[1:]) - SET_LETTERS:
                judge.write(f"set {text}: shell options the policy does not allow (-a exports every assignment, "
                            "-k puts any in the environment)")  # fmt: skip

    def _shopt(self, command: Command, judge: Judge) -> None:
        options = [w for w in command.args if w.text.startswith("-")]
        names = [w for w in command.args if not w.text.startswith("-")]
        setting = any(w.text in ("-s", "-u") for w in options)
        if setting and any(n.value not in SHOPT_NAMES for n in names):
            judge.write("shopt changes a shell option the policy does not allow (extdebug, expand_aliases...)")
        elif any(w.text not in ("-s", "-u", "-p", "-q", "-o") for w in options):
            judge.write("shopt: an option the policy does not know")

    def _declare(self, command: Command, judge: Judge) -> None:
        exported = command.name == "export"
        for word in command.args:
            text = word.text
            if text.startswith(("-", "+")) and not text.startswith(("-=", "+=")) and "=" not in text:
                letters = set(text[1:])
                if text[0] == "-" and "x" in letters:
                    exported = True
                if "n" in letters and command.name != "export":  # export -n only un-exports
                    judge.write(f"{command.name} -n makes a name refer to another variable")
                if "i" in letters:
                    judge.write(f"{command.name} -i evaluates assigned values as arithmetic, which runs code")
                if letters - DECLARE_LETTERS - {"n", "i"}:
                    judge.write(f"{command.name} {text}: an option the policy does not know")
                if "f" in letters and command.name == "export":
                    judge.write("export -f exports a function")
                continue
            name, equals, _ = text.partition("=")
            name = name.removesuffix("+")
            if "[" in name or not name:
                continue  # a[1]=... is judged by the walk (array subscripts)
            if equals:
                judge.assigns(name, exported=exported, value=word.tail(len(text.partition("=")[0]) + 1))
            elif exported:
                judge.assigns(name, exported=True)
