"""The cycle's progress on the terminal, for the commands that run a cycle (``incident``, ``demo``)."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


class CycleProgress(RichHandler):
    """The cycle's progress lines; the instructions to approve a fix printed whole, unwrapped, so
    that the ``cloud-agent approve`` and ``curl`` lines can be copied as they are."""

    def emit(self, record: logging.LogRecord) -> None:
        instructions = getattr(record, "instructions", None)
        if not instructions:
            super().emit(record)
            return
        headline = record.getMessage().split("\n", 1)[0]
        super().emit(logging.makeLogRecord({**record.__dict__, "msg": headline, "args": None}))
        for line in instructions:
            self.console.print(f"  - {line}", soft_wrap=True, highlight=False, markup=False)
