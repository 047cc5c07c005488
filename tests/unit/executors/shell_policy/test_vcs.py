"""git (``executors._policy.shell.vcs``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CASES = [
    ("git log --oneline -20", READ),
    ("git --no-pager log -p -1 --stat", READ),
    ("git log --since='2 days ago' --format='%h %an %s'", READ),
    ("git status --porcelain", READ),
    ("git diff --cached --name-only", READ),
    ("git show HEAD:config/app.yml", READ),
    ("git rev-parse --abbrev-ref HEAD", READ),
    ("git describe --tags --always", READ),
    ("git blame -L 10,20 app.py", READ),
    ("git branch -a", READ),
    ("git tag -l 'v1.*'", READ),
    ("git remote -v", READ),
    ("git grep -n TODO", READ),
    ("git -c core.pager='touch /tmp/x' log", APPROVAL),
    ("git -c core.fsmonitor=x status", APPROVAL),
    ("git --config-env=core.pager=X log", APPROVAL),
    ("git -C /tmp/repo log", APPROVAL),
    ("git --git-dir=/tmp/x/.git log", APPROVAL),
    ("git --exec-path=/tmp log", APPROVAL),
    ("git log --output=/tmp/x", APPROVAL),
    ("git diff --ext-diff", APPROVAL),
    ("git grep -O vim x", APPROVAL),
    ("git -p log", APPROVAL),
    ("git branch evil", APPROVAL),
    ("git tag v9", APPROVAL),
    ("git reflog expire --all", APPROVAL),
    ("git remote add x http://x", APPROVAL),
    ("git commit -m x", APPROVAL),
    ("git checkout main", APPROVAL),
    ("git config --list", APPROVAL),
    ("git log --outp=/tmp/x", APPROVAL),
    ("git blame --contents /etc/shadow app.py", denied("shell.credential-file")),
    ("GIT_EXTERNAL_DIFF=x git diff", denied("shell.dangerous-env")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_git(command: str, expected: str) -> None:
    check(command, expected)
