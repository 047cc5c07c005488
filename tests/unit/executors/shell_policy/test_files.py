"""ls, du, stat, tar, gzip, unzip (``executors._policy.shell.files``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CREDENTIALS = denied("shell.credential-file")
CASES = [
    ("ls -la --time-style=long-iso /var/log", READ),
    ("ls -d /etc/*", READ),
    ("du -sh --max-depth=1 /var", READ),
    ("du -ah /var/log | sort -h | tail", READ),
    ("stat --printf='%s\\n' /var/log/syslog", READ),
    ("file -b /usr/bin/ls", READ),
    ("readlink -f /proc/1/exe", READ),
    ("realpath --relative-to=/srv /srv/app/current", READ),
    ("tar -tzf /backup/app.tgz", READ),
    ("tar tvf /backup/app.tar", READ),
    ("tar -xzOf /backup/app.tgz etc/app.conf", READ),
    ("gzip -dc /var/log/syslog.2.gz | tail", READ),
    ("gzip -l /var/log/syslog.2.gz", READ),
    ("zcat /var/log/syslog.2.gz | grep -c error", READ),
    ("unzip -l /tmp/a.zip", READ),
    ("tar -xf /backup/app.tar", APPROVAL),
    ("tar -czf /tmp/a.tgz /srv/app", APPROVAL),
    ("tar -cf - /srv/app", APPROVAL),
    ("tar --to-command='sh -c id' -xf /tmp/a.tar", APPROVAL),
    ("tar -I 'sh -c id' -tf /tmp/a.tar", APPROVAL),
    ("tar --use-compress-program=zstd -tf /tmp/a.tar", APPROVAL),
    ("tar --checkpoint-action=exec=id -tf /tmp/a.tar", APPROVAL),
    ("tar -tf backup-host:/tmp/a.tar", APPROVAL),
    ("tar -g /tmp/snap -tf /tmp/a.tar", APPROVAL),
    ("gzip /var/log/app.log", APPROVAL),
    ("gunzip /var/log/app.log.gz", APPROVAL),
    ("gzip -r /var/log/app", APPROVAL),
    ("unzip /tmp/a.zip", APPROVAL),
    ("unzip -l /tmp/a.zip -d /tmp/x", APPROVAL),
    ("file -C -m /tmp/magic", APPROVAL),
    ("ls --bogus /tmp", APPROVAL),
    ("ls -l /etc/shadow", CREDENTIALS),
    ("tar -cf - /etc/shadow", CREDENTIALS),
    ("tar -xOf /backup/etc.tar etc/shadow", CREDENTIALS),
    ("tar -T /etc/shadow -tf /tmp/a.tar", CREDENTIALS),
    ("gzip -c /etc/shadow", CREDENTIALS),
    ("du --files0-from=/etc/shadow", CREDENTIALS),
    ("file -f /etc/shadow", CREDENTIALS),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_files_and_archives(command: str, expected: str) -> None:
    check(command, expected)
