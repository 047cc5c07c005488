"""Shell builtins and small utilities (``executors._policy.shell.builtin_commands``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

ENV = denied("shell.dangerous-env")
CASES = [
    ("echo hello; printf '%s\\n' a b", READ),
    ("echo $HOME $USER $$ $?", READ),
    ("echo token=[$SOME_TOKEN]", READ),
    ("printf -v line '%s' x; echo \"$line\"", READ),
    ("test -d /tmp && echo yes", READ),
    ("sleep 0.1; true; false; :", READ),
    ("seq 1 3 | tac", READ),
    ("cd /tmp && pwd", READ),
    ('read -r first < /var/log/syslog; echo "$first"', READ),
    ('mapfile -t lines < /var/log/syslog; echo "${#lines}"', READ),
    ("set -euo pipefail; ls", READ),
    ("set -x; ls", READ),
    ("shopt -s nullglob; ls /var/log/*.gz", READ),
    ("declare -p; export -p", READ),
    ("export LANG=C; sort /tmp/a", READ),
    ("local x=1; readonly y=2", READ),
    ("unset x; wait", READ),
    ("ulimit -a; umask", READ),
    ("type ls; which ls; hash", READ),
    ("compgen -c | head", READ),
    ("echo $((1))", denied("shell.unparseable")),
    ("export FOO=1", APPROVAL),
    ("declare -x FOO=1", APPROVAL),
    ("FOO=1; ls", APPROVAL),
    ("http_proxy=http://10.0.0.1:3128; curl -s http://x/", APPROVAL),
    ("declare -n ref=HOME", APPROVAL),
    ("declare -i x='a[1]'", APPROVAL),
    ("let x=1", APPROVAL),
    ("set -a; x=1", APPROVAL),
    ("set -o allexport", APPROVAL),
    ("set -k", APPROVAL),
    ("shopt -s expand_aliases", APPROVAL),
    ("shopt -s extdebug", APPROVAL),
    ("mapfile -C 'id' -c 1 a < /tmp/a", APPROVAL),
    ("hash -p /usr/bin/id ls", APPROVAL),
    ("enable -f /tmp/x.so x", APPROVAL),
    ("complete -C id ls", APPROVAL),
    ("compgen -C id x", APPROVAL),
    ("ulimit -c unlimited", APPROVAL),
    ("umask 000", APPROVAL),
    ("history -w /tmp/h", APPROVAL),
    ('printf "$FMT" x', APPROVAL),
    ("export LD_PRELOAD=/tmp/x.so", ENV),
    ("export BASH_ENV", ENV),
    ("declare -x BASH_ENV=/tmp/x", ENV),
    ("typeset -x PATH=/tmp", ENV),
    ("local -x PROMPT_COMMAND=id", ENV),
    ("readonly GIT_DIR=/tmp/x", ENV),
    ("read BASH_ENV < /tmp/x", ENV),
    ("printf -v PATH /tmp", ENV),
    ("mapfile PS4 < /tmp/x", ENV),
    ("getopts ab PATH", ENV),
    ("for BASH_ENV in /tmp/x; do :; done", ENV),
    ("export 'BASH_FUNC_ls%%=() { id; }'", ENV),
    ("printf -v 'a[$(id)]' 1", denied("shell.dynamic-command")),
    ("read 'a[$(id)]' < /dev/null", denied("shell.dynamic-command")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_builtins(command: str, expected: str) -> None:
    check(command, expected)
