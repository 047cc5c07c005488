"""The parse walk (``executors._policy.shell._walk``): expansions, variables, redirections,
assignments and command names, whatever the command."""

from __future__ import annotations

import pytest

from executors._policy.shell import analyze_shell
from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

DYNAMIC = denied("shell.dynamic-command")
CREDENTIALS = denied("shell.credential-file")
EXPANSIONS = [
    ('echo $HOME ${HOME} "$USER" $$ $? ${#HOME}', READ),
    ('echo "$(uptime)" `date` $(cat /proc/loadavg)', READ),
    ("diff <(ls /tmp/a) <(ls /tmp/b)", READ),
    ("echo ~ ~root/x", READ),
    ("grep 'x$' /tmp/a; grep \"x$\" /tmp/a; grep -v '^$' /tmp/a", READ),
    ("echo ${x@P}", APPROVAL),
    ("echo ${!x}", APPROVAL),
    ("echo ${x/a/b} ${x:0:1} ${x%.log}", APPROVAL),
    ("echo ${x:-default}", APPROVAL),
    ("echo ${a[0]}", APPROVAL),
    ("echo ${x:-$(touch /tmp/y)}", APPROVAL),
    ("echo $(touch /tmp/y)", APPROVAL),
    ("cat <(touch /tmp/y)", APPROVAL),
    ("echo ${x:-$(rm -rf /)}", denied("shell.rm-root")),
    (": ${BASH_ENV:=/tmp/x}", denied("shell.dangerous-env")),
    ("echo $'\\x41'", denied("shell.ansi-c-quoting")),
    ('echo $"hello"', denied("shell.ansi-c-quoting")),
    ("echo $((1 + 2))", denied("shell.unparseable")),
    ("((x = 1))", APPROVAL),
    ("( (ls) )", READ),
    # words only known at run time where an option could stand
    ("sort $(echo -o /tmp/x) /tmp/a", CREDENTIALS),
    ("x='-o /tmp/y'; sort $x /tmp/a", APPROVAL),
    ("x=-r; sort $x /tmp/a", APPROVAL),
    ('x=-r; sort "$x" /tmp/a', APPROVAL),
    ("dmesg {-C,-x}", APPROVAL),
    ("sort /tmp/{a,b}", APPROVAL),
    ("cat *.log", APPROVAL),
    ("cat ./*.log /var/log/*.log", READ),
    ('grep -e "$PATTERN" /var/log/syslog', READ),
    ('grep -- "$PATTERN" /var/log/syslog', READ),
]
VARIABLES = [
    ("f=/var/log/syslog; tail -n 5 $f", READ),
    ('f=/var/log/syslog; tail -n 5 "$f"', READ),
    ('for f in /var/log/a /var/log/b; do tail "$f"; done', READ),
    ('n=5; head -n "$n" /var/log/syslog', READ),
    ("f=/etc/shadow; cat $f", CREDENTIALS),
    ('f=/etc; cat "$f/shadow"', CREDENTIALS),
    ('f=/var/log/x; f=/etc/shadow; cat "$f"', CREDENTIALS),
    ('f=/var/log/x && f=/etc/shadow; cat "$f"', CREDENTIALS),
    ('f=/var/log/x; (f=/etc/shadow); cat "$f"', CREDENTIALS),
    ('for f in /var/log/a /etc/shadow; do cat "$f"; done', CREDENTIALS),
    ('while read f; do cat "$f"; done < /tmp/list', CREDENTIALS),
    ('cat "$LOGFILE"', CREDENTIALS),
    ("cat $HOME/.pgpass", CREDENTIALS),
    ("bash -c 'cat $1' x /etc/shadow", CREDENTIALS),
    ("f=/var/log/x; bash -c 'cat $f'", CREDENTIALS),
    ("x=1 y=2; echo $x $y", READ),
    ("LANG=C ls; TZ=UTC date; LC_ALL=C sort /tmp/a", READ),
    ("FOO=1; ls", APPROVAL),
    ("LANG=/tmp/locale sort /tmp/a", APPROVAL),
    ("read LC_ALL < /tmp/x", APPROVAL),
    ("FOO=1 ls", APPROVAL),
    ("http_proxy=http://10.0.0.1 curl -s http://example.com/", APPROVAL),
    ("LD_PRELOAD=/tmp/x.so ls", denied("shell.dangerous-env")),
    ("BASH_ENV=/tmp/x bash -c ls", denied("shell.dangerous-env")),
    ("PS4='$(id)' bash -xc ls", denied("shell.dangerous-env")),
    ("PROMPT_COMMAND=id bash -i", denied("shell.dangerous-env")),
    ("IFS=/; ls", denied("shell.dangerous-env")),
    ("GIT_SSH_COMMAND=id git status", denied("shell.dangerous-env")),
]
REDIRECTIONS = [
    ("ls >/dev/null 2>&1", READ),
    ("ls 2>/dev/null >&2", READ),
    ("ls &>/dev/null", READ),
    ("exec 2>&1; ls", READ),
    ("ls 3>&-", READ),
    ("cat < /var/log/syslog", READ),
    ("ls > /tmp/out", APPROVAL),
    ("ls >> /tmp/out", APPROVAL),
    ("ls >| /tmp/out", APPROVAL),
    ("ls &> /tmp/out", APPROVAL),
    ("ls >& /tmp/out", APPROVAL),
    ("ls > /dev/stderr", APPROVAL),
    ("ls > /dev/fd/2", APPROVAL),
    ("ls > /dev/fd/../../tmp/x", APPROVAL),
    ('ls > "$OUT"', APPROVAL),
    ("cat <> /tmp/x", APPROVAL),
    ("{ ls; } > /tmp/out", APPROVAL),
    ("for i in 1; do ls; done > /tmp/out", APPROVAL),
    ("cat < /proc/self/cwd/x", APPROVAL),
    ("cat < /dev/tcp/example.com/80", APPROVAL),
    ("echo x > /dev/sda", denied("shell.device-write")),
    ("echo x >> /etc/passwd", denied("shell.device-write")),
    ("echo 1 > /proc/sys/vm/drop_caches", denied("shell.device-write")),
    ("echo b > /proc/sysrq-trigger", denied("shell.device-write")),
    ("cat < /etc/shadow", CREDENTIALS),
    ("cat 0< /etc/gshadow", CREDENTIALS),
    ("exec 3</etc/shadow", CREDENTIALS),
    ("while read l; do echo $l; done < /etc/shadow", CREDENTIALS),
    ("{ cat; } < /root/.pgpass", CREDENTIALS),
    ('cat < "$F"', CREDENTIALS),
    ("exec 3<>/dev/tcp/169.254.169.254/80", denied("http.metadata-endpoint")),
    ("cat <<EOF\nhello $USER\nEOF", READ),
    ("cat <<EOF\n${x@P}\nEOF", APPROVAL),
    ("cat <<EOF\n${x:-y}\nEOF", APPROVAL),
    ("cat <<EOF\n$((1+1))\nEOF", DYNAMIC),
    ("cat <<EOF\n$(id)\nEOF", DYNAMIC),
    ("cat <<EOF\n`id`\nEOF", DYNAMIC),
    ("bash <<EOF\nid\nEOF", denied("shell.pipe-to-interpreter")),
]
NAMES = [
    ("/usr/bin/uptime", READ),
    ("/bin/ls -l /tmp", READ),
    ("r''m -rf /", denied("shell.rm-root")),
    ("\\rm -rf /", denied("shell.rm-root")),
    ('"rm" -rf /', denied("shell.rm-root")),
    ("/usr/bin/../bin/rm -rf /", denied("shell.rm-root")),
    ("/tmp/x/ls", APPROVAL),
    ("./uptime", APPROVAL),
    ("$CMD -l", DYNAMIC),
    ("${CMD} -l", DYNAMIC),
    ("$(echo ls) -l", DYNAMIC),
    ("`echo ls` -l", DYNAMIC),
    ("l? /tmp", DYNAMIC),
    ("{ls,-l}", DYNAMIC),
    ("x=ls; $x", DYNAMIC),
    ("a[1]=x", DYNAMIC),
    ("rm${IFS}-rf${IFS}/", DYNAMIC),
    ("f() { ls; }", denied("shell.function-definition")),
    (":(){ :|:& };:", denied("shell.function-definition")),
    ("[[ -f /tmp/a ]]", denied("shell.unparseable")),
    ("case x in x) ls;; esac", denied("shell.unparseable")),
    ("ls; rm -rf /", denied("shell.rm-root")),
    ("ls && rm -rf / || true", denied("shell.rm-root")),
    ("if true; then rm -rf /; fi", denied("shell.rm-root")),
    ("while false; do rm -rf /; done", denied("shell.rm-root")),
    ("ls | rm -rf /", denied("shell.rm-root")),
    ("ls |& rm -rf /", denied("shell.rm-root")),
    ("rm -rf / &", denied("shell.rm-root")),
    ("! rm -rf /", denied("shell.rm-root")),
    ("ls; touch /tmp/x", APPROVAL),
    ("no-such-command --now", APPROVAL),
    ("no-such-command /etc/shadow", CREDENTIALS),
]
CASES = EXPANSIONS + VARIABLES + REDIRECTIONS + NAMES


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_walk(command: str, expected: str) -> None:
    check(command, expected)


def test_every_simple_command_is_a_subject_for_the_environments_deny_patterns() -> None:
    assessment = analyze_shell('df -h && "journal"ctl -n 5 | grep x; echo $(uptime)')

    assert assessment.subjects == ["df -h", "journalctl -n 5", "grep x", "uptime", "echo $(uptime)"]


def test_words_are_read_with_bashs_quoting_not_bashlexs() -> None:
    # bashlex drops the backslash of "a\nb" and of x='a\nb'; bash keeps it.
    assessment = analyze_shell("stat --printf='%s\\n' /var/log/syslog; printf \"%s\\n\" a")

    assert assessment.subjects == ["stat --printf=%s\\n /var/log/syslog", "printf %s\\n a"]
    assert assessment.reasons == []


def test_nothing_is_read_after_a_parse_failure() -> None:
    assessment = analyze_shell("ls; echo 'unterminated")

    assert [d.rule for d in assessment.denials] == ["shell.unparseable"]
