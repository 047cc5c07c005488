"""sed (``executors._policy.shell.sed``): only scripts read through and found read-only are ``read``."""

from __future__ import annotations

import pytest

from executors._policy.shell.sed import ScriptProblem, check_script
from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CASES = [
    ("sed -n '1,20p' /tmp/a", READ),
    ("sed 's/a/b/g' /tmp/a", READ),
    ("sed -E 's/(a+)/<\\1>/2' /tmp/a", READ),
    ("sed 's|/usr|/opt|g; s#x#y#' /tmp/a", READ),
    ("sed -n '/ERROR/{p;q}' /tmp/a", READ),
    ("sed -n '$p' /tmp/a", READ),
    ("sed '0~4d' /tmp/a", READ),
    ("sed '/start/,/end/!d' /tmp/a", READ),
    ("sed -e '1i\\\nheader' /tmp/a", READ),
    ("sed 'y/abc/xyz/' /tmp/a", READ),
    ("sed -n -e p -e '=' /tmp/a", READ),
    ("sed ':a;N;$!ba;s/\\n/ /g' /tmp/a", READ),
    ("sed --sandbox -n p /tmp/a", READ),
    ("sed 'e id' /tmp/a", APPROVAL),
    ("sed '1e touch /tmp/x' /tmp/a", APPROVAL),
    ("sed 's/x/id/e' /tmp/a", APPROVAL),
    ("sed 's/x/y/gew /tmp/o' /tmp/a", APPROVAL),
    ("sed -n 'w /tmp/out' /tmp/a", APPROVAL),
    ("sed 'W /tmp/out' /tmp/a", APPROVAL),
    ("sed 's/a/b/w /tmp/out' /tmp/a", APPROVAL),
    ("sed 'R /tmp/other' /tmp/a", APPROVAL),
    ("sed '1r /tmp/other' /tmp/a", APPROVAL),
    ("sed -i 's/a/b/' /tmp/a", APPROVAL),
    ("sed -ni 's/a/b/p' /tmp/a", APPROVAL),
    ("sed -i.bak 's/a/b/' /tmp/a", APPROVAL),
    ("sed --in-place=.bak 's/a/b/' /tmp/a", APPROVAL),
    ("sed --in-pl 's/a/b/' /tmp/a", APPROVAL),
    ("sed --follow-symlinks 's/a/b/' /tmp/a", APPROVAL),
    ("sed -f /tmp/script.sed /tmp/a", APPROVAL),
    ("sed -e p -e 'w /tmp/x' /tmp/a", APPROVAL),
    ('sed -e "$SCRIPT" /tmp/a', APPROVAL),
    ('sed "$SCRIPT" /tmp/a', denied("shell.credential-file")),  # which word is the file is not known
    ("sed 's/a' /tmp/a", APPROVAL),
    ("sed '{p' /tmp/a", APPROVAL),
    ("sed 'k' /tmp/a", APPROVAL),
    ("sed '1r /etc/shadow' /tmp/a", denied("shell.credential-file")),
    ("sed -n p /etc/shadow", denied("shell.credential-file")),
    ("sed -f /etc/shadow /tmp/a", denied("shell.credential-file")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_sed(command: str, expected: str) -> None:
    check(command, expected)


@pytest.mark.parametrize("script", ["p", "s/a/b/3g", "1~2{h;d};x;G", "/x/I,+3 s/a/b/M", "$!N; P; D", "l 40", "q5"])
def test_read_only_scripts_parse(script: str) -> None:
    check_script(script)


@pytest.mark.parametrize("script", ["e", "s/a/b/e", "s/a/b/w f", "w f", "r f", "1R f", "2W f", "s/a/b", "y/ab/", "}"])
def test_other_scripts_are_problems(script: str) -> None:
    with pytest.raises(ScriptProblem):
        check_script(script)
