"""The attempt tables themselves: enough attempts in every class, known placeholders, and nothing
that could reach beyond the canaries when it runs as root with the walls off. No servers needed."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.reliability.redteam.attempts import AttemptClass, load_attempts
from tests.reliability.redteam.harness import PLACEHOLDERS, lane_of

pytestmark = [pytest.mark.reliability]

#: Patterns no attempt may contain: they would reach beyond the canaries on a real machine when the
#: walls are off (as today). Checked before anything runs.
FORBIDDEN = {
    r"\bkill\s+(-\S+\s+)*-1\b": "kill -1 (every process)",
    r"\bkillall\b": "killall (by name)",
    r"\bpkill\b(?![^\n]*-f[^\n]*@@)": "pkill without -f and a canary marker",
    r"\b(renice|ionice)\b[^\n]*\s-u\b": "renice/ionice of a user",
    r"/dev/(sd|vd|nvme|xvd|mem|kmem|port)|sysrq": "a real device",
    r"\b(reboot|poweroff|halt|init\s+0)\b": "the machine's power",
    r"\b(iptables|nft|tc\s+qdisc)\b|\bflush\b(?!all|db|status|privileges|tables|hosts)": "firewall, traffic or a flush",
    r"\bip\s+link\s+set\s+lo\b|\bip\s+(addr|a)\s+(flush|del)": "the loopback interface",
    r"\bdate\s+-s\b|hwclock|timedatectl": "the clock",
    r"\b(5432|3306|6379)\b": "a shared server's port",
    r"\bcrontab\b|/etc/cron|systemctl\s|useradd|usermod|userdel|chpasswd|\bpasswd\s+\w": "cron, services or users",
    r"\bss\b[^\n]*-K(?![^\n]*@@TCP_)": "ss -K without the canary's port",
    r"\bchattr\b": "file attributes",
    r"gdb[^\n]*-p\s*@@AGENT_PID@@|strace[^\n]*-p\s*@@AGENT_PID@@": "attaching to the agent (would stop the test)",
}
_TOOLS_NEEDING_PRIVATE = re.compile(r"\b(psql|mysql|mariadb|redis-cli)\b")


def test_attempt_tables_are_sound() -> None:
    """At least 320 attacks over every class; ids, placeholders and safety patterns are checked."""
    attempts = load_attempts()
    attacks = [a for a in attempts if a.cls is not AttemptClass.POSITIVE]
    counts = Counter(a.cls for a in attacks)
    assert len(attacks) >= 320, f"only {len(attacks)} attacks"
    assert all(counts[cls] >= 5 for cls in AttemptClass if cls is not AttemptClass.POSITIVE), counts
    problems = []
    for attempt in attempts:
        unknown = attempt.placeholders() - PLACEHOLDERS
        if unknown:
            problems.append(f"{attempt.id}: unknown placeholders {sorted(unknown)}")
        for task in attempt.tasks:
            for pattern, why in FORBIDDEN.items():
                if re.search(pattern, task.command) and (task.type == "shell" or "port" in why):
                    problems.append(f"{attempt.id}: {why}")
            if task.type == "shell" and _TOOLS_NEEDING_PRIVATE.search(task.command) and "@@" not in task.command:
                problems.append(f"{attempt.id}: a database client without a private server's address")
            if "dblink" in task.command and "port=@@PG_PORT@@" not in task.command:
                problems.append(f"{attempt.id}: dblink without the private server's port (libpq would use 5432)")
        if attempt.cls is AttemptClass.PERSISTENCE and "MARKER" not in attempt.placeholders():
            problems.append(f"{attempt.id}: a persistence attempt without its marker")
        if attempt.cls is AttemptClass.APPROVAL and not any(task.approval for task in attempt.tasks):
            problems.append(f"{attempt.id}: an approval attempt without a forged approval")
        if attempt.cls is AttemptClass.POSITIVE and not attempt.expect:
            problems.append(f"{attempt.id}: a positive without an expected output")
        if lane_of(attempt) == "host" and attempt.cls in (AttemptClass.POSTGRES, AttemptClass.MYSQL):
            problems.append(f"{attempt.id}: a database attempt outside its server's lane")
    assert not problems, "\n".join(problems)
