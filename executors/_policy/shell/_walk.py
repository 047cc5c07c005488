"""The parse walk: a command line parsed with bashlex, and every piece of it judged.

Lists, pipelines, subshells, groups, ``if``/``for``/``while``, command and process substitutions,
redirections, here-documents, assignments and expansions are walked here; each simple command
found anywhere goes to its family's validator (``_registry``). What this module decides itself:

* a command name must be a literal word (``$CMD``, globs, braces in command position are denied);
* a word is understood when its expansions are simple variables, ``$(...)``/backticks/``<(...)``
  (whose inner commands are judged), ``~``; any other ``${...}`` form, or a word bash and bashlex
  read differently, makes the command ``write``; ``$'...'`` is denied;
* variables set to literal text earlier in the line are followed (``f=/etc/shadow; cat $f``);
  setting one that changes what programs run (``BASH_ENV``, ``LD_*``...) is denied, exporting any
  name that is not known to be harmless is ``write``;
* output may only be redirected to ``/dev/null`` (or duplicated, ``2>&1``); input redirections are
  reads like file operands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from contract import RiskClass
from executors._policy._assessment import Assessment
from executors._policy.http import check_url
from executors._policy.shell import _paths
from executors._policy.shell._family import Command, ShellRules
from executors._policy.shell._grammar import bashlex
from executors._policy.shell._registry import validator_for
from executors._policy.shell._tables import (
    HARMLESS_VARIABLES,
    MAX_NESTING,
    RULE_ANSI_C,
    RULE_CREDENTIALS,
    RULE_DANGEROUS_ENV,
    RULE_DYNAMIC,
    RULE_FUNCTION,
    RULE_UNPARSEABLE,
    dangerous_env,
    harmless_export,
    harmless_shell_variable,
)
from executors._policy.shell._words import ANYTHING, SAFE_TOKEN, Expansion, Word, build, scan

LITERAL_NAME = re.compile(r"[A-Za-z0-9_./+:@%-][A-Za-z0-9_./+:@%\[-]*")
URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
# Builtins that take variable names: bash evaluates an array subscript in a name (``a[$(cmd)]``,
# or ``a[x]`` with x holding one) as arithmetic, which runs command substitutions.
NAME_TAKING_BUILTINS = frozenset(
    "read unset declare typeset local export readonly mapfile readarray getopts wait printf test [".split()
)
ARRAY_SUBSCRIPT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\[(?!\d+\])")
#: ``${...}`` forms that set the variable they name when it is unset or empty.
_ASSIGNING_EXPANSION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):?=")
#: What ``<(...)`` and ``>(...)`` become: a descriptor of this shell.
_PROCESS_SUBSTITUTION = Expansion(frozenset({"/dev/fd/63"}), safe=True)
_PARSE_ERRORS = (
    bashlex.errors.ParsingError,
    NotImplementedError,
    AttributeError,
    IndexError,
    TypeError,
    ValueError,
    AssertionError,
    RecursionError,
)


@dataclass(frozen=True)
class _Context:
    #: The standard input of what is visited is a pipe.
    pipe_tail: bool = False
    #: What is visited certainly runs, in this shell, after what came before (so an assignment
    #: there replaces the variable's value rather than adding a possible one).
    certain: bool = True


@dataclass
class ShellAnalysis:
    """One command line being judged; the ``Judge`` every validator reports to."""

    rules: ShellRules
    assessment: Assessment = field(default_factory=Assessment)
    _variables: dict[str, Expansion] = field(default_factory=dict)

    # -- what validators report ------------------------------------------------------------------

    def write(self, reason: str) -> None:
        self.assessment.escalate(RiskClass.WRITE, reason)

    def destructive(self, reason: str) -> None:
        self.assessment.escalate(RiskClass.DESTRUCTIVE, reason)

    def deny(self, rule: str, reason: str) -> None:
        self.assessment.deny(rule, reason)

    def reads(self, words: Iterable[Word], *, listing: bool = False) -> None:
        """``words`` name files that are read: credential files are denied, aliases are ``write``."""
        for word in words:
            pattern = word.is_pattern and not listing
            for form in word.forms():
                if _paths.names_credentials(form, pattern=pattern, contents=not listing):
                    if word.values is None:
                        self.deny(RULE_CREDENTIALS, f"{word.text or 'a word'} is only known at run time and may "
                                                    "name a credential file")  # fmt: skip
                    elif _paths.RAW_DEVICES.match(_paths.normalise(form)):
                        self.deny(RULE_CREDENTIALS, f"{form} is a raw disk or memory, which holds every file's content")
                    else:
                        self.deny(RULE_CREDENTIALS, f"{word.text or form} holds credentials")
                    break
                reason = None if word.is_pattern or listing else _paths.alias_reason(form)
                if reason:
                    self.write(reason)

    def searches(self, name: str, folders: Iterable[Word]) -> None:
        """``name`` reads every file under ``folders``: denied where credential files live."""
        for folder in folders:
            if any(_paths.searches_credentials(form, pattern=folder.is_pattern) for form in folder.forms()):
                self.deny(RULE_CREDENTIALS, f"{name} searches {folder.text or 'a run-time folder'}, "
                                            "where credential files live")  # fmt: skip
                return

    def nested(self, text: str, depth: int) -> None:
        """A shell string run by a command (``bash -c``, ``watch``, ``ssh host ...``): its own shell."""
        outer = self._variables
        self._variables = {}
        try:
            self.run(text, depth + 1)
        finally:
            self._variables = outer

    def argv(self, words: Sequence[Word], depth: int, *, reads_stdin: bool) -> None:
        """Judge one command given as words: its name first, then its arguments."""
        if not words:
            return
        head = words[0]
        if head.text != "[" and (
            head.dynamic or head.glob or head.brace or head.not_understood or not LITERAL_NAME.fullmatch(head.text)
        ):
            self.deny(RULE_DYNAMIC, f"the command name {head.text or '(empty)'!r} is only known at run time")
            return
        name = os.path.basename(head.text)
        if "/" in head.text and _paths.normalise(os.path.dirname(head.text) or ".") not in _paths.TRUSTED_BIN_DIRS:
            self.write(f"{head.text} is not the system's {name}")
        args = list(words[1:])
        self.assessment.subjects.append(" ".join(w.text for w in words))
        if name in NAME_TAKING_BUILTINS and _array_subscript_names(name, args):
            self.deny(RULE_DYNAMIC, f"{name} with an array subscript in a variable name: bash evaluates it")
            return
        for arg in args:
            if arg.not_understood:
                self.write(f"{name}: {arg.text}: {arg.not_understood}")
        command = Command(name, args, depth, reads_stdin)
        if name in self.rules.read_only_commands:
            self.reads(a for a in args if not a.text.startswith("-"))
            return
        validator = validator_for(name)
        if validator is not None:
            validator.validate(command, self)
            return
        self.write(f"{name} is not a known read-only command")
        # Whatever it is, it does not get to name a credential file.
        self.reads(a for a in args if a.value is not None and not a.text.startswith("-"))

    def denials_of(self, words: Sequence[Word], depth: int, *, reads_stdin: bool) -> None:
        """Judge ``words`` as a command for the default rules only (where a wrapper's command may
        start, when the wrapper is not understood): what it denies is denied, nothing else counts."""
        outer = self.assessment
        self.assessment = Assessment()
        try:
            self.argv(words, depth, reads_stdin=reads_stdin)
        finally:
            scratch, self.assessment = self.assessment, outer
        for denial in scratch.denials:
            self.deny(denial.rule, denial.reason)

    def urls(self, urls: Iterable[str], *, resolve: bool = True) -> None:
        for url in urls:
            target = url if URL_LIKE.match(url) else f"http://{url}"
            check_url(target, self.assessment, allow_hosts=self.rules.http_allow_hosts,
                      deny_hosts=self.rules.http_deny_hosts, resolve=resolve)  # fmt: skip

    def assigns(self, name: str, *, exported: bool, value: Word | None = None, certain: bool = False) -> None:
        """A variable is set (by an assignment, ``export``, ``read``, a ``for`` loop...). ``value``:
        its new text, None when only known at run time."""
        if dangerous_env(name):
            self.deny(RULE_DANGEROUS_ENV, f"setting {name} changes what programs run or load")
        elif name.startswith(("LANG", "LC_")) and (value is None or any("/" in v for v in value.values or ("/",))):
            self.write(f"{name} names a folder of locale files (or is only known at run time)")
        elif exported and not harmless_export(name):
            self.write(f"{name} is put into the programs' environment, where it can change what they do")
        elif not exported and not (harmless_shell_variable(name) or harmless_export(name)):
            self.write(f"setting {name}, which programs may read from their environment")
        expansion = ANYTHING
        if value is not None and value.values is not None and not value.not_understood:
            expansion = Expansion.literal(frozenset(value.values))
        self._set(name, expansion, certain=certain)

    # -- the walk --------------------------------------------------------------------------------

    def run(self, command: str, depth: int) -> None:
        """Parse ``command`` and judge everything in it."""
        if depth > MAX_NESTING:
            self.deny(RULE_UNPARSEABLE, "shell strings nested too deeply to analyse")
            return
        if not command.strip():
            return
        try:
            trees = bashlex.parse(command)
        except _PARSE_ERRORS as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.deny(RULE_UNPARSEABLE, f"the policy cannot analyse this command ({reason}); simplify it")
            return
        for tree in trees:
            self._visit(tree, command, depth, _Context())

    def _visit(self, node: bashlex.ast.node, src: str, depth: int, ctx: _Context) -> None:
        kind = node.kind
        if kind == "command":
            self._simple_command(node, src, depth, ctx)
        elif kind == "pipeline":
            commands = [part for part in node.parts if part.kind not in ("pipe", "reservedword")]
            for index, part in enumerate(commands):
                # Every element of a pipeline runs in a subshell: its assignments do not last.
                self._visit(part, src, depth, _Context(pipe_tail=ctx.pipe_tail or index > 0, certain=False))
        elif kind == "list":
            self._list(node, src, depth, ctx)
        elif kind == "compound":
            self._compound(node, src, depth, ctx)
        elif kind in ("if", "while", "until"):
            for part in node.parts:
                self._visit(part, src, depth, replace(ctx, certain=False))
        elif kind == "for":
            self._for(node, src, depth, ctx)
        elif kind == "function":
            self.deny(RULE_FUNCTION, "defining shell functions is not allowed (fork bombs)")
        elif kind == "word":
            self._word(node, src, depth)
        elif kind == "assignment":
            self._assignment(node, src, depth, exported=False, certain=ctx.certain)
        elif kind == "redirect":
            self._redirect(node, src, depth)
        elif kind in ("operator", "reservedword", "pipe", "tilde", "heredoc", "parameter"):
            return
        else:
            self.deny(RULE_UNPARSEABLE, f"unsupported shell construct: {kind}")

    def _list(self, node: bashlex.ast.node, src: str, depth: int, ctx: _Context) -> None:
        parts = node.parts
        for index, part in enumerate(parts):
            if part.kind == "operator":
                continue
            before = parts[index - 1].op if index > 0 and parts[index - 1].kind == "operator" else ";"
            after = parts[index + 1].op if index + 1 < len(parts) and parts[index + 1].kind == "operator" else ";"
            # After && or ||, or sent to the background (a subshell), a part may not run in this shell.
            certain = ctx.certain and before in (";", "\n") and after != "&"
            self._visit(part, src, depth, replace(ctx, certain=certain))

    def _compound(self, node: bashlex.ast.node, src: str, depth: int, ctx: _Context) -> None:
        items = node.list
        opener = items[0] if items and items[0].kind == "reservedword" else None
        if opener is not None and opener.word == "(":
            inner = items[1] if len(items) > 1 else None
            if inner is not None and inner.kind == "compound" and inner.pos[0] == opener.pos[1]:
                self.write("an arithmetic command (( ... )), which the policy does not evaluate")
            ctx = replace(ctx, certain=False)  # a subshell
        redirects = getattr(node, "redirects", []) or []
        stdin = any(r.type in ("<", "<<", "<<-", "<<<") for r in redirects)
        for part in items:
            self._visit(part, src, depth, replace(ctx, pipe_tail=ctx.pipe_tail or stdin))
        for redirect in redirects:
            self._redirect(redirect, src, depth)

    def _for(self, node: bashlex.ast.node, src: str, depth: int, ctx: _Context) -> None:
        parts = node.parts
        name = parts[1].word if len(parts) > 1 and parts[1].kind == "word" else ""
        items: list[Word] = []
        has_in = False
        body_start = 2
        for index, part in enumerate(parts[2:], start=2):
            if part.kind == "reservedword" and part.word == "in":
                has_in = True
            elif part.kind == "reservedword" and part.word in ("do", ";", "\n"):
                body_start = index
                break
            elif part.kind == "word" and has_in:
                items.append(self._word(part, src, depth))
        value: Word | None = None
        if has_in and all(w.values is not None and not (w.glob or w.brace or w.splits) for w in items):
            value = Word(name, values=tuple(v for w in items for v in (w.values or ())))
        if not _VARIABLE.fullmatch(name):
            self.deny(RULE_UNPARSEABLE, f"a for loop over {name!r}")
            return
        self.assigns(name, exported=False, value=value, certain=True)
        for part in parts[body_start:]:
            self._visit(part, src, depth, replace(ctx, certain=False))
        self._set(name, ANYTHING, certain=False)  # after the loop: its last value, or unset

    def _simple_command(self, node: bashlex.ast.node, src: str, depth: int, ctx: _Context) -> None:
        words: list[Word] = []
        assignments = []
        stdin_redirected = False
        for part in node.parts:
            if part.kind == "word":
                words.append(self._word(part, src, depth))
            elif part.kind == "assignment":
                assignments.append(part)
            elif part.kind == "redirect":
                self._redirect(part, src, depth)
                if part.type in ("<", "<<", "<<-", "<<<"):
                    stdin_redirected = True
            else:
                self._visit(part, src, depth, replace(ctx, certain=False))
        for assignment in assignments:
            # Before a command, an assignment is that command's environment only.
            self._assignment(assignment, src, depth, exported=bool(words), certain=ctx.certain and not words)
        if words:
            self.argv(words, depth, reads_stdin=ctx.pipe_tail or stdin_redirected)

    # -- words -----------------------------------------------------------------------------------

    def _word(self, node: bashlex.ast.node, src: str, depth: int) -> Word:
        raw = src[node.pos[0] : node.pos[1]]
        segments = scan(raw, node.pos[0], list(getattr(node, "parts", None) or []))
        if segments == "ansi-c":
            self.deny(RULE_ANSI_C, "$'...' and $\"...\" quoting is not analysed; write the text plainly")
            return Word(node.word, dynamic=True, may_be_option=True, splits=True, not_understood="$'...' quoting")
        if isinstance(segments, str):
            return Word(node.word, dynamic=True, may_be_option=True, splits=True, not_understood=segments)
        expansions: list[Expansion] = []
        problems: list[str] = []
        for segment in segments:
            if segment.node is not None:
                expansion, problem = self._expansion(segment.node, src, depth)
                expansions.append(expansion)
                if problem:
                    problems.append(problem)
        word = build(segments, expansions)
        if problems:
            return replace(word, may_be_option=True, splits=True, values=None, not_understood="; ".join(problems))
        return word

    def _expansion(self, node: bashlex.ast.node, src: str, depth: int) -> tuple[Expansion, str]:
        kind = node.kind
        if kind == "commandsubstitution":
            self._visit(node.command, src, depth, _Context(certain=False))
            return ANYTHING, ""
        if kind == "processsubstitution":
            writes_into = src[node.pos[0] : node.pos[0] + 1] == ">"
            self._visit(node.command, src, depth, _Context(pipe_tail=writes_into, certain=False))
            return _PROCESS_SUBSTITUTION, ""
        if kind == "tilde":
            return SAFE_TOKEN, ""
        if kind == "parameter":
            return self._parameter(node.value, depth)
        return ANYTHING, f"a {kind} expansion"

    def _parameter(self, value: str, depth: int) -> tuple[Expansion, str]:
        if _VARIABLE.fullmatch(value):
            return self._lookup(value), ""
        if value in HARMLESS_VARIABLES or (value.startswith("#") and _VARIABLE.fullmatch(value[1:])):
            return SAFE_TOKEN, ""  # $?, $$, $#, ${#x}: numbers and flags
        if value in ("@", "*", "0") or value.isdigit():
            return ANYTHING, ""  # positional parameters: a nested shell's arguments
        assigned = _ASSIGNING_EXPANSION.match(value)
        if assigned and dangerous_env(assigned.group(1)):
            self.deny(RULE_DANGEROUS_ENV, f"${{{value}}} sets {assigned.group(1)}")
        if "$(" in value or "`" in value:
            # Not understood, but what it would run still meets the default rules.
            inner = re.sub(r"^[!#]?[^:=+?#%/^,@-]*", "", value).lstrip(":=+?#%/^,@-")
            self.nested(f": {inner}", depth)
        return ANYTHING, f"${{{value}}} is an expansion form the policy does not follow"

    def _lookup(self, name: str) -> Expansion:
        known = self._variables.get(name)
        if known is not None:
            return known
        return SAFE_TOKEN if name in HARMLESS_VARIABLES else ANYTHING

    def _set(self, name: str, expansion: Expansion, *, certain: bool) -> None:
        self._variables[name] = expansion if certain else self._lookup(name).union(expansion)

    def _assignment(self, node: bashlex.ast.node, src: str, depth: int, *, exported: bool, certain: bool) -> None:
        match = _ASSIGNMENT.match(node.word)
        raw = src[node.pos[0] : node.pos[1]]
        raw_match = _ASSIGNMENT.match(raw)
        if match is None or raw_match is None:
            self.deny(RULE_UNPARSEABLE, f"an assignment the policy cannot read: {node.word}")
            return
        name, append = match.group(1), match.group(2)
        start = raw_match.end()
        parts = list(getattr(node, "parts", None) or [])
        segments = scan(raw[start:], node.pos[0] + start, parts)
        value: Word | None = None
        if segments == "ansi-c":
            self.deny(RULE_ANSI_C, "$'...' and $\"...\" quoting is not analysed; write the text plainly")
        elif isinstance(segments, str):
            self.write(f"the value of {name}: {segments}")
        else:
            expansions = []
            for segment in segments:
                if segment.node is not None:
                    expansion, problem = self._expansion(segment.node, src, depth)
                    expansions.append(expansion)
                    if problem:
                        self.write(f"{name}={problem}")
            value = build(segments, expansions, split=False)
        self.assigns(name, exported=exported, value=None if append else value, certain=certain)

    # -- redirections ----------------------------------------------------------------------------

    def _redirect(self, node: bashlex.ast.node, src: str, depth: int) -> None:
        kind = node.type
        target = node.output
        if kind in ("<<", "<<-"):
            heredoc = getattr(node, "heredoc", None)
            if heredoc is not None:
                self._heredoc(heredoc.value)
            return
        if not hasattr(target, "kind"):
            return  # 2>&1, >&-, <&3: duplicating or closing a descriptor opens nothing
        word = self._word(target, src, depth)
        if word.not_understood:
            self.write(f"redirection to {word.text}: {word.not_understood}")
        if kind == "<<<":
            return
        if kind in (">&", "<&") and word.value is not None and (word.value.isdigit() or word.value == "-"):
            return
        for form in word.forms():
            self._socket(form)
        if kind in ("<", "<&"):
            self.reads([word])
            return
        path = word.value
        if path == _paths.DISCARD:
            return
        if path is None:
            self.write("output redirected to a file named at run time")
        elif _paths.harmful_write_target(path):
            self.deny("shell.device-write", f"writing to {path} can destroy the system")
        else:
            self.write(f"output redirected into {path}")

    def _heredoc(self, body: str) -> None:
        # bashlex does not parse the body of a here-document, which bash expands (unquoted
        # delimiter; a quoted one does not parse at all).
        if re.search(r"\$\(|`", body):
            self.deny(RULE_DYNAMIC, "a here-document with $(...) or backticks runs commands the policy cannot see")
        for match in re.finditer(r"(?<!\\)\$(\{[^}]*\}|\(\(|\[)", body):
            text = match.group(1)
            if text.startswith("{") and (_VARIABLE.fullmatch(text[1:-1]) or text[1:-1] in HARMLESS_VARIABLES):
                continue
            self.write(f"the here-document expands ${text}, a form the policy does not follow")
            return

    def _socket(self, path: str) -> None:
        """bash opens ``/dev/tcp/HOST/PORT`` as a connection: the metadata guard applies to it."""
        parts = path.split("/")
        if len(parts) >= 4 and parts[:3] in (["", "dev", "tcp"], ["", "dev", "udp"]):
            host = parts[3]
            port = parts[4] if len(parts) > 4 else ""
            host = f"[{host}]" if ":" in host else host
            self.urls([f"http://{host}:{port}/" if port.isdigit() else f"http://{host}/"])
            self.write(f"{path} opens a network connection")


def _array_subscript_names(name: str, args: Sequence[Word]) -> bool:
    if name in ("printf", "test", "["):  # only the operand of -v names a variable
        names = [args[i + 1] for i in range(len(args) - 1) if args[i].text == "-v"]
    else:
        names = list(args)
    return any(ARRAY_SUBSCRIPT.match(word.text) for word in names)
