"""Credential files by any path that reaches them, and aliases (``executors._policy.shell._paths``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors._policy.shell._paths import alias_reason, expand_braces, names_credentials, searches_credentials
from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied

#: The ways to read /etc/shadow (and its kin) the red team and we found; each is denied.
SHADOW = [
    "cat /etc/shadow",
    "cat /etc//shadow",
    "cat /etc/./shadow",
    "cat /./etc/shadow",
    "cat /tmp/../etc/shadow",
    "cat /etc/shadow-",
    "cat /etc/gshadow",
    "cat /var/backups/shadow.bak",
    "cd /etc; cat shadow",
    "cd /etc && cat ./shadow",
    "cd / && cat etc/shadow",
    "cat /proc/self/root/etc/shadow",
    "cat /proc/1/root/etc/shadow",
    "cat /etc/sha''dow",
    "cat /etc/sh\\adow",
    "cat /etc/shad*",
    "cat /etc/sha?ow",
    "cat /etc/[s]hadow",
    "cat /e*/shadow",
    "cat /???/shadow",
    "cat /etc/*",
    "cat /etc/sha{d,x}ow",
    "cat /etc/$(echo shadow)",
    'f=/etc/shadow; cat "$f"',
    "cat < /etc/shadow",
    "3</etc/shadow cat /dev/fd/3",
    "getent shadow",
    "grep -r root /etc",
    "grep -r '' /proc/1/root/etc",
    "find /etc -name shadow -exec cat {} \\;",
    "find /etc -name shadow | xargs cat",
    "sed -n p /etc/shadow",
    "awk 1 /etc/shadow",
    "sort --files0-from=/etc/shadow",
    "jq -R . /etc/shadow",
    "tar -cf - /etc/shadow",
    "dd if=/etc/shadow",
    "cp /etc/shadow /tmp/x",
    "curl -F f=@/etc/shadow http://localhost/",
    "sudo cat /etc/shadow",
    "bash -c 'cat /etc/shadow'",
    "watch cat /etc/shadow",
]
OTHER_SECRETS = [
    "cat /proc/self/environ",
    "cat /proc/1/environ",
    "strings /proc/$PPID/environ",
    "tr '\\0' '\\n' < /proc/$$/environ",
    "cat /proc/1/task/1/environ",
    "cat /proc/*/environ",
    "cat /proc/1/mem",
    "cat /proc/kcore",
    "cat /root/.ssh/id_rsa",
    "cat ~/.ssh/id_ed25519",
    "cat ~/.pgpass",
    "cat /root/.my.cnf",
    "cat /etc/mysql/debian.cnf",
    "cat ~/.netrc",
    "cat ~/.aws/credentials",
    "cat ~/.kube/config",
    "cat /etc/kubernetes/admin.conf",
    "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
    "cat /run/secrets/db_password",
    "cat /etc/ssl/private/server.key",
    "cat /etc/ssh/ssh_host_ed25519_key",
    "cat ~/.bash_history",
    "cat /etc/krb5.keytab",
    "ps auxe",
    "cat /dev/sda",
    "head -c 1000000 /dev/nvme0n1p1 | strings",
    "dd if=/dev/mapper/vg-root bs=1M count=10",
    "grep -r --devices=read root /dev",
    "cat /dev/s*",
    "strings /swapfile",
]


@pytest.mark.parametrize("command", SHADOW + OTHER_SECRETS)
def test_credential_reads_are_denied(command: str) -> None:
    check(command, denied("shell.credential-file"))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("cat /etc/passwd /etc/hostname /etc/os-release", READ),
        ("cat /proc/self/status /proc/1/cmdline", READ),
        ("cat /var/log/shadow-backup.log", READ),
        ("ls -l /etc/ssh /proc/1/fd", READ),
        ("lsblk /dev/sda; blkid /dev/sda1; df -h /dev/sda1; file -s /dev/sda1", READ),
        ("head -c 16 /dev/urandom | od -x", READ),
        ("readlink /proc/1/cwd", READ),
        ("cat /proc/self/cwd/app.log", APPROVAL),
        ("cat /proc/1/fd/3", APPROVAL),
        ("cat /dev/fd/../../etc/hostname", APPROVAL),
        ("cat /var/log/../log/syslog", APPROVAL),
    ],
)
def test_paths_that_are_plain_or_aliases(command: str, expected: str) -> None:
    check(command, expected)


def test_globs_are_compared_with_every_credential_file_they_can_match() -> None:
    assert names_credentials("/etc/s*", pattern=True)
    assert names_credentials("/proc/*/environ", pattern=True)
    assert names_credentials("*", pattern=True)
    assert not names_credentials("/var/log/*.log", pattern=True)
    assert not names_credentials("/etc/s*", pattern=False)  # quoted: the literal name "s*"


def test_brace_expansion_is_expanded_for_the_comparison() -> None:
    assert expand_braces("/etc/sha{d,x}ow") == ["/etc/shadow", "/etc/shaxow"]
    assert expand_braces("log.{1..3}") == ["log.1", "log.2", "log.3"]
    assert not names_credentials("/tmp/{a,b}", pattern=True)
    assert names_credentials("/etc/{1..500}", pattern=True)  # too many: a wildcard


def test_recursive_searches() -> None:
    assert searches_credentials("/etc", pattern=False)
    assert searches_credentials("/etc/mysql/conf.d", pattern=False)
    assert searches_credentials("/home/app", pattern=False)
    assert searches_credentials("/var", pattern=False)
    assert searches_credentials("logs", pattern=False)  # relative: where is only known on the machine
    assert searches_credentials("/var/l*", pattern=True)
    assert not searches_credentials("/var/log/app", pattern=False)
    assert not searches_credentials("/etc/nginx", pattern=False)


def test_aliases() -> None:
    assert alias_reason("/proc/self/root/x")
    assert alias_reason("/proc/12/task/12/cwd/x")
    assert alias_reason("/dev/fd/3/x")
    assert alias_reason("a/../b")
    assert alias_reason("/dev/fd/63") is None
    assert alias_reason("/var/log/syslog") is None


def test_symbolic_links_are_followed_where_the_command_runs(tmp_path: Path) -> None:
    (tmp_path / "secret").symlink_to("/etc/shadow")
    (tmp_path / "etc").symlink_to("/etc")
    (tmp_path / "logs").symlink_to("/var/log")
    (tmp_path / "disk").symlink_to("/dev/sda")

    check(f"cat {tmp_path}/secret", denied("shell.credential-file"))
    check(f"cat {tmp_path}/etc/gshadow", denied("shell.credential-file"))
    check(f"grep -r root {tmp_path}/etc", denied("shell.credential-file"))
    check(f"echo x > {tmp_path}/disk", denied("shell.device-write"))
    check(f"tail -n 5 {tmp_path}/logs/syslog", READ)
    check(f"grep -r error {tmp_path}/logs", READ)
