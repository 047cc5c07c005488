"""Processes and system state: ps, top, free, df, uptime, vmstat, iostat, lsof, sysctl, date...

Mostly option allow-lists (``_allowlists.SYSTEM``). A few show and set with the same name: they
are ``read`` only in their showing form (``sysctl`` without ``name=value``, ``date +FORMAT``,
``hostname`` without a name, ``mount`` without operands). ``ps e`` shows every process's
environment and ``getent shadow`` the password hashes: both are denied as credential reads.
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._allowlists import SYSTEM
from executors._policy.shell._family import Command, Family, Judge, Verbs, check_options, check_reader, check_verb
from executors._policy.shell._options import table
from executors._policy.shell._tables import RULE_CREDENTIALS

_HELP = "--help --version"
SYSCTL = table(
    f"-a -A -X -n -e -N -b -q -d -h -V --all --values --names --binary --ignore --quiet --pattern= -r= {_HELP}",
    refused={"-w": "sets kernel parameters", "--write": "sets kernel parameters", "-p": "loads kernel parameters",
             "--load": "loads kernel parameters", "--system": "loads kernel parameters",
             "-f": "loads kernel parameters"},
)  # fmt: skip
DATE = table(
    f"-d= -f= -I? -R -r= -u --date= --file= --iso-8601? --rfc-email --rfc-3339= --reference= --utc --universal "
    f"--debug --resolution {_HELP}",
    reads="-f --file",
    refused={"-s": "sets the clock", "--set": "sets the clock"},
)
HOSTNAME = table(
    f"-a -A -d -f -i -I -s -y -h -V --alias --all-fqdns --domain --fqdn --long --ip-address --all-ip-addresses "
    f"--short --yp --nis {_HELP}",
    refused={"-F": "sets the host name from a file", "--file": "sets the host name from a file",
             "-b": "sets the host name", "--boot": "sets the host name"},
)  # fmt: skip
GETENT = table(f"-s= -i -A --service= --no-idn --no-addrconfig {_HELP}")
CREDENTIAL_DATABASES = frozenset({"shadow", "gshadow"})
MOUNT_LIST = table("-l -t= -v -h -V --show-labels --types= --verbose --help --version")
_SYSTEMD_OPTIONS = table(
    "--no-pager --no-legend --no-ask-password -p= --property= --value -P= -a --all -l --full -n= --lines= -o= "
    "--output= --json= --static --transient --pretty --monitor -h --help --version"
)
_SYSTEMD_VALUED = frozenset({"-p", "--property", "-P", "-n", "--lines", "-o", "--output", "-H", "--host", "-M",
                             "--machine", "--json"})  # fmt: skip
SHOW_ONLY: dict[str, Verbs] = {
    "hostnamectl": Verbs(frozenset({"", "status", "hostname", "icon-name", "chassis", "deployment", "location"}),
                         _SYSTEMD_OPTIONS, _SYSTEMD_VALUED),
    "timedatectl": Verbs(frozenset({"", "status", "show", "list-timezones", "timesync-status", "show-timesync"}),
                         _SYSTEMD_OPTIONS, _SYSTEMD_VALUED),
    "loginctl": Verbs(frozenset({"", "list-sessions", "session-status", "show-session", "list-users", "user-status",
                                 "show-user", "list-seats", "seat-status", "show-seat"}),
                      _SYSTEMD_OPTIONS, _SYSTEMD_VALUED),
}  # fmt: skip
#: ps's GNU-style options whose value is the next word (or after "=").
_PS_VALUED = frozenset({"--sort", "--pid", "--ppid", "--quick-pid", "--sid", "--tty", "--user", "--User", "--group",
                        "--Group", "--format", "--cols", "--columns", "--rows", "--width", "--lines"})  # fmt: skip
_PS_UNIX_VALUED = frozenset("CGgpqstUuoOkN")
#: BSD-style ps letters whose value is the next word (only as the last letter of a group).
_PS_BSD_VALUED = frozenset("oOkpqtUN")
_LSOF_FLAGS = frozenset("abClLnNOPQRtUvVwXhE")
_LSOF_VALUED = frozenset("pucdgsSTFrkox")
_LSOF_PLUS = {"D": True, "d": True, "c": True, "r": False, "L": False, "E": False, "f": False, "w": False, "M": False}


class SystemState(Family):
    """The validator of commands that show processes, memory, disks, the kernel and users."""

    names: ClassVar[frozenset[str]] = frozenset(
        {*SYSTEM, *SHOW_ONLY, "ps", "sysctl", "date", "hostname", "getent", "mount", "lsof"}
    )

    def validate(self, command: Command, judge: Judge) -> None:
        name = command.name
        if name == "ps":
            self._ps(command, judge)
        elif name == "lsof":
            self._lsof(command, judge)
        elif name in SHOW_ONLY:
            check_verb(command, judge, SHOW_ONLY[name])
        elif name == "sysctl":
            parsed = check_options(command, judge, SYSCTL)
            if parsed is not None and any(o.value is None or "=" in o.value for o in parsed.operands):
                judge.write("sysctl name=value sets a kernel parameter")
        elif name == "date":
            parsed = check_options(command, judge, DATE)
            if parsed is not None and any(o.value is None or not o.value.startswith("+") for o in parsed.operands):
                judge.write("date with an operand other than +FORMAT sets the clock")
        elif name == "hostname":
            parsed = check_options(command, judge, HOSTNAME)
            if parsed is not None and parsed.operands:
                judge.write("hostname NAME sets the host name")
        elif name == "getent":
            self._getent(command, judge)
        elif name == "mount":
            parsed = check_options(command, judge, MOUNT_LIST)
            if parsed is not None and parsed.operands:
                judge.write("mount with operands mounts a file system")
        else:
            check_reader(command, judge, SYSTEM[name])

    def _getent(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, GETENT)
        databases = parsed.operands[:1] if parsed is not None else command.args
        for database in databases:
            if database.value is None or database.value in CREDENTIAL_DATABASES:
                judge.deny(RULE_CREDENTIALS, f"getent {database.text} prints password hashes")
                return

    def _ps(self, command: Command, judge: Judge) -> None:
        args = command.args
        index = 0
        while index < len(args):
            word = args[index]
            text = word.text
            index += 1
            if word.value is None or word.may_be_option:
                judge.write(f"ps: {text} is only known at run time")
                return
            if text.startswith("--"):
                if text in _PS_VALUED:
                    index += 1
                continue
            if text.startswith("-"):
                # UNIX style: flags, then at most one letter whose value is the rest or the next word.
                valued = next((p for p, letter in enumerate(text[1:], start=1) if letter in _PS_UNIX_VALUED), None)
                if valued == len(text) - 1:
                    index += 1
                continue
            # BSD style: a group of letters; "e" shows every process's environment.
            if re.fullmatch(r"[A-Za-z]+", text):
                if "e" in text:
                    judge.deny(RULE_CREDENTIALS, f"ps {text} shows every process's environment, secrets included")
                    return
                if text[-1] in _PS_BSD_VALUED:
                    index += 1
            elif not re.fullmatch(r"[\d,]+", text):  # a list of PIDs
                judge.write(f"ps: {text} is not an argument the policy reads")
                return

    def _lsof(self, command: Command, judge: Judge) -> None:
        args = command.args
        index = 0
        while index < len(args):
            word = args[index]
            text = word.text
            index += 1
            if word.value is None or word.may_be_option:
                judge.write(f"lsof: {text} is only known at run time")
                return
            if text == "--":
                break
            if text.startswith("+") and len(text) > 1:
                letter = text[1]
                if letter == "m":
                    judge.write("lsof +m writes a mount supplement file")
                    return
                if letter not in _LSOF_PLUS:
                    judge.write(f"lsof: {text} is not an option the policy knows to be read-only")
                    return
                if _LSOF_PLUS[letter] and len(text) == 2:
                    index += 1
                continue
            if not text.startswith("-") or text == "-":
                continue  # a file: lsof lists who has it open, it does not read it
            index = _lsof_cluster(text, args, index, judge)
            if index < 0:
                return


def _lsof_cluster(text: str, args: list, index: int, judge: Judge) -> int:
    """lsof's ``-nPi :80``: flags, then one option whose value is the rest or the next word."""
    for position, letter in enumerate(text[1:], start=1):
        if letter in ("k", "m"):
            judge.write(f"lsof -{letter} names kernel files to read")
            return -1
        if letter == "i" or letter in _LSOF_VALUED:
            if position + 1 == len(text) and index < len(args) and not args[index].text.startswith(("-", "+")):
                return index + 1  # lsof takes the next word as the value (optional for -i, -g, -F, -r...)
            return index
        if letter not in _LSOF_FLAGS:
            judge.write(f"lsof: -{letter} is not an option the policy knows to be read-only")
            return -1
    return index
