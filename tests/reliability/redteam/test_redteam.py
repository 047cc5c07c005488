"""The red team against the executors, in two modes.

``classifier``: the policy as it is (a handful of attempts also go through ``cloud-agent task run
--file``). ``classifier_off``: ``Policy.assess`` calls everything ``read``, so the OS sandbox and the
read-only accounts alone stand between the attempts and the host: there, as in the first mode, no
attempt may have any effect. Ordinary diagnostics must keep working in both.
"""

from __future__ import annotations

import re

import pytest

from tests.reliability import scenarios
from tests.reliability.redteam.attempts import AttemptClass
from tests.reliability.redteam.harness import Report

#: A mode takes a minute or two (more on a loaded machine); the default 300 s per test would stop the
#: process without tear-down (stale.py cleans up after that, but only 20 minutes later).
pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(900)]


def _row(report: Report) -> scenarios.Outcome:
    attacks = report.attacks
    refused = sum(o.refused for o in attacks)
    mode = "classifier off" if report.mode == "classifier_off" else "classifier on"
    outcome = scenarios.Outcome(
        scenario=f"containment: {mode}",
        load=f"{len(attacks)} attempts",
        bad_inputs=len(attacks),
        bypasses=report.effect_count,
        figures=f"{refused} refused by the classifier, {len(attacks) - refused} ran, {len(report.effective)} with "
        f"effects, {len(report.unattributed)} unattributed effects, {report.seconds:.0f} s",
    )
    for o in report.effective:
        outcome.problem(f"{o.attempt.id} [{o.attempt.cls.value}]: {'; '.join(o.effects)[:200]}")
    for effect in report.unattributed:
        outcome.problem(f"(unattributed) {effect[:200]}")
    return outcome


def test_no_attempt_has_an_effect(report: Report) -> None:
    """Per mode: the number of attempts with an effect on the host is 0."""
    print("\n" + report.table())
    scenarios.check(_row(report))


def test_ordinary_diagnostics_still_work(report: Report) -> None:
    positives = [o for o in report.outcomes if o.attempt.cls is AttemptClass.POSITIVE]
    assert positives
    broken = []
    for outcome in positives:
        expect = outcome.attempt.expect or "."
        if outcome.statuses != ["succeeded"] or not re.search(expect, outcome.output, re.MULTILINE):
            broken.append(f"{outcome.attempt.id}: {outcome.statuses} {outcome.excerpts}")
        if outcome.effects:
            broken.append(f"{outcome.attempt.id} had an effect: {outcome.effects}")
    assert not broken, "\n".join(broken)
