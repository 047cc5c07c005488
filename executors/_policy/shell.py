"""Risk of a shell command line, found by parsing it the way bash would.

The command is parsed with bashlex into simple commands, pipelines, lists, substitutions and
redirections, so quoting (``r''m``, ``"rm"``, ``r\\m``), chaining (``;``, ``&&``, ``||``, newlines),
``$(...)``, backticks, process substitution, subshells and ``bash -c '...'`` strings are all seen
through. Every simple command found anywhere is judged on its own:

* its name must be literal: ``$CMD``, ``${IFS}``, ``$'\\x72m'``, globs and brace expansions in
  command position are denied, since what would run cannot be known before it runs;
* a table of known read-only commands (``df``, ``grep``, ``journalctl``...) and of commands that are
  read-only only with some options (``curl`` without upload, ``sed`` without ``-i``...) decides the
  risk; anything else is ``write`` and needs an approval;
* obviously destructive forms (``rm -rf /``, ``mkfs``, ``shutdown``, ``dd of=/dev/sda``, fork bombs,
  code piped into an interpreter...) are denied whatever the approval;
* wrappers (``sudo``, ``env``, ``timeout``, ``xargs``, ``watch``, ``ssh host cmd``...) are unwrapped
  and what they run is judged; SQL given to ``psql -c``/``mysql -e`` and Redis commands given to
  ``redis-cli`` go through the SQL and Redis analysers.

What cannot be parsed is denied with the parser's reason: the policy never guesses.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import bashlex
import bashlex.errors

from executors._policy._assessment import Assessment
from executors._policy.http import check_url
from executors._policy.redis import analyze_redis
from executors._policy.sql import analyze_sql
from executors._spec import RiskClass

READ_ONLY_COMMANDS = frozenset(
    """
    top head tail cat tac nl df free du netstat uniq ss grep egrep fgrep zgrep rg ag ping ping6
    traceroute traceroute6 tracepath mtr nslookup dig host getent jq wc cut tr column paste join
    comm diff cmp fold expand unexpand fmt rev od xxd hexdump strings file stat ls dir readlink
    realpath basename dirname pwd echo printf true false test [ : sleep seq yes uptime w who
    whoami id groups uname arch nproc lscpu lsmem lsblk lspci lsusb lsof ps pgrep pidof pstree
    vmstat iostat mpstat pidstat sar printenv locale md5sum sha1sum sha224sum sha256sum sha384sum
    sha512sum cksum b2sum base32 base64 zcat bzcat xzcat zstdcat less more expr bc numfmt cal
    getconf ulimit type which whereis cd pushd popd unset wait exit return read shift
    timedatectl hostnamectl loginctl findmnt blkid free iotop slabtop pmap ldd lslocks lsipc lsns
    last lastlog users dmidecode ipcs nstat ifconfig route arp arping iwconfig curl-config
    """.split()
)
# Command names whose presence anywhere after a wrapper is re-checked from that word on, so a
# mis-parsed wrapper option (``sudo -u root rm -rf /``) cannot hide them.
ALWAYS_RESCANNED = frozenset(
    {
        "rm",
        "dd",
        "mkfs",
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "init",
        "telinit",
        "kill",
        "chmod",
        "chown",
        "chgrp",
        "mv",
        "shred",
        "wipefs",
        "fdisk",
        "sfdisk",
        "parted",
        "sh",
        "bash",
        "zsh",
        "dash",
        "ksh",
        "eval",
        "systemctl",
        "find",
        "xargs",
    }
)
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "busybox", "csh", "tcsh"})
INTERPRETERS = frozenset(
    {
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "node",
        "nodejs",
        "php",
        "lua",
        "tclsh",
        "Rscript",
        "deno",
        "bun",
        "pwsh",
        "powershell",
        "osascript",
        "expect",
        "gdb",
    }
)
INLINE_CODE_FLAGS = frozenset({"-c", "-e", "-E", "-r", "--eval", "-x", "--exec", "-p", "-n"})
SAFE_PYTHON_MODULES = frozenset({"json.tool"})
DANGEROUS_ENV = frozenset(
    {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PATH",
        "BASH_ENV",
        "ENV",
        "IFS",
        "PROMPT_COMMAND",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "GLOBIGNORE",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "LESSOPEN",
        "LESSCLOSE",
        "PAGER",
        "EDITOR",
        "VISUAL",
        "BROWSER",
        "TMPDIR",
        "GCONV_PATH",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "RES_OPTIONS",
        "HISTFILE",
        # Where programs read their configuration, which can name commands to run (git's
        # core.fsmonitor, curl's .curlrc, Python's warning filters importing modules).
        "HOME",
        "XDG_CONFIG_HOME",
        "CURL_HOME",
        "WGETRC",
        "PYTHONWARNINGS",
        "PERL5DB",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
    }
)
# Whole families: the dynamic loader (LD_AUDIT, LD_DEBUG_OUTPUT writes files...), git
# (GIT_EXTERNAL_DIFF and GIT_PAGER run commands, GIT_DIR points at a repository's hooks and config),
# and bash's exported functions (BASH_FUNC_ls%%='() { ...; }' redefines ls in every bash below).
DANGEROUS_ENV_PREFIXES = ("LD_", "GIT_", "BASH_FUNC_")
DISK_WIPERS = frozenset(
    {
        "mke2fs",
        "mkswap",
        "wipefs",
        "shred",
        "fdisk",
        "sfdisk",
        "cfdisk",
        "parted",
        "sgdisk",
        "gdisk",
        "blkdiscard",
        "mkdosfs",
        "mkntfs",
        "zpool",
        "lvremove",
        "vgremove",
        "pvremove",
    }
)
POWER_COMMANDS = frozenset({"shutdown", "reboot", "halt", "poweroff"})
SYSTEM_PATHS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/usr/bin",
        "/usr/lib",
        "/usr/local",
        "/usr/sbin",
        "/var/lib",
        "/var/log",
        "/snap",
    }
)
DEVICE_PATH = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|md|dm-|loop|mapper/|disk/|mem$|kmem$|port$|sg|sr|nbd|zram)")
DANGEROUS_WRITE_TARGETS = re.compile(
    r"^(/proc/sysrq-trigger|/proc/sys/|/sys/|/etc/(passwd|shadow|group|gshadow|sudoers)|/boot/)"
)
CREDENTIAL_FILES = re.compile(
    r"(^|/)(g?shadow-?|\.pgpass|\.my\.cnf|debian\.cnf|\.netrc|\.git-credentials|id_(rsa|dsa|ecdsa|ed25519)"
    r"|\.aws/credentials|\.docker/config\.json|\.kube/config|environ|mem|\.\w*_history|[^/]*\.key"
    r"|serviceaccount/token)$"
    # Folders whose every file is a secret: Docker and Kubernetes secrets, TLS private keys.
    r"|(^|/)(run/secrets|var/run/secrets|ssl/private)(/|$)"
)
# Folders a recursive search must not read: they hold credential files (grep -r root /etc prints
# /etc/shadow's lines).
CREDENTIAL_DIRS = re.compile(
    r"/|\.|/etc|/etc/(ssl|mysql|postgresql)|/root|/home(/[^/]+)?|~[^/]*|/proc(/\w+)?|/run|/var/run|/var/lib"
    r"|.*/\.(ssh|aws|kube|docker|gnupg)|(/var)?/run/secrets(/.*)?"
)
# What a glob or brace word is compared against: could it expand to one of these?
CREDENTIAL_NAMES = (
    "shadow",
    "shadow-",
    "gshadow",
    "debian.cnf",
    "mem",
    ".bash_history",
    "server.key",
    ".pgpass",
    ".my.cnf",
    ".netrc",
    ".git-credentials",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials",
    "config.json",
    "config",
    "environ",
)
# Commands that show names, sizes and counts, not contents: ``du -sh /var/*`` reads no secret.
LISTING_COMMANDS = frozenset({"ls", "dir", "du", "stat", "file", "wc", "readlink", "realpath", "basename", "dirname"})
# Read-only commands whose operands are not files to read: ``echo $HOME`` reads no file, so its
# run-time words are not compared with credential files (``cat $f`` is).
OPERANDS_NOT_FILES = frozenset(
    """
    echo printf test [ : true false expr seq sleep yes pwd cd pushd popd type which whereis ulimit unset wait
    exit return shift read bc numfmt cal getconf id groups whoami uname arch nproc ping ping6 traceroute
    traceroute6 tracepath mtr nslookup dig host getent printenv locale date hostnamectl timedatectl
    """.split()
)
# What bash substitutes in a word at run time: parameters and command substitutions.
EXPANSION = re.compile(r"\$\{[^}]*\}|\$\([^)]*\)|`[^`]*`|\$\w+|\$[@*#?$!-]")
# Builtins that take variable names: bash evaluates an array subscript in a name (``a[$(cmd)]``,
# or ``a[x]`` with x holding one) as arithmetic, which runs command substitutions.
NAME_TAKING_BUILTINS = frozenset(
    {
        "read",
        "unset",
        "declare",
        "typeset",
        "local",
        "export",
        "readonly",
        "mapfile",
        "readarray",
        "getopts",
        "wait",
        "printf",
        "test",
        "[",
    }
)
ARRAY_SUBSCRIPT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\[(?!\d+\])")
HARMLESS_REDIRECT_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})
LITERAL_NAME = re.compile(r"[A-Za-z0-9_./+:@%-][A-Za-z0-9_./+:@%\[-]*")
URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MAX_NESTING = 6

RULE_UNPARSEABLE = "shell.unparseable"
RULE_DYNAMIC = "shell.dynamic-command"
RULE_ANSI_C = "shell.ansi-c-quoting"
RULE_RM_ROOT = "shell.rm-root"
RULE_RECURSIVE_ROOT = "shell.recursive-root"
RULE_DISK = "shell.disk-wipe"
RULE_POWER = "shell.power"
RULE_DEVICE_WRITE = "shell.device-write"
RULE_EVAL = "shell.eval"
RULE_FUNCTION = "shell.function-definition"
RULE_PIPE_TO_INTERPRETER = "shell.pipe-to-interpreter"
RULE_DANGEROUS_ENV = "shell.dangerous-env"
RULE_KILL_ALL = "shell.kill-all"
RULE_REVERSE_SHELL = "shell.reverse-shell"
RULE_CREDENTIALS = "shell.credential-file"


@dataclass(frozen=True)
class Word:
    """One shell word: its unquoted text, and whether its value is only known at run time."""

    text: str
    dynamic: bool = False
    glob: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.text)


DYNAMIC = Word("", dynamic=True)


@dataclass
class ShellRules:
    """The environment's additions to the shell policy."""

    read_only_commands: frozenset[str] = frozenset()
    http_allow_hosts: tuple[str, ...] = ()
    http_deny_hosts: tuple[str, ...] = ()
    redis_denied: frozenset[str] = frozenset()


def analyze_shell(command: str, rules: ShellRules | None = None) -> Assessment:
    """Classify ``command`` (a bash command line) and record the default rules it breaks."""
    analysis = _Analysis(rules or ShellRules())
    analysis.run(command, depth=0)
    return analysis.assessment


@dataclass
class _Analysis:
    rules: ShellRules
    assessment: Assessment = field(default_factory=Assessment)

    # -- parsing -------------------------------------------------------------------------------

    def run(self, command: str, depth: int) -> None:
        if depth > MAX_NESTING:
            self.assessment.deny(RULE_UNPARSEABLE, "shell strings nested too deeply to analyse")
            return
        if not command.strip():
            return
        if re.search(r"\$['\"]", command):
            self.assessment.deny(RULE_ANSI_C, "$'...' and $\"...\" quoting is not analysed; write the text plainly")
            return
        try:
            trees = bashlex.parse(command)
        except (
            bashlex.errors.ParsingError,
            NotImplementedError,
            AttributeError,
            IndexError,
            TypeError,
            ValueError,
            AssertionError,
        ) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.assessment.deny(RULE_UNPARSEABLE, f"the policy cannot analyse this command ({reason}); simplify it")
            return
        for tree in trees:
            self._visit(tree, command, depth, pipe_tail=False)

    def _visit(self, node: bashlex.ast.node, src: str, depth: int, *, pipe_tail: bool) -> None:
        kind = node.kind
        if kind == "command":
            self._simple_command(node, src, depth, pipe_tail=pipe_tail)
        elif kind == "pipeline":
            commands = [part for part in node.parts if part.kind != "pipe"]
            for index, part in enumerate(commands):
                self._visit(part, src, depth, pipe_tail=index > 0)
        elif kind == "list":
            for part in node.parts:
                self._visit(part, src, depth, pipe_tail=pipe_tail)
        elif kind == "compound":
            for part in node.list:
                self._visit(part, src, depth, pipe_tail=pipe_tail)
            for redirect in getattr(node, "redirects", []):
                self._redirect(redirect, src, depth)
        elif kind in ("if", "for", "while", "until"):
            for part in node.parts:
                self._visit(part, src, depth, pipe_tail=False)
        elif kind == "function":
            self.assessment.deny(RULE_FUNCTION, "defining shell functions is not allowed (fork bombs)")
        elif kind == "word":
            self._word(node, src, depth)
        elif kind == "assignment":
            self._assignment(node, src, depth)
        elif kind == "redirect":
            self._redirect(node, src, depth)
        elif kind in ("operator", "reservedword", "pipe", "tilde", "heredoc", "parameter"):
            return
        else:
            self.assessment.deny(RULE_UNPARSEABLE, f"unsupported shell construct: {kind}")

    def _word(self, node: bashlex.ast.node, src: str, depth: int) -> Word:
        dynamic = False
        for part in getattr(node, "parts", []) or []:
            if part.kind in ("commandsubstitution", "processsubstitution"):
                dynamic = True
                self._visit(part.command, src, depth, pipe_tail=False)
            elif part.kind == "parameter":
                dynamic = True
            elif part.kind == "tilde":
                pass
        raw = src[node.pos[0] : node.pos[1]]
        unquoted = _strip_quoted(raw)
        if re.search(r"\{[^}]*,[^}]*\}|\{[^}]*\.\.[^}]*\}", unquoted):
            dynamic = True  # brace expansion: the words bash would produce are not this word
        glob = bool(re.search(r"[*?\[]", unquoted))
        return Word(node.word, dynamic=dynamic, glob=glob)

    def _assignment(self, node: bashlex.ast.node, src: str, depth: int) -> None:
        for part in getattr(node, "parts", []) or []:
            if part.kind in ("commandsubstitution", "processsubstitution"):
                self._visit(part.command, src, depth, pipe_tail=False)
        self._check_env_assignment(node.word.split("=", 1)[0])

    def _check_env_assignment(self, name: str) -> None:
        if _dangerous_env(name):
            self.assessment.deny(RULE_DANGEROUS_ENV, f"setting {name} changes what programs run or load")

    def _redirect(self, node: bashlex.ast.node, src: str, depth: int) -> None:
        kind = node.type
        target = node.output
        if kind in ("<<", "<<-", "<<<", "<"):
            heredoc = getattr(node, "heredoc", None)
            # bashlex only parses unquoted delimiters, whose body bash expands; it does not parse
            # the body, so a substitution there would run unseen.
            if heredoc is not None and re.search(r"\$\(|`|\$\[", heredoc.value):
                self.assessment.deny(
                    RULE_DYNAMIC, "a here-document with $(...) or backticks runs commands the policy cannot see"
                )
            if hasattr(target, "kind") and target.kind == "word":
                word = self._word(target, src, depth)
                if kind == "<":
                    self._check_credential_args([word])
                    self._check_socket(word.text)
            return
        if not hasattr(target, "kind"):
            return  # 2>&1 and friends: duplicating a descriptor writes nothing
        word = self._word(target, src, depth)
        path = word.text
        self._check_socket(path)
        if kind in (">&", "<&") and (path.isdigit() or path == "-"):
            return
        if word.dynamic:
            self.assessment.escalate(RiskClass.WRITE, "output redirected to a file named at run time")
            return
        if path in HARMLESS_REDIRECT_TARGETS or path.startswith("/dev/fd/"):
            return
        if DEVICE_PATH.match(path) or DANGEROUS_WRITE_TARGETS.match(path):
            self.assessment.deny(RULE_DEVICE_WRITE, f"writing to {path} can destroy the system")
            return
        self.assessment.escalate(RiskClass.WRITE, f"output redirected into {path}")

    def _check_socket(self, path: str) -> None:
        """bash opens ``/dev/tcp/HOST/PORT`` as a connection: the metadata guard applies to it."""
        parts = path.split("/")
        if len(parts) >= 4 and parts[:3] in (["", "dev", "tcp"], ["", "dev", "udp"]):
            host = parts[3]
            port = parts[4] if len(parts) > 4 else ""
            host = f"[{host}]" if ":" in host else host
            _check_urls(self, [f"http://{host}:{port}/" if port.isdigit() else f"http://{host}/"])

    # -- simple commands -----------------------------------------------------------------------

    def _simple_command(self, node: bashlex.ast.node, src: str, depth: int, *, pipe_tail: bool) -> None:
        words: list[Word] = []
        stdin_redirected = False
        for part in node.parts:
            if part.kind == "word":
                words.append(self._word(part, src, depth))
            elif part.kind == "assignment":
                self._assignment(part, src, depth)
            elif part.kind == "redirect":
                self._redirect(part, src, depth)
                if part.type in ("<", "<<", "<<-", "<<<"):
                    stdin_redirected = True
            else:
                self._visit(part, src, depth, pipe_tail=False)
        if words:
            self.argv(words, depth, reads_stdin=pipe_tail or stdin_redirected)

    def argv(self, words: Sequence[Word], depth: int, *, reads_stdin: bool) -> None:
        """Judge one command given as words: name first, then its arguments."""
        if not words:
            return
        head = words[0]
        if head.text != "[" and (head.dynamic or head.glob or not LITERAL_NAME.fullmatch(head.text)):
            self.assessment.deny(
                RULE_DYNAMIC,
                f"the command name {head.text or '(empty)'!r} is only known at run time",
            )
            return
        name = head.name
        args = list(words[1:])
        self.assessment.subjects.append(" ".join(w.text for w in words))
        if name in NAME_TAKING_BUILTINS and _array_subscript_names(name, args):
            self.assessment.deny(
                RULE_DYNAMIC,
                f"{name} with an array subscript in a variable name: bash evaluates it, running what it holds",
            )
            return
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, name, args, depth, reads_stdin)
        elif name.startswith("mkfs") or name in DISK_WIPERS:
            self.assessment.deny(RULE_DISK, f"{name} destroys file systems or disks")
        elif name in POWER_COMMANDS:
            self.assessment.deny(RULE_POWER, f"{name} takes the host down")
        elif name in SHELLS:
            self._shell(name, args, depth, reads_stdin)
        elif name in INTERPRETERS or re.fullmatch(r"python\d(\.\d+)?|perl\d|ruby\d(\.\d+)?", name):
            self._interpreter(name, args, reads_stdin)
        elif name in READ_ONLY_COMMANDS or name in self.rules.read_only_commands:
            self._check_credential_args(args, globs=name not in LISTING_COMMANDS | OPERANDS_NOT_FILES)
        else:
            self.assessment.escalate(RiskClass.WRITE, f"{name} is not a known read-only command")

    def _check_credential_args(self, args: Iterable[Word], *, globs: bool = True) -> None:
        for arg in args:
            if _names_credentials(arg, globs=globs):
                self.assessment.deny(RULE_CREDENTIALS, f"{arg.text} holds credentials")

    def _shell(self, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
        command_mode = False
        index = 0
        while index < len(args):
            text = args[index].text
            if text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
                index += 2
                continue
            if text.startswith("--"):
                index += 1
                continue
            if text[:1] in ("-", "+") and len(text) > 1:
                command_mode = command_mode or "c" in text[1:]
                index += 1
                continue
            break
        rest = args[index:]
        if command_mode:
            if not rest:
                self.assessment.deny(RULE_UNPARSEABLE, f"{name} -c without a command")
            elif rest[0].dynamic:
                self.assessment.deny(RULE_DYNAMIC, f"{name} -c runs a command built at run time")
            else:
                self.run(rest[0].text, depth + 1)
        elif rest:
            self.assessment.escalate(
                RiskClass.WRITE, f"{name} runs the script {rest[0].text}, which the policy cannot read"
            )
        elif reads_stdin:
            self.assessment.deny(RULE_PIPE_TO_INTERPRETER, f"{name} would run code from its input")
        else:
            self.assessment.escalate(RiskClass.WRITE, f"an interactive {name}")

    def _interpreter(self, name: str, args: list[Word], reads_stdin: bool) -> None:
        texts = [a.text for a in args]
        if name.startswith("python") and texts[:1] == ["-m"] and texts[1:2] and texts[1] in SAFE_PYTHON_MODULES:
            return
        inline = any(t in INLINE_CODE_FLAGS or re.fullmatch(r"-[A-Za-z]*[ceEr]", t) for t in texts)
        if inline:
            self.assessment.escalate(RiskClass.DESTRUCTIVE, f"{name} runs inline code the policy cannot check")
            return
        scripts = [t for t in texts if not t.startswith("-")]
        if scripts:
            self.assessment.escalate(RiskClass.WRITE, f"{name} runs {scripts[0]}, which the policy cannot read")
        elif reads_stdin or "-" in texts:
            self.assessment.deny(RULE_PIPE_TO_INTERPRETER, f"{name} would run code from its input")
        else:
            self.assessment.escalate(RiskClass.WRITE, f"{name} runs code the policy cannot check")

    def unwrap(
        self,
        args: list[Word],
        depth: int,
        reads_stdin: bool,
        *,
        value_options: Iterable[str] = (),
        positionals: int = 0,
        extra_dynamic: bool = False,
    ) -> None:
        """Judge the command a wrapper runs: skip the wrapper's options and leading operands."""
        options = frozenset(value_options)
        index = 0
        while index < len(args) and args[index].text.startswith("-") and args[index].text != "-":
            text = args[index].text
            index += 1
            if text == "--":
                break
            if text in options:
                index += 1
        index += positionals
        inner = args[index:]
        if extra_dynamic and inner:
            inner = [*inner, DYNAMIC]
        if inner:
            self.argv(inner, depth, reads_stdin=reads_stdin)
        self.rescan(args, depth, reads_stdin, skip=index)

    def rescan(self, args: Sequence[Word], depth: int, reads_stdin: bool, *, skip: int = 0) -> None:
        for index, arg in enumerate(args):
            if index != skip and arg.name in ALWAYS_RESCANNED | POWER_COMMANDS and not arg.dynamic:
                self.argv(list(args[index:]), depth, reads_stdin=reads_stdin)
                return


def _dangerous_env(name: str) -> bool:
    return name in DANGEROUS_ENV or name.startswith(DANGEROUS_ENV_PREFIXES)


def _names_credentials(word: Word, *, globs: bool = True) -> bool:
    """Does ``word`` name a credential file, or is it a glob, brace or run-time word (``$f``,
    ``$(...)``, a name ``xargs`` or ``find -exec`` passes) that may expand to one?"""
    if CREDENTIAL_FILES.search(word.text):
        return True
    if not globs:
        return False
    text = (EXPANSION.sub("*", word.text) or "*") if word.dynamic else word.text
    pattern = re.sub(r"\{[^}]*\}", "*", text)
    if not (word.glob or word.dynamic or pattern != word.text):
        return False
    directory = os.path.dirname(pattern)
    candidates = (f"{directory}/{name}" if directory else name for name in CREDENTIAL_NAMES)
    return any(CREDENTIAL_FILES.search(c) and fnmatch.fnmatchcase(c, pattern) for c in candidates)


def _array_subscript_names(name: str, args: Sequence[Word]) -> bool:
    if name in ("printf", "test", "["):  # only the operand of -v names a variable
        names = [args[i + 1] for i in range(len(args) - 1) if args[i].text == "-v"]
    else:
        names = list(args)
    return any(ARRAY_SUBSCRIPT.match(word.text) for word in names)


def _strip_quoted(raw: str) -> str:
    """``raw`` with quoted spans and escaped characters removed (what bash would expand)."""
    out = []
    quote = ""
    escaped = False
    for char in raw:
        if escaped:
            escaped = False
            continue
        if char == "\\" and quote != "'":
            escaped = True
            continue
        if quote:
            if char == quote:
                quote = ""
            continue
        if char in ("'", '"'):
            quote = char
            continue
        out.append(char)
    return "".join(out)


def _normalise_path(text: str) -> str:
    collapsed = re.sub(r"/+", "/", text)
    if collapsed.startswith("/"):
        collapsed = os.path.normpath(collapsed)
        collapsed = re.sub(r"^//+", "/", collapsed)
    return collapsed.rstrip("/") or "/"


def _is_system_path(word: Word) -> bool:
    """``/``, ``/*``, ``/etc``, ``~`` and the like: targets no diagnosis needs to remove."""
    if word.dynamic:
        return True
    text = word.text
    if text.startswith("~") and "/" not in text.rstrip("/"):
        return True
    if text in ("*", ".", "..", "./*", "../*"):
        return True
    path = _normalise_path(text)
    if path in SYSTEM_PATHS:
        return True
    if path.startswith("/"):
        first = path.split("/")[1] if path.count("/") >= 1 else ""
        if word.glob and re.search(r"[*?\[]", first or "*"):
            return True
        parent = os.path.dirname(path)
        if word.glob and parent in SYSTEM_PATHS and re.fullmatch(r"[*?\[\]]+", os.path.basename(path)):
            return True
    return False


def _flags(args: Sequence[Word]) -> tuple[set[str], list[Word]]:
    """Short flags (split: ``-rf`` gives r and f), long flags, and the operands."""
    flags: set[str] = set()
    operands: list[Word] = []
    ended = False
    for arg in args:
        text = arg.text
        if not ended and text == "--":
            ended = True
        elif not ended and text.startswith("--"):
            flags.add(text.split("=", 1)[0])
        elif not ended and text.startswith("-") and len(text) > 1:
            flags.update(text[1:])
        else:
            operands.append(arg)
    return flags, operands


# -- per-command handlers ----------------------------------------------------------------------

Handler = Callable[[_Analysis, str, list[Word], int, bool], None]


def _rm(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    flags, operands = _flags(args)
    if "--no-preserve-root" in flags:
        a.assessment.deny(RULE_RM_ROOT, "rm --no-preserve-root")
        return
    recursive = bool({"r", "R", "--recursive"} & flags)
    if recursive and any(_is_system_path(op) for op in operands):
        a.assessment.deny(RULE_RM_ROOT, f"recursive rm of {' '.join(op.text or '$?' for op in operands)}")
        return
    a.assessment.escalate(RiskClass.DESTRUCTIVE, "rm deletes files")


def _recursive_owner_change(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    flags, operands = _flags(args)
    if {"R", "--recursive"} & flags and any(_is_system_path(op) for op in operands[1:]):
        a.assessment.deny(RULE_RECURSIVE_ROOT, f"recursive {name} over a system directory")
        return
    a.assessment.escalate(RiskClass.WRITE, f"{name} changes file permissions or owners")


def _move(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    _, operands = _flags(args)
    target = operands[-1].text if len(operands) > 1 else ""
    if DEVICE_PATH.match(target) or DANGEROUS_WRITE_TARGETS.match(target):
        a.assessment.deny(RULE_DEVICE_WRITE, f"{name} onto {target} can destroy the system")
        return
    if name == "mv" and any(_is_system_path(op) and op.text not in ("/tmp",) for op in operands[:-1]):
        a.assessment.deny(RULE_RECURSIVE_ROOT, "moving a system directory away")
        return
    a.assessment.escalate(RiskClass.WRITE, f"{name} changes files")


def _dd(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    a._check_credential_args(Word(arg.text[3:], arg.dynamic, arg.glob) for arg in args if arg.text.startswith("if="))
    for arg in args:
        if arg.text.startswith("of="):
            target = arg.text[3:]
            if arg.dynamic or DEVICE_PATH.match(target) or DANGEROUS_WRITE_TARGETS.match(target):
                a.assessment.deny(RULE_DEVICE_WRITE, f"dd writing to {target or 'a run-time target'}")
                return
            a.assessment.escalate(RiskClass.WRITE, f"dd writes {target}")
            return


def _kill(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    if name == "kill":
        targets = [t for t in texts if not t.startswith("-") or t == "-1"]
        if "-0" in texts or texts[:1] == ["-l"]:
            return
        if any(t in ("1", "-1") for t in targets):
            a.assessment.deny(RULE_KILL_ALL, "kill of init or of every process")
            return
    if name == "killall5":
        a.assessment.deny(RULE_KILL_ALL, "killall5 signals every process")
        return
    a.assessment.escalate(RiskClass.WRITE, f"{name} signals processes")


def _init(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    if any(w.text in ("0", "6", "1", "s", "S") for w in args):
        a.assessment.deny(RULE_POWER, f"{name} changes the runlevel")
    else:
        a.assessment.escalate(RiskClass.WRITE, f"{name} talks to init")


def _eval(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    a.assessment.deny(RULE_EVAL, f"{name} runs text as code, which the policy cannot check")


def _source(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    a.assessment.escalate(RiskClass.WRITE, f"{name} runs a script the policy cannot read")


def _trap(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    _, operands = _flags(args)
    if operands:
        if operands[0].dynamic:
            a.assessment.deny(RULE_DYNAMIC, "trap action built at run time")
        else:
            a.run(operands[0].text, depth + 1)


def _declare(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    for arg in args:
        if "=" in arg.text:
            a._check_env_assignment(arg.text.split("=", 1)[0])
        elif name == "export" and _dangerous_env(arg.text):
            a._check_env_assignment(arg.text)


def _wrapper(value_options: Iterable[str] = (), positionals: int = 0, extra_dynamic: bool = False) -> Handler:
    def handler(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
        a.unwrap(
            args, depth, reads_stdin, value_options=value_options, positionals=positionals, extra_dynamic=extra_dynamic
        )

    return handler


def _env(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    index = 0
    while index < len(args):
        text = args[index].text
        if text in ("-u", "--unset", "-C", "--chdir"):
            index += 2
        elif text in ("-S", "--split-string"):
            if index + 1 < len(args):
                a.run(args[index + 1].text, depth + 1)
            return
        elif text.startswith("-") and text != "-":
            index += 1
        elif "=" in text and not args[index].dynamic:
            a._check_env_assignment(text.split("=", 1)[0])
            index += 1
        else:
            break
    if index < len(args):
        a.argv(args[index:], depth, reads_stdin=reads_stdin)
        a.rescan(args, depth, reads_stdin, skip=index)


def _command_builtin(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    if any(w.text in ("-v", "-V") for w in args):
        return
    a.unwrap(args, depth, reads_stdin)


def _watch(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    index = 0
    exec_mode = False
    while index < len(args) and args[index].text.startswith("-"):
        text = args[index].text
        if text in ("-x", "--exec"):
            exec_mode = True
        if text in ("-n", "--interval", "-q", "--equexit", "-g"):
            index += 1
        index += 1
    rest = args[index:]
    if not rest:
        return
    if exec_mode:
        a.argv(rest, depth, reads_stdin=False)
    elif any(w.dynamic for w in rest):
        a.assessment.deny(RULE_DYNAMIC, "watch runs a command built at run time")
    else:
        a.run(" ".join(w.text for w in rest), depth + 1)


def _detaching_wrapper(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    a.assessment.escalate(RiskClass.WRITE, f"{name} starts a process outside the task's session, which can outlive it")
    a.unwrap(args, depth, reads_stdin)


def _remote_shell(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    value_options = set("bcDEeFIiJLlmOopQRSWw")
    index = 0
    while index < len(args) and args[index].text.startswith("-"):
        text = args[index].text
        index += 1
        if not text.startswith("--") and "f" in text[1:]:
            a.assessment.escalate(RiskClass.WRITE, f"{name} -f goes to the background, outliving the task")
        if len(text) == 2 and text[1] in value_options:
            index += 1
    rest = args[index + 1 :]  # the host, then the remote command
    if not rest:
        a.assessment.escalate(RiskClass.WRITE, f"an interactive {name} session")
    elif any(w.dynamic for w in rest):
        a.assessment.deny(RULE_DYNAMIC, f"{name} runs a remote command built at run time")
    else:
        a.run(" ".join(w.text for w in rest), depth + 1)


def _su(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    for index, arg in enumerate(args):
        if arg.text in ("-c", "--command") and index + 1 < len(args):
            a.run(args[index + 1].text, depth + 1)
            return
    a.assessment.escalate(RiskClass.WRITE, f"{name} opens a shell as another user")


def _find(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    paths = []
    for arg in args:
        if arg.text.startswith("-") or arg.text in ("(", "!", ")"):
            break
        paths.append(arg)
    found = _found_by(paths, texts)
    index = 0
    while index < len(args):
        text = texts[index]
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(args) and texts[end] not in (";", "+", "\\;"):
                end += 1
            inner = [
                Word(w.text.replace("{}", found.text), dynamic=True, glob=True) if "{}" in w.text else w
                for w in args[index + 1 : end]
            ]
            a.argv(inner, depth, reads_stdin=False)
            index = end
        elif text == "-delete":
            if any(_is_system_path(p) for p in paths) or not paths:
                a.assessment.deny(RULE_RM_ROOT, "find -delete over a system directory")
            else:
                a.assessment.escalate(RiskClass.DESTRUCTIVE, "find -delete removes files")
        elif text in ("-fprint", "-fprint0", "-fprintf", "-fls"):
            a.assessment.escalate(RiskClass.WRITE, f"find {text} writes a file")
        index += 1


def _grep(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    a._check_credential_args(args)
    flags, operands = _flags(args)
    recursive = name in ("rg", "ag") or bool({"r", "R", "--recursive", "--dereference-recursive"} & flags)
    folders = operands[1:] or [Word(".")]  # the first operand is the pattern; no folder is the current one
    for operand in folders if recursive else ():
        if operand.dynamic or CREDENTIAL_DIRS.fullmatch(_normalise_path(operand.text)):
            a.assessment.deny(RULE_CREDENTIALS, f"{name} searches {operand.text or 'a run-time folder'}, "
                                                "where credential files live")  # fmt: skip
            return


def _found_by(paths: Sequence[Word], texts: Sequence[str]) -> Word:
    """What ``{}`` stands for in ``find``'s ``-exec``: a file under its paths matching its ``-name``,
    as a glob (``find /etc -name shadow -exec cat {} ;`` reads ``/etc/*shadow``)."""
    names = [texts[i + 1] for i in range(len(texts) - 1) if texts[i] in ("-name", "-iname")]
    vague = {"-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex", "-lname", "-ilname", "-o", "-or"}
    name = names[-1] if len(names) == 1 and not vague.intersection(texts) else "*"
    root = paths[0].text if len(paths) == 1 and not paths[0].dynamic else "*"
    return Word(f"{root.rstrip('/')}/*{name}", dynamic=True, glob=True)


def _ps(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    index = 0
    while index < len(args):
        text = args[index].text
        if text in _PS_VALUE_OPTIONS or (text.startswith("-") and text[-1:] in _PS_SHORT_VALUE and len(text) == 2):
            index += 2
            continue
        # BSD-style option letters without a dash: ``e`` shows each process's environment.
        if not text.startswith("-") and text.isalpha() and "e" in text:
            a.assessment.deny(RULE_CREDENTIALS, f"ps {text} shows every process's environment, secrets included")
            return
        index += 1


_PS_SHORT_VALUE = frozenset("CGgpqstUuoOkN")
_PS_VALUE_OPTIONS = frozenset(
    {"--sort", "--pid", "--ppid", "--quick-pid", "--sid", "--tty", "--user", "--User", "--group", "--Group",
     "--format", "--cols", "--columns", "--rows", "--width", "--lines"}
)  # fmt: skip


def _sed(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    scripts: list[str] = []
    index = 0
    positional_script = True
    while index < len(args):
        text = args[index].text
        if (
            text in ("-i", "--in-place")
            or text.startswith(("-i", "--in-place="))
            or (text.startswith("-") and not text.startswith("--") and "i" in text[1:])
        ):
            a.assessment.escalate(RiskClass.WRITE, "sed -i edits files in place")
        if text in ("-e", "--expression") and index + 1 < len(args):
            scripts.append(args[index + 1].text)
            positional_script = False
            index += 2
            continue
        if text in ("-f", "--file"):
            a.assessment.escalate(RiskClass.WRITE, "sed -f runs a script the policy cannot read")
            positional_script = False
            index += 2
            continue
        if not text.startswith("-") and positional_script:
            scripts.append(text)
            positional_script = False
        elif not text.startswith("-"):
            a._check_credential_args([args[index]])  # a file it prints
        index += 1
    for script in scripts:
        if _sed_script_writes(script):
            a.assessment.escalate(RiskClass.WRITE, "the sed script writes files or runs commands (w/W/e)")


def _sed_script_writes(script: str) -> bool:
    """True when a sed script uses ``w``, ``W``, ``e`` or an ``s`` flag that writes or executes."""
    index = 0
    length = len(script)
    while index < length:
        char = script[index]
        if char in " \t\n;{}!,0123456789$+~":
            index += 1
            continue
        if char in "/\\":
            delimiter = char if char == "/" else (script[index + 1] if index + 1 < length else "/")
            index += 1 if char == "/" else 2
            while index < length and script[index] != delimiter:
                index += 2 if script[index] == "\\" else 1
            index += 1
            continue
        if char in "sy":
            if index + 1 >= length:
                return False
            delimiter = script[index + 1]
            index += 2
            for _ in range(2):
                while index < length and script[index] != delimiter:
                    index += 2 if script[index] == "\\" else 1
                index += 1
            if char == "s":
                flags = re.match(r"[^;}\n]*", script[index:])
                if flags and re.search(r"[ew]", flags.group(0)):
                    return True
                index += len(flags.group(0)) if flags else 0
            continue
        if char in "ewW":
            return True
        if char in "aicrRbtTv:#":
            newline = script.find("\n", index)
            index = length if newline < 0 else newline + 1
            continue
        index += 1
    return False


def _awk(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    program: str | None = None
    index = 0
    while index < len(args):
        text = args[index].text
        if text in ("-f", "--file") or text.startswith("-f"):
            a.assessment.escalate(RiskClass.WRITE, f"{name} -f runs a program the policy cannot read")
            return
        if text in ("-F", "-v", "--assign", "--field-separator"):
            index += 2
            continue
        if text.startswith("-"):
            index += 1
            continue
        program = text
        break
    if program is None:
        return
    a._check_credential_args(arg for arg in args[index + 1 :] if "=" not in arg.text)  # files, not var=value
    if args[index].dynamic:
        a.assessment.deny(RULE_DYNAMIC, f"{name} program built at run time")
    elif re.search(r"\bsystem\s*\(|\|\s*getline|\|&|print[f]?\b[^;}]*(>|\|)|\bclose\s*\(", program):
        a.assessment.escalate(RiskClass.WRITE, f"the {name} program runs commands or writes files")


def _curl(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    options, operands = _split_options(args, _CURL_SHORT_VALUE, _CURL_LONG_VALUE)
    method = "GET"
    urls = [w.text for w in operands if not w.dynamic]
    if any(w.dynamic for w in operands):
        a.assessment.escalate(RiskClass.WRITE, "curl to a URL built at run time")
    for option, value in options:
        if option in ("-X", "--request"):
            method = value.upper()
        elif option in ("-d", "-F", "-T", "--json", "--form", "--upload-file") or option.startswith(
            ("--data", "--form")
        ):
            a.assessment.escalate(RiskClass.WRITE, "curl sends data")
        elif option in ("-o", "--output") and value not in ("/dev/null", "-"):
            a.assessment.escalate(RiskClass.WRITE, f"curl writes {value}")
        elif option in ("-O", "--remote-name", "--remote-name-all", "-J", "-K", "--config", "-c", "--cookie-jar"):
            a.assessment.escalate(RiskClass.WRITE, f"curl {option} writes or reads local files")
        elif option == "--url":
            urls.append(value)
        elif option in _CURL_PROXY_OPTIONS:
            urls.append("http://" + URL_LIKE.sub("", value))
        elif option in ("--resolve", "--connect-to"):
            # host:port:ADDRESS[,ADDRESS] and HOST1:PORT1:HOST2:PORT2 send the request elsewhere
            parts = value.lstrip("+-").split(":")
            if len(parts) > 2:
                urls.extend(f"http://{address}/" for address in parts[2].split(",") if address)
    if any(option in ("-L", "--location", "--location-trusted") for option, _ in options):
        a.assessment.escalate(
            RiskClass.WRITE,
            "curl -L follows redirects to hosts the policy cannot check (a metadata endpoint); "
            "an api task with follow_redirects checks every hop",
        )
    if method not in ("GET", "HEAD", "OPTIONS"):
        a.assessment.escalate(RiskClass.WRITE, f"curl {method} request")
    _check_urls(a, urls)


_CURL_SHORT_VALUE = frozenset("AbcCdDeEFHKmoQrTuUwxXyYz")
_CURL_PROXY_OPTIONS = frozenset(
    {"-x", "--proxy", "--preproxy", "--socks4", "--socks4a", "--socks5", "--socks5-hostname"}
)
_CURL_LONG_VALUE = frozenset(
    {
        "--preproxy",
        "--socks4",
        "--socks4a",
        "--socks5",
        "--socks5-hostname",
        "--header",
        "--user-agent",
        "--user",
        "--proxy",
        "--max-time",
        "--connect-timeout",
        "--write-out",
        "--range",
        "--cookie",
        "--cacert",
        "--cert",
        "--key",
        "--resolve",
        "--connect-to",
        "--referer",
        "--retry",
        "--retry-delay",
        "--limit-rate",
        "--interface",
        "--dns-servers",
        "--output",
        "--request",
        "--url",
        "--data",
        "--data-raw",
        "--data-binary",
        "--data-urlencode",
        "--form",
        "--json",
        "--upload-file",
        "--config",
        "--cookie-jar",
        "--oauth2-bearer",
        "--unix-socket",
    }
)


def _split_options(
    args: Sequence[Word], short_with_value: frozenset[str], long_with_value: frozenset[str]
) -> tuple[list[tuple[str, str]], list[Word]]:
    """GNU-style option parsing: ``-abc``, ``-ovalue``, ``-o value``, ``--opt=value``, ``--opt value``."""
    options: list[tuple[str, str]] = []
    operands: list[Word] = []
    index = 0
    while index < len(args):
        text = args[index].text
        following = args[index + 1].text if index + 1 < len(args) else ""
        if text == "--":
            operands.extend(args[index + 1 :])
            break
        if text.startswith("--"):
            if "=" in text:
                option, value = text.split("=", 1)
                options.append((option, value))
            elif text in long_with_value:
                options.append((text, following))
                index += 1
            else:
                options.append((text, ""))
        elif text.startswith("-") and len(text) > 1:
            for position, letter in enumerate(text[1:], start=1):
                if letter in short_with_value:
                    attached = text[position + 1 :]
                    if attached:
                        options.append((f"-{letter}", attached))
                    else:
                        options.append((f"-{letter}", following))
                        index += 1
                    break
                options.append((f"-{letter}", ""))
        else:
            operands.append(args[index])
        index += 1
    return options, operands


def _check_urls(a: _Analysis, urls: Iterable[str]) -> None:
    for url in urls:
        target = url if URL_LIKE.match(url) else f"http://{url}"
        check_url(target, a.assessment, allow_hosts=a.rules.http_allow_hosts, deny_hosts=a.rules.http_deny_hosts)


def _wget(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    to_stdout = any(t in ("-O-", "-qO-", "-qO", "--output-document=-") for t in texts) or any(
        t in ("-O", "--output-document") and i + 1 < len(texts) and texts[i + 1] in ("-", "/dev/null")
        for i, t in enumerate(texts)
    )
    if not (to_stdout or "--spider" in texts):
        a.assessment.escalate(RiskClass.WRITE, "wget saves a file")
    if any(t.startswith("--post") or t in ("--method", "--body-data", "--body-file") for t in texts):
        a.assessment.escalate(RiskClass.WRITE, "wget sends data")
    no_redirects = "--max-redirect=0" in texts or any(
        t == "--max-redirect" and i + 1 < len(texts) and texts[i + 1] == "0" for i, t in enumerate(texts)
    )
    if not no_redirects:
        a.assessment.escalate(
            RiskClass.WRITE, "wget follows redirects to hosts the policy cannot check; add --max-redirect=0"
        )
    _check_urls(a, [t for t in texts if not t.startswith("-") and t not in ("-",)])


def _netcat(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    if any(t in ("-e", "-c", "--exec", "--sh-exec", "--lua-exec") or re.fullmatch(r"-[a-zA-Z]*e", t) for t in texts):
        a.assessment.deny(RULE_REVERSE_SHELL, f"{name} -e/-c hands a shell to the network")
        return
    if name == "socat" and any(re.search(r"(?i)\b(exec|system):", t) for t in texts):
        a.assessment.deny(RULE_REVERSE_SHELL, "socat EXEC/SYSTEM hands a shell to the network")
        return
    if name != "socat" and any(t.startswith("-") and "z" in t for t in texts):
        return  # a port probe: connects and closes
    a.assessment.escalate(RiskClass.WRITE, f"{name} sends data or listens")


def _tee(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    _, files = _flags(args)
    for file in files:
        if DEVICE_PATH.match(file.text) or DANGEROUS_WRITE_TARGETS.match(file.text):
            a.assessment.deny(RULE_DEVICE_WRITE, f"writing to {file.text} can destroy the system")
            return
    if any(f.text not in HARMLESS_REDIRECT_TARGETS for f in files):
        a.assessment.escalate(RiskClass.WRITE, "tee writes files")


def _subcommand_policy(
    read: Iterable[str],
    denied: Iterable[str] = (),
    destructive: Iterable[str] = (),
    deny_rule: str = RULE_POWER,
    value_options: Iterable[str] = (),
) -> Handler:
    read_set, denied_set, destructive_set = frozenset(read), frozenset(denied), frozenset(destructive)
    value_set = frozenset(value_options)

    def handler(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
        subcommand = ""
        index = 0
        while index < len(args):
            text = args[index].text
            if text in value_set:
                index += 2
                continue
            if not text.startswith("-"):
                subcommand = text
                break
            index += 1
        if not subcommand and "" in read_set:
            return
        if args and any(w.text in ("--version", "--help", "-h") for w in args[:1]):
            return
        if subcommand in denied_set:
            a.assessment.deny(deny_rule, f"{name} {subcommand}")
        elif subcommand in read_set:
            return
        elif subcommand in destructive_set:
            a.assessment.escalate(RiskClass.DESTRUCTIVE, f"{name} {subcommand} removes things")
        else:
            a.assessment.escalate(RiskClass.WRITE, f"{name} {subcommand or '(no subcommand)'} is not read-only")
        if subcommand == "exec":
            dash = next((i for i, w in enumerate(args) if w.text == "--"), None)
            if dash is not None:
                a.argv(args[dash + 1 :], depth, reads_stdin=False)

    return handler


def _options_decide(write_options: Iterable[str], what: str, *, any_operand_writes: bool = False) -> Handler:
    writes = frozenset(write_options)

    def handler(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
        for arg in args:
            text = arg.text.split("=", 1)[0]
            if text in writes or (
                not text.startswith("--") and text.startswith("-") and any(f"-{c}" in writes for c in text[1:])
            ):
                a.assessment.escalate(RiskClass.WRITE, f"{name} {arg.text} {what}")
                return
            if any_operand_writes and not arg.text.startswith("-"):
                a.assessment.escalate(RiskClass.WRITE, f"{name} {arg.text} {what}")
                return
        a._check_credential_args(args)

    return handler


def _read_only_with(read_options: Iterable[str], what: str) -> Handler:
    reads = frozenset(read_options)

    def handler(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
        options, operands = _split_options(args, frozenset(), frozenset())
        a._check_credential_args(operands)  # gzip -dc /etc/shadow prints it
        if any(option in reads for option, _ in options) or (not operands and reads_stdin):
            return
        a.assessment.escalate(RiskClass.WRITE, f"{name} {what}")

    return handler


CLIENT_SHELL_ESCAPES = {
    "postgres": (re.compile(r"\\!(?P<command>[^\n]*)"),),
    "mysql": (re.compile(r"(?im)(?:^|;)\s*(?:system\s|\\!)(?P<command>[^\n]*)"),),
}


def _sql_client(dialect: str, command_flags: Iterable[str]) -> Handler:
    flags = frozenset(command_flags)

    def handler(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
        for index, arg in enumerate(args):
            text = arg.text
            sql: Word | None = None
            if text in flags and index + 1 < len(args):
                sql = args[index + 1]
            elif any(text.startswith(f"{flag}=") for flag in flags if flag.startswith("--")):
                sql = Word(text.split("=", 1)[1], dynamic=arg.dynamic)
            if sql is not None:
                if sql.dynamic:
                    a.assessment.deny(RULE_DYNAMIC, f"{name} runs SQL built at run time")
                else:
                    # psql's \! and mysql's system run a shell command here, not SQL on the server.
                    for escape in CLIENT_SHELL_ESCAPES.get(dialect, ()):
                        for match in escape.finditer(sql.text):
                            a.run(match["command"], depth + 1)
                    a.assessment.absorb(analyze_sql(sql.text, dialect))  # type: ignore[arg-type]
                return
            if text in ("-f", "--file") or text.startswith("--file="):
                a.assessment.escalate(RiskClass.WRITE, f"{name} runs an SQL file the policy cannot read")
                return
        if reads_stdin:
            a.assessment.deny(RULE_PIPE_TO_INTERPRETER, f"{name} would run SQL from its input; use {sorted(flags)[0]}")
        else:
            a.assessment.escalate(RiskClass.WRITE, f"an interactive {name} session")

    return handler


def _redis_cli(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    value_options = {
        "-h",
        "-p",
        "-a",
        "-u",
        "-n",
        "-s",
        "-r",
        "-i",
        "--user",
        "--pass",
        "--askpass",
        "--tls",
        "--cacert",
        "--cert",
        "--key",
        "-d",
        "-D",
        "--pattern",
        "--count",
    }
    index = 0
    while index < len(args) and args[index].text.startswith("-"):
        text = args[index].text
        if text in ("--eval", "--ldb", "--ldb-sync-mode", "--functions-rdb", "--rdb", "--pipe"):
            a.assessment.deny("redis.scripting", f"redis-cli {text} runs scripts or bulk writes")
            return
        index += 2 if text in value_options else 1
    command = args[index:]
    if not command:
        if reads_stdin:
            a.assessment.deny(RULE_PIPE_TO_INTERPRETER, "redis-cli would run commands from its input")
        else:
            a.assessment.escalate(RiskClass.WRITE, "an interactive redis-cli session")
        return
    if any(w.dynamic for w in command):
        a.assessment.deny(RULE_DYNAMIC, "redis-cli command built at run time")
        return
    a.assessment.absorb(analyze_redis(shlex.join(w.text for w in command), extra_denied=a.rules.redis_denied))


def _crontab(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    if texts and all(t in ("-l", "-u") or not t.startswith("-") for t in texts) and "-l" in texts:
        return
    if "-r" in texts:
        a.assessment.escalate(RiskClass.DESTRUCTIVE, "crontab -r removes every cron job")
    else:
        a.assessment.escalate(RiskClass.WRITE, "crontab changes scheduled jobs")


def _firewall(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    listing = {
        "-L",
        "-S",
        "--list",
        "--list-rules",
        "-n",
        "-v",
        "-x",
        "--line-numbers",
        "-t",
        "--table",
        "--numeric",
        "--verbose",
    }
    if name == "nft":
        if texts[:1] == ["list"] or (texts[:2] and texts[0].startswith("-") and "list" in texts):
            return
    elif (
        texts
        and all(t in listing or not t.startswith("-") for t in texts)
        and any(t in ("-L", "-S", "--list", "--list-rules") for t in texts)
    ):
        return
    a.assessment.escalate(RiskClass.WRITE, f"{name} changes the firewall")


def _ip(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    texts = [w.text for w in args]
    if "exec" in texts:
        position = texts.index("exec")
        if "netns" in texts[:position]:
            a.assessment.escalate(RiskClass.WRITE, "ip netns exec")
            a.argv(args[position + 2 :], depth, reads_stdin=reads_stdin)
            return
    if {
        "add",
        "del",
        "delete",
        "set",
        "change",
        "replace",
        "flush",
        "append",
        "prepend",
        "restore",
        "attach",
        "detach",
        "up",
        "down",
    } & set(texts):
        a.assessment.escalate(RiskClass.WRITE, "ip changes network configuration")


def _interpreter_guarded(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    a._interpreter(name, args, reads_stdin)


_git_subcommand = _subcommand_policy(
    read={
        "status",
        "log",
        "diff",
        "show",
        "rev-parse",
        "describe",
        "blame",
        "ls-files",
        "ls-tree",
        "shortlog",
        "reflog",
    },
    value_options={"-C", "-c", "--git-dir", "--work-tree"},
)


def _git(a: _Analysis, name: str, args: list[Word], depth: int, reads_stdin: bool) -> None:
    for arg in args:
        text = arg.text
        if not text.startswith("-"):
            break  # the subcommand: what follows are its own options (``log -c`` is a diff format)
        if text == "-c" or text.startswith(("--config-env", "--exec-path=")):
            a.assessment.escalate(RiskClass.WRITE, f"git {text} sets configuration that can run commands")
    if any(w.text.startswith("--output") for w in args):
        a.assessment.escalate(RiskClass.WRITE, "git --output writes a file")
    _git_subcommand(a, name, args, depth, reads_stdin)


#: docker and podman share their command line.
_CONTAINER_READS = frozenset(
    {"ps", "logs", "inspect", "stats", "images", "top", "info", "version", "events", "port", "diff", "history"}
)
_CONTAINER_DESTRUCTIVE = frozenset({"rm", "rmi", "prune", "kill"})


_HANDLERS: dict[str, Handler] = {
    "rm": _rm,
    "chmod": _recursive_owner_change,
    "chown": _recursive_owner_change,
    "chgrp": _recursive_owner_change,
    "mv": _move,
    "cp": _move,
    "dd": _dd,
    "kill": _kill,
    "pkill": _kill,
    "killall": _kill,
    "killall5": _kill,
    "init": _init,
    "telinit": _init,
    "eval": _eval,
    "alias": _eval,
    "fc": _eval,
    "source": _source,
    ".": _source,
    "trap": _trap,
    "export": _declare,
    "declare": _declare,
    "typeset": _declare,
    "local": _declare,
    "readonly": _declare,
    "env": _env,
    "command": _command_builtin,
    "builtin": _command_builtin,
    "exec": _wrapper(value_options={"-a"}),
    "sudo": _wrapper(
        value_options={"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group", "--chdir"}
    ),
    "doas": _wrapper(value_options={"-u", "-C"}),
    "nice": _wrapper(value_options={"-n", "--adjustment"}),
    "nohup": _wrapper(),
    "setsid": _detaching_wrapper,
    "time": _wrapper(value_options={"-f", "--format", "-o", "--output"}),
    "stdbuf": _wrapper(value_options={"-i", "-o", "-e", "--input", "--output", "--error"}),
    "ionice": _wrapper(value_options={"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}),
    "timeout": _wrapper(value_options={"-s", "-k", "--signal", "--kill-after"}, positionals=1),
    "taskset": _wrapper(positionals=1),
    "chrt": _wrapper(positionals=1),
    "flock": _wrapper(value_options={"-w", "--timeout", "-E", "--conflict-exit-code"}, positionals=1),
    "unbuffer": _wrapper(),
    "strace": _wrapper(value_options={"-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X"}),
    "ltrace": _wrapper(value_options={"-o", "-e", "-p", "-s", "-u", "-a", "-n", "-x", "-l"}),
    "xargs": _wrapper(
        value_options={
            "-I",
            "-L",
            "-n",
            "-P",
            "-d",
            "-E",
            "-s",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--replace",
        },
        extra_dynamic=True,
    ),
    "chroot": _wrapper(positionals=1),
    "nsenter": _wrapper(value_options={"-t", "--target", "-S", "-G", "--setuid", "--setgid", "-w", "-r"}),
    "runuser": _wrapper(value_options={"-u", "-g", "-G", "--user", "--group"}),
    "watch": _watch,
    "ssh": _remote_shell,
    "su": _su,
    "find": _find,
    "ps": _ps,
    **{reader: _grep for reader in ("grep", "egrep", "fgrep", "zgrep", "rg", "ag")},
    "sed": _sed,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "curl": _curl,
    "wget": _wget,
    "nc": _netcat,
    "ncat": _netcat,
    "netcat": _netcat,
    "socat": _netcat,
    "tee": _tee,
    "busybox": _wrapper(),
    "systemctl": _subcommand_policy(
        read={
            "",
            "status",
            "show",
            "cat",
            "is-active",
            "is-enabled",
            "is-failed",
            "list-units",
            "list-unit-files",
            "list-timers",
            "list-sockets",
            "list-dependencies",
            "list-jobs",
            "get-default",
            "show-environment",
        },
        value_options={"-H", "--host", "-M", "--machine"},
        denied={
            "poweroff",
            "reboot",
            "halt",
            "kexec",
            "emergency",
            "rescue",
            "suspend",
            "hibernate",
            "hybrid-sleep",
            "soft-reboot",
            "isolate",
            "default",
        },
    ),
    "service": _options_decide(
        {"start", "stop", "restart", "reload", "force-reload"}, "changes a service", any_operand_writes=False
    ),
    "journalctl": _options_decide(
        {
            "--vacuum-size",
            "--vacuum-time",
            "--vacuum-files",
            "--rotate",
            "--flush",
            "--sync",
            "--relinquish-var",
            "--setup-keys",
        },
        "changes the journal",
    ),
    "dmesg": _options_decide(
        {"-c", "-C", "-D", "-E", "-n", "--clear", "--read-clear", "--console-off", "--console-on", "--console-level"},
        "changes the kernel log",
    ),
    "sysctl": _options_decide({"-w", "--write", "-p", "--load", "--system"}, "changes kernel settings"),
    "date": _options_decide({"-s", "--set"}, "sets the clock"),
    "hostname": _options_decide({"-F", "--file", "-b", "--boot"}, "sets the host name", any_operand_writes=True),
    "tcpdump": _options_decide({"-w", "-z", "-Z"}, "writes a capture file or runs a command"),
    "sort": _options_decide({"-o", "--output"}, "writes a file"),
    "uniq": lambda a, name, args, depth, reads_stdin: (
        a.assessment.escalate(RiskClass.WRITE, "uniq with two operands writes its output file")
        if len(_flags(args)[1]) > 1
        else None
    ),
    "yq": _options_decide({"-i", "--inplace"}, "edits a file in place"),
    "ethtool": _options_decide(
        {
            "-s",
            "-K",
            "-G",
            "-A",
            "-C",
            "-L",
            "-E",
            "-f",
            "-r",
            "-U",
            "-N",
            "-X",
            "-W",
            "--change",
            "--features",
            "--offload",
            "--set-ring",
            "--flash",
            "--reset",
        },
        "changes the network interface",
    ),
    "conntrack": _options_decide(
        {"-D", "-F", "-U", "-I", "--delete", "--flush", "--update", "--create"}, "changes the connection table"
    ),
    "tar": _options_decide(
        {"-x", "-c", "-r", "-u", "-A", "--extract", "--create", "--append", "--update", "--delete"}, "writes files"
    ),
    **{
        compressor: _read_only_with(
            {"-c", "-l", "-t", "--stdout", "--to-stdout", "--list", "--test"}, "rewrites files in place"
        )
        for compressor in ("gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "unzstd", "lz4")
    },
    "unzip": _read_only_with({"-l", "-p", "-t", "-v", "-Z"}, "extracts files"),
    "openssl": _options_decide({"-out", "-keyout"}, "writes files"),
    "mount": _options_decide(set(), "mounts a file system", any_operand_writes=True),
    "umount": _options_decide(set(), "unmounts a file system", any_operand_writes=True),
    "crontab": _crontab,
    "iptables": _firewall,
    "ip6tables": _firewall,
    "nft": _firewall,
    "ip": _ip,
    "kubectl": _subcommand_policy(
        read={
            "get",
            "describe",
            "logs",
            "top",
            "explain",
            "version",
            "api-resources",
            "api-versions",
            "cluster-info",
            "events",
            "auth",
            "diff",
        },
        destructive={"delete", "drain", "replace"},
        value_options={
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "-l",
            "--selector",
            "-o",
            "--output",
            "-c",
            "--container",
        },
    ),
    "docker": _subcommand_policy(
        read=_CONTAINER_READS,
        destructive=_CONTAINER_DESTRUCTIVE,
        value_options={"-H", "--host", "--context", "-c", "--config"},
    ),
    "podman": _subcommand_policy(
        read=_CONTAINER_READS,
        destructive=_CONTAINER_DESTRUCTIVE,
    ),
    "crictl": _subcommand_policy(
        read={"ps", "pods", "logs", "inspect", "inspectp", "inspecti", "stats", "statsp", "images", "info", "version"},
        destructive={"rm", "rmp", "rmi", "stop", "stopp"},
    ),
    "git": _git,
    "psql": _sql_client("postgres", {"-c", "--command"}),
    "mysql": _sql_client("mysql", {"-e", "--execute"}),
    "mariadb": _sql_client("mysql", {"-e", "--execute"}),
    "clickhouse-client": _sql_client("clickhouse", {"-q", "--query"}),
    "redis-cli": _redis_cli,
}
