"""Processes and system state (``executors._policy.shell.system``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CREDENTIALS = denied("shell.credential-file")
CASES = [
    ("ps aux", READ),
    ("ps -eo pid,comm,etime", READ),
    ("ps o pid,user,etime", READ),
    ("ps axo pid,comm", READ),
    ("ps -u postgres -o pid,cmd", READ),
    ("ps --ppid 1 --forest", READ),
    ("top -b -n 1 -d 1 -p 1,2", READ),
    ("free -s 1 -c 3", READ),
    ("vmstat -S M 1 3", READ),
    ("iostat -dx -p sda 1 2", READ),
    ("pgrep -af nginx", READ),
    ("pstree -ap 1", READ),
    ("lsof -i :80 -sTCP:LISTEN", READ),
    ("lsof -nP +D /var/log", READ),
    ("lsof /var/log/syslog", READ),
    ("sysctl -n vm.swappiness", READ),
    ("date", READ),
    ("date -d '1 hour ago' +%s", READ),
    ("hostnamectl", READ),
    ("timedatectl status", READ),
    ("loginctl list-sessions --no-pager", READ),
    ("getent passwd postgres", READ),
    ("last -n 20", READ),
    ("blkid -o list", READ),
    ("ps auxe", CREDENTIALS),
    ("ps eww -p 1", CREDENTIALS),
    ("ps e", CREDENTIALS),
    ("getent shadow", CREDENTIALS),
    ("getent gshadow root", CREDENTIALS),
    ("getent -s files shadow root", CREDENTIALS),
    ("sysctl -w vm.swappiness=10", APPROVAL),
    ("sysctl vm.swappiness=10", APPROVAL),
    ("sysctl -p /etc/sysctl.conf", APPROVAL),
    ("sysctl --system", APPROVAL),
    ("date -s '2020-01-01'", APPROVAL),
    ("date 010100002020", APPROVAL),
    ("hostname evil", APPROVAL),
    ("hostname -F /tmp/name", APPROVAL),
    ("timedatectl set-time '2020-01-01'", APPROVAL),
    ("hostnamectl set-hostname x", APPROVAL),
    ("loginctl terminate-session 1", APPROVAL),
    ("mount /dev/sdb1 /mnt", APPROVAL),
    ("mount -o remount,rw /", APPROVAL),
    ("blkid -c /tmp/cache", APPROVAL),
    ("pmap -n 1", APPROVAL),
    ("pidstat -e sh -c id", APPROVAL),
    ("lsof +m", APPROVAL),
    ("lsof -k /tmp/kernel", APPROVAL),
    ("ps $OPTIONS", APPROVAL),
    ("date -f /etc/shadow", CREDENTIALS),
    ("last -f /etc/shadow", CREDENTIALS),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_system_state(command: str, expected: str) -> None:
    check(command, expected)
