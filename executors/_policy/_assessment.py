"""What an analyser concludes about one task before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from contract import RiskClass


@dataclass(frozen=True)
class Denial:
    """A default or configured rule the task breaks. ``rule`` is stable (``shell.rm-root``)."""

    rule: str
    reason: str


@dataclass
class Assessment:
    """The risk class of a task, why, and the rules it breaks.

    ``subjects`` are the normalised pieces of the task (one simple command, one SQL statement,
    one Redis command line, one ``METHOD URL``) that an environment's own deny patterns are
    matched against, so a pattern cannot be dodged by quoting or by chaining.
    """

    risk: RiskClass = RiskClass.READ
    reasons: list[str] = field(default_factory=list)
    denials: list[Denial] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)

    def escalate(self, risk: RiskClass, reason: str) -> None:
        if risk.rank > self.risk.rank:
            self.risk = risk
        if reason not in self.reasons:
            self.reasons.append(reason)

    def deny(self, rule: str, reason: str) -> None:
        # What a default rule denies is destructive or cannot be analysed: treat it as the worst.
        self.risk = RiskClass.DESTRUCTIVE
        # An environment may lift the rule: the task then needs an approval, and this is why.
        if reason not in self.reasons:
            self.reasons.append(reason)
        denial = Denial(rule, reason)
        if denial not in self.denials:
            self.denials.append(denial)

    def absorb(self, other: Assessment) -> None:
        """Fold a nested analysis (a ``$(...)``, a ``bash -c``, a ``psql -c``) into this one."""
        for reason in other.reasons:
            self.escalate(other.risk, reason)
        if other.risk.rank > self.risk.rank:
            self.risk = other.risk
        for denial in other.denials:
            self.deny(denial.rule, denial.reason)
        self.subjects.extend(other.subjects)
