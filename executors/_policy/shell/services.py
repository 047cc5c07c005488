"""Logs and services: journalctl, dmesg, systemctl, service, crontab -l.

journalctl and dmesg read with an option allow-list (vacuuming, rotating, clearing the ring
buffer are left out). systemctl and service are ``read`` with their showing verbs; a verb that
takes the host down is denied whatever the approval.
"""

from __future__ import annotations

from typing import ClassVar

from executors._policy.shell._allowlists import DMESG, JOURNALCTL
from executors._policy.shell._family import Command, Family, Judge, Verbs, check_options, check_verb
from executors._policy.shell._options import table
from executors._policy.shell._tables import RULE_POWER

SYSTEMCTL = Verbs(
    read=frozenset(
        {
            "",  # no verb: list-units
            *"status show cat is-active is-enabled is-failed is-system-running list-units list-unit-files "
            "list-timers list-sockets list-dependencies list-jobs list-machines list-paths list-automounts "
            "get-default show-environment".split(),
        }
    ),
    options=table(
        "-a --all -l --full --no-pager --no-legend -n= --lines= -o= --output= -p= --property= -P= --value -t= --type= "
        "--state= --plain -r --recursive --user --system -q --quiet --failed --reverse --before --after "
        "--with-dependencies --show-types --timestamp= --legend= -i --ignore-inhibitors --no-ask-password -h --help "
        "--version"
    ),
    takes_value=frozenset({"-H", "--host", "-M", "--machine", "-n", "--lines", "-o", "--output", "-p", "--property",
                           "-P", "-t", "--type", "--state", "--root", "--image", "--job-mode", "-s", "--signal",
                           "--kill-whom", "--kill-value", "--what", "--timestamp", "--legend", "--message", "--when",
                           "--reboot-argument", "--boot-loader-menu", "--boot-loader-entry", "--preset-mode",
                           "--drop-in"}),
    denied=frozenset({"poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "suspend", "hibernate",
                      "hybrid-sleep", "suspend-then-hibernate", "soft-reboot", "isolate", "default", "exit",
                      "switch-root"}),
    deny_rule=RULE_POWER,
)  # fmt: skip
SERVICE_READ = frozenset({"status", "--status-all"})
CRONTAB_LIST = table("-l -u= -V")


class LogsAndServices(Family):
    """The validator of journalctl, dmesg, systemctl, service and crontab."""

    names: ClassVar[frozenset[str]] = frozenset({"journalctl", "dmesg", "systemctl", "service", "crontab"})

    def validate(self, command: Command, judge: Judge) -> None:
        name = command.name
        if name == "journalctl":
            parsed = check_options(command, judge, JOURNALCTL)
            if parsed is not None and any(o.value is None for o in parsed.operands):
                judge.write("journalctl: a match only known at run time")
        elif name == "dmesg":
            check_options(command, judge, DMESG)
        elif name == "systemctl":
            check_verb(command, judge, SYSTEMCTL)
        elif name == "service":
            texts = [w.value for w in command.args]
            if not (texts == ["--status-all"] or (len(texts) == 2 and texts[1] == "status" and texts[0])):
                judge.write("service other than 'NAME status' or '--status-all' changes a service")
        else:
            parsed = check_options(command, judge, CRONTAB_LIST)
            if parsed is None or not parsed.has("-l") or parsed.operands:
                if any(w.value == "-r" for w in command.args):
                    judge.destructive("crontab -r removes every cron job")
                judge.write("crontab other than -l changes scheduled jobs")
