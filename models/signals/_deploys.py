"""Deploys the logs show: a rollout replaces every replica, and each new process says it started.

With no rollout history from the platform (``Observations.deploys``), a burst of a component's
start-up lines is where the logs show that something was deployed (or restarted) there.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from models.domain._observations import DeployEvent

#: A process announcing that it started: Spring Boot's "Started ...Application", a server
#: "listening on" its port, gunicorn's "Booting worker", uvicorn's "Application startup complete",
#: a database or cache "ready to accept connections" (PostgreSQL, Redis; MySQL's "ready for").
STARTUP_LINE = re.compile(
    r"\bstarted \w*(?:application|server|service)\b|\b(?:server|app|application) (?:started|listening)\b"
    r"|\blistening on (?:port\b|:?\d|https?:|\[?::)|\bbooting worker\b|\bapplication startup complete\b"
    r"|\bready (?:to accept|for) connections\b",
    re.I,
)
#: Start-up lines of one component less than this apart (seconds) are one rollout (or restart).
ROLLOUT_GAP = 120.0
_REVISION = re.compile(r"\b(?:version|revision|release|build)[ :=]+v?([\w.+-]+)", re.I)


def deploys_in_logs(logs: pd.DataFrame) -> list[DeployEvent]:
    """The rollouts and restarts the components' start-up lines (``STARTUP_LINE``) show: one event
    per burst of them (lines less than ``ROLLOUT_GAP`` apart), at its first line.

    A rollout replaces every replica, and each new process says so as it starts; with no rollout
    history from the platform, those lines are where the logs show that something was deployed.
    """
    codes, messages = pd.factorize(logs["message"])
    startup = np.array([bool(STARTUP_LINE.search(str(text))) for text in messages], dtype=bool)
    if not startup.any():
        return []
    revisions = pd.Series(
        [match.group(1) if (match := _REVISION.search(str(text))) else None for text in messages], dtype=object
    )
    lines = pd.DataFrame(
        {
            "service": logs["service"].to_numpy()[startup[codes]],
            "time": logs["time"].to_numpy(dtype=float)[startup[codes]],
            "revision": revisions.to_numpy()[codes[startup[codes]]],
        }
    ).sort_values(["service", "time"], kind="stable")
    new_burst = (lines["service"] != lines["service"].shift()) | (lines["time"].diff() > ROLLOUT_GAP)
    bursts = lines.groupby(new_burst.cumsum(), sort=False).agg(
        service=("service", "first"), time=("time", "first"), revision=("revision", "first")
    )
    return [
        DeployEvent(
            service=str(row.service),
            time=float(row.time),
            # "first" is the first revision named in the burst; NaN when none is.
            revision=row.revision if isinstance(row.revision, str) else None,
            from_logs=True,
        )
        for row in bursts.itertuples(index=False)
    ]
