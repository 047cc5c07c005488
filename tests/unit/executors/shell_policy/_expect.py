"""What the shell-policy tests expect of a command line, and one function that checks it.

``READ``: classified ``read`` (runs without an approval). ``APPROVAL``: not ``read`` and no
default rule broken (an approver may let it run). ``denied(rule)``: a default rule denies it,
whatever the approval.
"""

from __future__ import annotations

from contract import RiskClass
from executors._policy.shell import ShellRules, analyze_shell

READ = "read"
APPROVAL = "approval"


def denied(rule: str) -> str:
    return f"denied:{rule}"


def outcome(command: str, rules: ShellRules | None = None) -> str:
    """``read``, ``approval`` or ``denied:<first rule>`` for ``command``."""
    assessment = analyze_shell(command, rules)
    if assessment.denials:
        return denied(assessment.denials[0].rule)
    return READ if assessment.risk is RiskClass.READ else APPROVAL


def check(command: str, expected: str, rules: ShellRules | None = None) -> None:
    assessment = analyze_shell(command, rules)
    got = outcome(command, rules)
    rules_broken = [d.rule for d in assessment.denials]
    if expected.startswith("denied:"):
        assert expected[len("denied:") :] in rules_broken, f"{command!r}: {got}, {assessment.reasons}"
    else:
        assert got == expected, f"{command!r}: {got}, {assessment.reasons}"
    if expected != READ:
        assert assessment.reasons, f"{command!r} is not read but says no reason"


def ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{expected}:{command[:60]}" for command, expected in cases]
