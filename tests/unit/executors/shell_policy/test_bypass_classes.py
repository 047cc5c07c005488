"""The classes of effects an outside red team got through the old classifier as ``read`` tasks
(issue 11 item 5): one line per class, each command of it must not be ``read`` any more."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import READ, outcome

CLASSES: dict[str, list[str]] = {
    "interpreter features": [
        "sed 'e touch /tmp/x' /etc/hostname",
        "sed 's/.*/touch \\/tmp\\/x/e' /etc/hostname",
        "sed -n 'w /tmp/x' /etc/hostname",
        "gawk 'BEGIN { system(\"touch /tmp/x\") }'",
        'awk \'BEGIN { print "x" > "/tmp/x" }\'',
        "awk 'BEGIN { \"id\" | getline; print }'",
        "find /tmp -maxdepth 0 -fprint /tmp/x",
    ],
    "${...} forms the parser did not look into": [
        "echo ${x:-$(touch /tmp/x)}",
        "echo ${x/$(touch /tmp/x)/y}",
        "echo ${!x}",
        "echo ${a[$(touch /tmp/x)]}",
    ],
    "prompt expansion": [
        "x='$(touch /tmp/x)'; echo ${x@P}",
        "PS1='$(touch /tmp/x)' bash -i",
        "PS4='$(touch /tmp/x)' bash -xc :",
    ],
    "options whose value is a program": [
        "git -c core.pager='touch /tmp/x' log",
        "tar --to-command='touch /tmp/x' -xf /tmp/a.tar",
        "tar -I 'touch /tmp/x' -tf /tmp/a.tar",
        "strace -o '|touch /tmp/x' true",
        "sort --compress-program=/tmp/x -S 1 /etc/hostname",
        "sort --compress-prog=/tmp/x /etc/hostname",
        "env -S 'touch /tmp/x'",
        "env --split-string='touch /tmp/x'",
        "ssh -o ProxyCommand='touch /tmp/x' host true",
        "mysql --pager='touch /tmp/x' -e 'SELECT 1'",
        "tcpdump -z /tmp/x -w /tmp/cap",
        "pidstat -e touch /tmp/x",
    ],
    "BASH_ENV set indirectly": [
        "export BASH_ENV=/tmp/x; bash -c :",
        "declare -x BASH_ENV=/tmp/x; bash -c :",
        "read BASH_ENV < /tmp/x; export BASH_ENV; bash -c :",
        "printf -v BASH_ENV /tmp/x; bash -c :",
        ": ${BASH_ENV:=/tmp/x}; bash -c :",
        "for BASH_ENV in /tmp/x; do bash -c :; done",
        "env BASH_ENV=/tmp/x bash -c :",
        "sudo BASH_ENV=/tmp/x bash -c :",
        "set -a; x=1",
        "declare -n r=BASH_ENV; r=/tmp/x",
    ],
    "writes through /dev/fd aliases": [
        "echo x > /dev/fd/../../tmp/x",
        "echo x > /dev/stdout",
        "echo x > /proc/self/fd/1",
        "echo x > /proc/self/cwd/x",
    ],
    "tools that write a file through an option": [
        "sort -o /tmp/x /etc/hostname",
        "uniq /etc/hostname /tmp/x",
        "curl -s -o /tmp/x http://localhost/",
        "wget -O /tmp/x --max-redirect=0 http://localhost/",
        "git log --output=/tmp/x",
        "journalctl --cursor-file=/tmp/x -n 1",
        "xxd /etc/hostname /tmp/x",
        "python3 -I -m json.tool /tmp/a.json /tmp/x",
        "gawk -o/tmp/x 1 /etc/hostname",
        "ss -D /tmp/x",
        "pmap -N /tmp/x 1",
        "psql -c 'SELECT 1' -o /tmp/x",
    ],
    "changes classified read": [
        "ip addr add 10.9.9.9/32 dev lo",
        "ip a a 10.9.9.9/32 dev lo",
        "ip route flush cache",
        "ip r d default",
        "sysctl -w net.ipv4.ip_forward=1",
        "sysctl net.ipv4.ip_forward=1",
        "kill -0 -9 1234",
        "kill -s 0 -s KILL 1234",
        "renice -n 19 -p 1",
        "ionice -c 3 -p 1",
        "ss -K dst 10.0.0.1",
        "ss -tK",
        "dmesg -C",
        "journalctl --vacuum-size=1",
    ],
}


@pytest.mark.parametrize(
    "command",
    [command for commands in CLASSES.values() for command in commands],
    ids=[f"{name}: {command[:50]}" for name, commands in CLASSES.items() for command in commands],
)
def test_no_effect_of_the_red_teams_classes_is_read(command: str) -> None:
    assert outcome(command) != READ
