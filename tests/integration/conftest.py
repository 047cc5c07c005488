"""The chain tests' hop times, shown at the end of the run: what a reader of CI's output looks for."""

from __future__ import annotations

import pytest

from tests.integration.monitoring import HOP_LINES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if HOP_LINES:
        terminalreporter.section("real alert chains: hop times")
        for line in HOP_LINES:
            terminalreporter.write_line(line)
