"""``ShellRules``: what an environment adds to the shell policy."""

from __future__ import annotations

from executors._policy.shell import ShellRules
from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied

TRUSTING = ShellRules(read_only_commands=frozenset({"my-diag"}))


def test_a_trusted_command_is_read_with_any_options() -> None:
    check("my-diag --summary -x --write-nothing /srv/app", READ, TRUSTING)
    check("my-diag --summary", APPROVAL)


def test_a_trusted_command_still_may_not_name_credential_files() -> None:
    check("my-diag /etc/shadow", denied("shell.credential-file"), TRUSTING)


def test_a_trusted_command_does_not_lift_the_rest_of_the_line() -> None:
    check("my-diag > /tmp/out", APPROVAL, TRUSTING)
    check("my-diag; rm -rf /", denied("shell.rm-root"), TRUSTING)


def test_allowed_and_denied_hosts_apply_to_urls_in_commands() -> None:
    allowing = ShellRules(http_allow_hosts=("169.254.169.254",))
    denying = ShellRules(http_deny_hosts=("10.0.0.0/8",))

    check("curl -s http://169.254.169.254/latest/meta-data/", READ, allowing)
    check("curl -s http://10.1.2.3/health", denied("http.denied-host"), denying)


def test_redis_commands_an_environment_denies() -> None:
    check("redis-cli KEYS '*'", denied("redis.environment-denied"), ShellRules(redis_denied=frozenset({"KEYS"})))
