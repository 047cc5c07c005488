"""The red team: attempts to make a ``read`` task change something or read a secret.

Written from the outside (bash, coreutils, the databases' dialects, Linux), without reading the
classifier. Every attempt aims at a canary the harness set up and undoes; ``test_redteam.py`` runs
them with the classifier as it is and with the classifier forced to call everything ``read``, where
the OS sandbox and the read-only database accounts alone must hold.

    attempts.py       the attempt model and the YAML tables under ``data/`` (one per class)
    leaks.py          secrets in any encoding, and the exfiltration sink
    host.py           canaries on this machine: files, block devices, git, processes, sockets, settings
    databases.py      private PostgreSQL / MariaDB / Redis with passwords, read accounts, their canaries
    harness.py        runs the attempts in lanes, checks every canary, tallies the table
    stale.py          cleans what a run that died (pytest-timeout, a killed job) left behind

Run it::

    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 .venv/bin/pytest tests/reliability/redteam -rx

``REDTEAM_ONLY=REGEX`` runs only the attempts whose id matches (and the ordinary diagnostics);
``REDTEAM_REPORT=FOLDER`` writes each mode's outcomes (statuses, effects, excerpts, times) as JSON.

It must run as root: the canaries live under /etc, /root and /opt, the loop devices and the
machine settings need it — and that is the point, the agent runs as root too. With the walls off
(today) the attempts really run as root: each touches only its canaries, which are put back after
it (machine settings) or at the end (everything else); ``test_attempt_tables_are_sound`` refuses
attempts that could reach beyond them (kill -1, a real disk, a shared server's port...).
"""
