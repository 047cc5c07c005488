"""Text filters (``executors._policy.shell.text``): option allow-lists, files read by options, tee."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CREDENTIALS = denied("shell.credential-file")
CASES = [
    ("cat -n /var/log/syslog", READ),
    ("tac /var/log/syslog | head", READ),
    ("head -c 100 /var/log/syslog", READ),
    ("head -20 /var/log/syslog", READ),
    ("tail -n +5 /var/log/syslog", READ),
    ("tail --lines=5 /var/log/syslog", READ),
    ("grep -E 'a|b' -A 2 -B2 --color=never /var/log/syslog", READ),
    ("grep -e x -e y /var/log/syslog", READ),
    ("grep -- -x /var/log/syslog", READ),
    ("cut -d: -f1,3 /etc/passwd", READ),
    ("sort -t: -k3,3n /etc/passwd", READ),
    ("sort --check=quiet /tmp/a", READ),
    ("uniq -c /tmp/a", READ),
    ("wc -l /var/log/syslog", READ),
    ("tr -d '\\r' < /tmp/a", READ),
    ("column -t -s, /tmp/a.csv", READ),
    ("od -c /tmp/a | head", READ),
    ("xxd -l 64 /tmp/a", READ),
    ("base64 -d /tmp/a.b64", READ),
    ("sha256sum /usr/bin/python3", READ),
    ("jq -r '.items[] | .name' /tmp/a.json", READ),
    ("jq -n --arg x 1 '$x'", READ),
    ("echo x | tee /dev/null", READ),
    ("diff -u /tmp/a /tmp/b", READ),
    ("diff -r --no-dereference /srv/app/releases/1 /srv/app/releases/2", READ),
    ("diff -r /srv/app/releases/1 /srv/app/releases/2", APPROVAL),  # follows links out of them
    ("grep -R x /var/log/app", APPROVAL),
    # options that write, run programs, or are not known
    ("sort -o /tmp/out /tmp/a", APPROVAL),
    ("sort --output=/tmp/out /tmp/a", APPROVAL),
    ("sort -uo/tmp/out /tmp/a", APPROVAL),
    ("sort --compress-program=gzip /tmp/a", APPROVAL),
    ("sort --compress-prog=gzip /tmp/a", APPROVAL),
    ("sort -T /tmp /tmp/a", APPROVAL),
    ("uniq /tmp/a /tmp/b", APPROVAL),
    ("xxd /tmp/a /tmp/b", APPROVAL),
    ("xxd -r -p /tmp/a.hex /tmp/b", APPROVAL),
    ("diff -l /tmp/a /tmp/b", APPROVAL),
    ("rg --pre cat x /var/log", APPROVAL),
    ("jq -L /tmp/mods '.' /tmp/a.json", APPROVAL),
    ("strings @/tmp/opts /bin/ls", APPROVAL),
    ("cat --bogus /tmp/a", APPROVAL),
    ("head --line=5 /tmp/a", APPROVAL),
    ("echo x | tee /tmp/a", APPROVAL),
    ("echo x | tee -a /etc/passwd", denied("shell.device-write")),
    ("less -R /tmp/a", APPROVAL),
    # files an option or operand reads
    ("sort --files0-from=/etc/shadow", CREDENTIALS),
    ("sort --random-source=/etc/shadow /tmp/a", CREDENTIALS),
    ("sort --files0-from=/tmp/list", CREDENTIALS),  # prints the files the list names
    ("wc --files0-from=/etc/shadow", CREDENTIALS),
    ("grep -f /etc/shadow /tmp/a", CREDENTIALS),
    ("grep --exclude-from=/root/.pgpass x /tmp/a", CREDENTIALS),
    ("jq --rawfile s /etc/shadow -n '$s'", CREDENTIALS),
    ("jq --slurpfile s /root/.docker/config.json -n '$s'", CREDENTIALS),
    ("jq -R . /etc/shadow", CREDENTIALS),
    ("base64 /etc/shadow", CREDENTIALS),
    ("diff /etc/shadow /dev/null", CREDENTIALS),
    ("hexdump -f /etc/shadow /tmp/a", CREDENTIALS),
    ("xxd /proc/self/environ", CREDENTIALS),
    ("sort --bogus /etc/shadow", CREDENTIALS),
    # recursive searches
    ("grep -r root /etc", CREDENTIALS),
    ("grep -R root /", CREDENTIALS),
    ("grep -r root", CREDENTIALS),
    ("grep -r root /et?", CREDENTIALS),
    ("grep -r root /var/lib", CREDENTIALS),
    ("grep -r root /proc/1/task", CREDENTIALS),
    ("grep -r root /tmp/../etc", CREDENTIALS),
    ("grep -r root app/config", CREDENTIALS),
    ("diff -r /etc /tmp/etc", CREDENTIALS),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_text_filters(command: str, expected: str) -> None:
    check(command, expected)
