"""journalctl, dmesg, systemctl, service, crontab (``executors._policy.shell.services``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

POWER = denied("shell.power")
CASES = [
    ("journalctl -u nginx -n 100 --no-pager", READ),
    ("journalctl -n 20", READ),
    ("journalctl -b -1 -p err", READ),
    ("journalctl --since=-1h -o json-pretty _SYSTEMD_UNIT=nginx.service", READ),
    ("journalctl -k -f", READ),
    ("journalctl --list-boots", READ),
    ("dmesg -T | tail", READ),
    ("dmesg --level=err,crit -x", READ),
    ("systemctl", READ),
    ("systemctl status nginx postgresql --no-pager", READ),
    ("systemctl list-timers --all", READ),
    ("systemctl cat nginx", READ),
    ("service --status-all", READ),
    ("crontab -l", READ),
    ("crontab -l -u postgres", READ),
    ("journalctl --vacuum-size=1M", APPROVAL),
    ("journalctl --vacuum-time=1s", APPROVAL),
    ("journalctl --rotate", APPROVAL),
    ("journalctl --flush", APPROVAL),
    ("journalctl -n --vacuum-files=1", APPROVAL),
    ("journalctl --cursor-file=/tmp/c", APPROVAL),
    ("journalctl --vac=1M", APPROVAL),
    ("dmesg -C", APPROVAL),
    ("dmesg -c", APPROVAL),
    ("dmesg -n 1", APPROVAL),
    ("dmesg -D", APPROVAL),
    ("systemctl restart nginx", APPROVAL),
    ("systemctl stop postgresql", APPROVAL),
    ("systemctl daemon-reload", APPROVAL),
    ("systemctl -H db1 status nginx", APPROVAL),
    ("systemctl set-environment X=1", APPROVAL),
    ("service nginx restart", APPROVAL),
    ("crontab -r", APPROVAL),
    ("crontab /tmp/jobs", APPROVAL),
    ("systemctl reboot", POWER),
    ("systemctl -H db1 reboot", POWER),
    ("systemctl --machine=x poweroff", POWER),
    ("systemctl isolate rescue.target", POWER),
    ("systemctl kexec", POWER),
    ("systemctl $OPTIONS reboot", POWER),
    ("dmesg -F /etc/shadow", denied("shell.credential-file")),
    ("journalctl --file=/etc/shadow", denied("shell.credential-file")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_logs_and_services(command: str, expected: str) -> None:
    check(command, expected)
