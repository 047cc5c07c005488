"""find (``executors._policy.shell.find``): read tests and actions; -exec judged; -delete, -fprint..."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CASES = [
    ("find /var/log -name '*.log' -mmin -60", READ),
    ("find /var/log -type f -size +100M -printf '%s %p\\n'", READ),
    ("find -L /srv/app -maxdepth 2 -newermt '2026-01-01' -ls", READ),
    ("find /srv/app \\( -name '*.tmp' -o -name '*.bak' \\) -print0", READ),
    ("find /var/log -name '*.gz' -exec ls -l {} +", READ),
    ("find /var/log/app -name '*.log' -exec tail -n 1 {} \\;", READ),
    ("find /tmp -delete", denied("shell.rm-root")),
    ("find /var/log -name '*.gz' -delete", denied("shell.rm-root")),
    ("find / -delete", denied("shell.rm-root")),
    ("find -delete", denied("shell.rm-root")),
    ("find /srv/app/cache -name '*.tmp' -delete", APPROVAL),
    ("find /srv/app -fprint /tmp/list", APPROVAL),
    ("find /srv/app -fprintf /tmp/list '%p'", APPROVAL),
    ("find /srv/app -fls /tmp/list", APPROVAL),
    ("find /srv/app -exec touch {} \\;", APPROVAL),
    ("find /srv/app -execdir sh -c 'id' \\;", READ),
    ("find /srv/app -ok rm {} \\;", APPROVAL),
    ("find /srv/app -newer /tmp/x -regex '.*' -bogus", APPROVAL),
    ("find $DIR -name x", APPROVAL),
    ("find / -exec rm -rf {} +", denied("shell.rm-root")),
    ("find /etc -name shadow -exec cat {} \\;", denied("shell.credential-file")),
    ("find /etc -exec grep -l root {} +", denied("shell.credential-file")),
    ("find /srv -files0-from /etc/shadow", denied("shell.credential-file")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_find(command: str, expected: str) -> None:
    check(command, expected)
