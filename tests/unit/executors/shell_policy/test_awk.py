"""awk (``executors._policy.shell.awk``): programs with system(), pipes, redirections, getline from
files, @-directives or ARGV changes are not ``read``; strings naming credential files are denied."""

from __future__ import annotations

import pytest

from executors._policy.shell.awk import check_program
from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

CASES = [
    ("awk '{print $1}' /tmp/a", READ),
    ("awk -F: '$3 >= 1000 {print $1}' /etc/passwd", READ),
    ("awk 'NR > 1 && $2 > 10 {n++} END {print n}' /tmp/a", READ),
    ("awk '{ if ($1 > 5) print $1 }' /tmp/a", READ),
    ("awk '{ s += $2 } END { printf \"%.2f\\n\", s / NR }' /tmp/a", READ),
    ("awk '/ERROR|FATAL/ {c[$3]++} END {for (k in c) print k, c[k]}' /tmp/a", READ),
    ("awk -v limit=5 '$1 > limit' /tmp/a", READ),
    ('awk \'{print (length($0) > 80 ? "long" : "short")}\' /tmp/a', READ),
    ("awk '{ while ((getline line) > 0) print line }' /tmp/a", READ),
    ("gawk --sandbox '{print}' /tmp/a", READ),
    ("awk '{print $1}' x=1 /tmp/a", READ),
    ("gawk 'BEGIN{system(\"id\")}'", APPROVAL),
    ("awk '{print | \"sh\"}' /tmp/a", APPROVAL),
    ("awk '{print |& \"cat\"}' /tmp/a", APPROVAL),
    ("awk 'BEGIN{\"id\" | getline x; print x}'", APPROVAL),
    ("awk '{print > \"/tmp/x\"}' /tmp/a", APPROVAL),
    ("awk '{print $1 >> \"/tmp/x\"}' /tmp/a", APPROVAL),
    ('awk \'{printf "%s", $1 > "/tmp/x"}\' /tmp/a', APPROVAL),
    ('awk \'{printf("%s", $1) > "/dev/stderr"}\' /tmp/a', APPROVAL),
    ("awk 'BEGIN{getline l < \"/tmp/x\"; print l}'", APPROVAL),
    ("awk 'BEGIN{ARGV[1]=\"/tmp/x\"; ARGC=2} {print}'", APPROVAL),
    ("gawk '@load \"filefuncs\"; BEGIN{}'", APPROVAL),
    ("gawk '@include \"x\"'", APPROVAL),
    ('gawk \'BEGIN{f="system"; @f("id")}\'', APPROVAL),
    ("gawk -f /tmp/prog.awk /tmp/a", APPROVAL),
    ("gawk -E /tmp/prog.awk /tmp/a", APPROVAL),
    ("gawk --load x '1' /tmp/a", APPROVAL),
    ("gawk -o/tmp/pretty '1' /tmp/a", APPROVAL),
    ("gawk --profile=/tmp/p '1' /tmp/a", APPROVAL),
    ("gawk -e 'BEGIN{system(\"id\")}'", APPROVAL),
    ("mawk -W exec /tmp/x", APPROVAL),
    # a program only known at run time: every word of the line may then be a file it reads
    ('awk "$PROGRAM" /tmp/a', denied("shell.credential-file")),
    ("awk '{print \"x}' /tmp/a", APPROVAL),
    ("awk 1 /etc/shadow", denied("shell.credential-file")),
    ("awk 'BEGIN{while((getline l < \"/etc/shadow\")>0) print l}'", denied("shell.credential-file")),
    ("awk 'BEGIN{ARGV[1]=\"/etc/shadow\"; ARGC=2} {print}'", denied("shell.credential-file")),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_awk(command: str, expected: str) -> None:
    check(command, expected)


def test_a_program_is_read_to_its_end_whatever_it_finds_first() -> None:
    strings, problem = check_program('BEGIN { system("x"); print "/etc/shadow" }')
    assert problem == "system() runs a command"
    assert strings == ["x", "/etc/shadow"]


def test_division_and_regular_expressions_are_told_apart() -> None:
    # "a / 2 / 1" is division; were it read as a regular expression it could hide the system()
    assert check_program("{ x = a / 2; system(1); y = 3 / 1 }")[1] == "system() runs a command"
    assert check_program("$0 ~ /a|b/ { print }")[1] == ""
