"""Wrappers: commands that run another command (sudo, env, timeout, nice, xargs, watch, ssh...).

The wrapper's own options are read against its allow-list; the command it runs is then judged
like any other. Options that change what runs or where (``env -S``, ``strace -o |cmd``, ``ssh -o
ProxyCommand=``, ``sudo -b``) are not on the lists. When the wrapper's options are not understood
the task needs an approval, and the rest of the line is still searched for a command a default
rule denies (``sudo --odd-option rm -rf /`` stays denied).
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._allowlists import RUNS_PROGRAM, WRITES_FILE
from executors._policy.shell._family import Command, Family, Judge, find_verb
from executors._policy.shell._options import OptionTable, Parsed, parse, table
from executors._policy.shell._tables import RULE_DYNAMIC
from executors._policy.shell._words import UNKNOWN, Word, literal_word

#: How many possible starts of a wrapped command are judged when the wrapper is not understood.
MAX_RESCANS = 12
_COMMAND_NAME = re.compile(r"[A-Za-z0-9_./+@%][A-Za-z0-9_./+:@%-]*")
_BACKGROUND = "runs the command in the background, where it outlives the task"
WRAPPERS: dict[str, tuple[OptionTable, int]] = {
    "sudo": (table("-u= --user= -g= --group= -n --non-interactive -H --set-home -E --preserve-env? -k "
                   "--reset-timestamp -S --stdin -C= --close-from= -D= --chdir= -h= --host= -p= --prompt= -r= --role= "
                   "-t= --type= -T= --command-timeout= -P --preserve-groups -i --login -s --shell -U= --other-user= "
                   "-l --list -V --version --help", permute=False,
                   refused={"-b": _BACKGROUND, "--background": _BACKGROUND, "-A": RUNS_PROGRAM,
                            "--askpass": RUNS_PROGRAM, "-e": "edits files", "--edit": "edits files",
                            "-R": "changes the root folder", "--chroot": "changes the root folder",
                            "-v": "extends the sudo session"}), 0),
    "doas": (table("-u= -n", permute=False, refused={"-s": "starts a shell", "-C": "reads a configuration"}), 0),
    "timeout": (table("-s= --signal= -k= --kill-after= --preserve-status --foreground -v --verbose --help --version",
                      permute=False), 1),
    "nohup": (table("--help --version", permute=False), 0),
    "stdbuf": (table("-i= -o= -e= --input= --output= --error= --help --version", permute=False), 0),
    "unbuffer": (table("-p", permute=False), 0),
    "time": (table("-f= --format= -p --portability -v --verbose -q --quiet --help --version", permute=False,
                   refused={"-o": WRITES_FILE, "--output": WRITES_FILE, "-a": WRITES_FILE,
                            "--append": WRITES_FILE}), 0),
    "exec": (table("-a= -c -l", permute=False), 0),
    "command": (table("-p -v -V", permute=False), 0),
    "builtin": (table("", permute=False), 0),
}  # fmt: skip
#: Wrappers whose use needs an approval whatever they run (the command is still judged).
CHANGING_WRAPPERS = {
    "setsid": "starts a process outside the task's session, which can outlive it",
    "flock": "creates a lock file",
    "chroot": "runs a command under another root folder",
    "nsenter": "runs a command in other namespaces",
    "busybox": "runs busybox applets, whose options are not GNU's",
    "ltrace": "traces a program, which can change what it does",
    "chrt": "changes a process's scheduling",
    "unshare": "runs a command in new namespaces",
    "setpriv": "runs a command with other privileges",
    "runcon": "runs a command in another security context",
}
ENV = table("-i --ignore-environment -0 --null -u= --unset= -C= --chdir= -v --debug -a= --argv0= --help --version",
            permute=False, refused={"-S": "splits a string into a command line of its own",
                                    "--split-string": "splits a string into a command line of its own"})  # fmt: skip
NICE = table("-n= --adjustment= --help --version", permute=False, numeric=True)
IONICE = table("-c= --class= -n= --classdata= -p= --pid= -P= --pgid= -u= --uid= -t --ignore -h --help -V --version",
               permute=False)  # fmt: skip
TASKSET = table("-a --all-tasks -p --pid -c --cpu-list -h --help -V --version", permute=False)
XARGS = table("-0 --null -d= --delimiter= -E= -e? --eof? -I= --replace? -i? -L= --max-lines= -l? -n= --max-args= -P= "
              "--max-procs= -s= --max-chars= -r --no-run-if-empty -t --verbose -x --exit --show-limits -a= --arg-file= "
              "--help --version", permute=False, reads="-a --arg-file",
              refused={"-p": "asks on the terminal", "--interactive": "asks on the terminal",
                       "-o": "gives the command the terminal", "--open-tty": "gives the command the terminal",
                       "--process-slot-var": "sets a variable in the environment of what it runs"})  # fmt: skip
WATCH = table("-n= --interval= -d? --differences? -t --no-title -b --beep -e --errexit -g --chgexit -c --color -C "
              "--no-color -x --exec -p --precise -w --no-wrap -q= --equexit= -r --no-rerun -h --help -v --version",
              permute=False)  # fmt: skip
STRACE = table(
    "-c -C -f -q -qq -t -tt -ttt -T -v -y -yy -Y -k -w -z -Z -i -n -s= -e= -a= -X= -U= -S= --summary-only "
    "--summary --follow-forks --quiet? --successful-only --failed-only --syscall-times? --string-limit= "
    "--columns= --const-print-style= --stack-traces --decode-fds? --help -V --version",
    permute=False,
    refused={
        "-o": "writes its output to a file or a program",
        "--output": "writes its output elsewhere",
        "-p": "reads another process's system calls, secrets included",
        "--attach": "reads another process's system calls, secrets included",
        "-E": "sets the environment of the traced program",
        "-u": "runs as another user",
        "-b": "detaches",
        "-D": "runs as a daemon",
        "-ff": "writes one file per process",
    },
)
_STRACE_EXPRESSION = re.compile(r"((trace|t|signal|signals|s|abbrev|a|verbose|v|raw|x|status|quiet|q|decode-fds)=)?"
                                r"[\w,!%?@/-]*")  # fmt: skip
SSH = table("-p= -l= -i= -4 -6 -q -v -T -n -x -C -t -a -k -G -V -c= -m= -b= -B= -e= -o=", permute=False,
            refused={"-F": "reads a configuration that can run commands", "-L": "forwards ports",
                     "-R": "forwards ports", "-D": "opens a proxy", "-W": "forwards a connection",
                     "-w": "forwards a tunnel", "-f": _BACKGROUND, "-E": WRITES_FILE, "-S": "uses a control socket",
                     "-M": "opens a control socket", "-O": "controls another connection",
                     "-J": "jumps through another host", "-I": "loads a PKCS#11 library",
                     "-A": "forwards the agent", "-X": "forwards X11", "-Y": "forwards X11",
                     "-s": "starts a subsystem", "-N": "runs no command (a tunnel)"})  # fmt: skip
SSH_OPTIONS = frozenset(
    "batchmode connecttimeout stricthostkeychecking serveraliveinterval serveralivecountmax loglevel "
    "passwordauthentication pubkeyauthentication identitiesonly port user connectionattempts "
    "numberofpasswordprompts preferredauthentications compression addressfamily checkhostip".split()
)
#: util-linux su and runuser take options after the user name too (su postgres -c id).
SU = table("-c= --command= - -l --login -m -p --preserve-environment -g= --group= -G= --supp-group= -P --pty -h "
           "--help -V --version -w= --whitelist-environment=", permute=True,
           refused={"-s": "runs another shell", "--shell": "runs another shell"})  # fmt: skip
RUNUSER = table("-u= --user= -g= --group= -G= --supp-group= -l --login -m -p --preserve-environment -c= --command= "
                "-w= --whitelist-environment= -P --pty -h --help -V --version", permute=True,
                refused={"-s": "runs another shell", "--shell": "runs another shell"})  # fmt: skip


class Wrappers(Family):
    """The validator of commands that run other commands."""

    names: ClassVar[frozenset[str]] = frozenset(
        {*WRAPPERS, *CHANGING_WRAPPERS, "env", "nice", "ionice", "taskset", "xargs", "watch", "strace", "ssh", "su",
         "runuser"}
    )  # fmt: skip

    def validate(self, command: Command, judge: Judge) -> None:
        name = command.name
        handler = getattr(self, f"_{name}", None)
        if handler is not None:
            handler(command, judge)
        elif name in CHANGING_WRAPPERS:
            judge.write(f"{name} {CHANGING_WRAPPERS[name]}")
            rescan(command, judge)  # what it runs still meets the default rules
        else:
            options, positionals = WRAPPERS[name]
            parsed = _parsed(command, judge, options)
            if parsed is None:
                return
            if name == "command" and parsed.has("-v", "-V"):
                return  # describes the names
            if name == "sudo" and parsed.has("-l", "--list", "-V", "--version", "--help") and not parsed.operands:
                return
            inner = parsed.operands[positionals:]
            if name in ("sudo", "doas"):
                inner = _assignments(inner, judge)  # sudo VAR=value cmd puts VAR in cmd's environment
            if name == "sudo" and parsed.has("-i", "--login", "-s", "--shell") and not inner:
                judge.write("sudo -i/-s without a command opens an interactive shell")
            judge.argv(inner, command.depth, reads_stdin=command.reads_stdin)

    def _env(self, command: Command, judge: Judge) -> None:
        for index, word in enumerate(command.args):
            text = word.text
            split = re.match(r"-[A-Za-z0-9]*S", text) if not text.startswith("--") else None
            if split or text == "--split-string" or text.startswith("--split-string="):
                judge.write("env -S splits a string into a command line of its own")
                # Its value (attached, or the next word) is a command line: still judged for denials.
                attached = text[split.end() :] if split else text.partition("=")[2]
                following = " ".join(w.text for w in command.args[index + 1 :])
                judge.nested(f"{attached} {following}", command.depth)
                return
        parsed = _parsed(command, judge, ENV)
        if parsed is None:
            return
        judge.argv(_assignments(parsed.operands, judge), command.depth, reads_stdin=command.reads_stdin)

    def _nice(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, NICE)
        if parsed is None:
            return
        for option, value in parsed.options:
            adjustment = value.value if value is not None else None
            if adjustment is None or not re.fullmatch(r"\+?\d+", adjustment):
                judge.write(f"nice {option} {adjustment or ''} raises a priority (or is only known at run time)")
        judge.argv(parsed.operands, command.depth, reads_stdin=command.reads_stdin)

    def _ionice(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, IONICE)
        if parsed is None:
            return
        targets = parsed.has("-p", "--pid", "-P", "--pgid", "-u", "--uid")
        sets = parsed.has("-c", "--class", "-n", "--classdata", "-t", "--ignore")
        if targets and sets:
            judge.write("ionice changes the I/O priority of running processes")
        classes = [v.value for v in parsed.values("-c", "--class")]
        if any(c not in ("2", "3", "best-effort", "idle") for c in classes):
            judge.write("ionice with the realtime class (or a class only known at run time)")
        judge.argv(parsed.operands, command.depth, reads_stdin=command.reads_stdin)

    def _taskset(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, TASKSET)
        if parsed is None:
            return
        if parsed.has("-p", "--pid"):
            if len(parsed.operands) != 1:
                judge.write("taskset -p MASK PID changes where a running process may run")
            return
        judge.argv(parsed.operands[1:], command.depth, reads_stdin=command.reads_stdin)

    def _xargs(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, XARGS)
        if parsed is None:
            return
        inner = parsed.operands or [literal_word("echo")]
        replace = [v.value for v in parsed.values("-I", "--replace", "-i") if v.value] or (
            ["{}"] if parsed.has("-i", "--replace") else []
        )
        # What xargs reads from its input becomes arguments: where its replace string is, or at the end.
        inner = [_replaced(w, replace) for w in inner] if replace else [*inner, UNKNOWN]
        judge.argv(inner, command.depth, reads_stdin=False)

    def _watch(self, command: Command, judge: Judge) -> None:
        position, _ = find_verb(command.args, WATCH.valued)
        if any(w.value is None for w in command.args[position:]):
            judge.deny(RULE_DYNAMIC, "watch runs a command built at run time")
            return
        parsed = _parsed(command, judge, WATCH)
        if parsed is None or not parsed.operands:
            return
        if parsed.has("-x", "--exec"):
            judge.argv(parsed.operands, command.depth, reads_stdin=False)
        elif any(w.value is None for w in parsed.operands):
            judge.deny(RULE_DYNAMIC, "watch runs a command built at run time")
        else:
            judge.nested(" ".join(str(w.value) for w in parsed.operands), command.depth)

    def _strace(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, STRACE)
        if parsed is None:
            return
        for expression in parsed.values("-e"):
            if not _STRACE_EXPRESSION.fullmatch(expression.value or "!"):
                judge.write(f"strace -e {expression.text} changes or dumps what the program does")
        if not parsed.operands:
            judge.write("strace without a command to run")
        judge.argv(parsed.operands, command.depth, reads_stdin=command.reads_stdin)

    def _ssh(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, SSH)
        if parsed is None:
            return
        for value in parsed.values("-o"):
            key, _, setting = (value.value or "").partition("=")
            if key.lower() not in SSH_OPTIONS and not (key.lower() == "userknownhostsfile" and setting == "/dev/null"):
                judge.write(f"ssh -o {value.text} is not an ssh option the policy knows to be harmless")
        remote = parsed.operands[1:]
        if not remote:
            judge.write("an interactive ssh session")
        elif any(w.value is None for w in remote):
            judge.deny(RULE_DYNAMIC, "ssh runs a remote command built at run time")
        else:
            judge.nested(" ".join(str(w.value) for w in remote), command.depth)

    def _su(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, SU)
        if parsed is None:
            return
        self._run_command_option(command.name, parsed, judge, command.depth)

    def _runuser(self, command: Command, judge: Judge) -> None:
        parsed = _parsed(command, judge, RUNUSER)
        if parsed is None:
            return
        if parsed.has("-u", "--user"):
            judge.argv(parsed.operands, command.depth, reads_stdin=command.reads_stdin)
        else:
            self._run_command_option(command.name, parsed, judge, command.depth)

    def _run_command_option(self, name: str, parsed: Parsed, judge: Judge, depth: int) -> None:
        commands = parsed.values("-c", "--command")
        if not commands:
            judge.write(f"{name} without -c opens a shell as another user")
        for text in commands:
            if text.value is None:
                judge.deny(RULE_DYNAMIC, f"{name} -c runs a command built at run time")
            else:
                judge.nested(text.value, depth)


def _parsed(command: Command, judge: Judge, options: OptionTable) -> Parsed | None:
    parsed = parse(command.args, options)
    if parsed.problem:
        judge.write(f"{command.name}: {parsed.problem}")
        rescan(command, judge)
        return None
    judge.reads(value for option, value in parsed.options if option in options.reads and value is not None)
    return parsed


def rescan(command: Command, judge: Judge) -> None:
    """Judge the rest of a wrapper's line from every word that could be where its command starts
    (its options were not understood, or it is a wrapper not analysed further): the task already
    needs an approval; this only finds what a default rule denies (``sudo -x rm -rf /``)."""
    starts = [i for i, w in enumerate(command.args) if not w.dynamic and _COMMAND_NAME.fullmatch(w.text)]
    for index in starts[:MAX_RESCANS]:
        judge.denials_of(command.args[index:], command.depth, reads_stdin=command.reads_stdin)


def _assignments(operands: list[Word], judge: Judge) -> list[Word]:
    """Report the leading ``NAME=value`` operands (env, sudo) as exported; return the command after them."""
    while operands and "=" in operands[0].text and not operands[0].text.startswith("="):
        name = operands[0].text.partition("=")[0]
        judge.assigns(name, exported=True, value=operands[0].tail(len(name) + 1))
        operands = operands[1:]
    return operands


def _replaced(word: Word, marks: list[str]) -> Word:
    if not any(mark in word.text for mark in marks):
        return word
    return Word(word.text, dynamic=True, may_be_option=True, splits=False, pattern="*")
