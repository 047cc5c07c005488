"""How long the CLI takes from process start, for commands that should not load the ML stack.

Median wall time of ``--runs`` fresh processes each (after one run that fills the OS's file cache):

- ``python -c pass``: the interpreter alone, the floor under every figure;
- ``cloud-agent --help``;
- ``cloud-agent task run --type shell --command 'echo hi'`` in a scratch environment (the task
  itself takes about 10 ms in the sandbox);
- ``python -X importtime -c 'import gateway.cli'``: the ten slowest imports, cumulative.

Target (issue 14): ``task run`` at most 0.5 s wall.

    .venv/bin/python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("cloud-agent")


def _median_wall(command: list[str], runs: int, env: dict[str, str]) -> float:
    walls = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return statistics.median(walls[1:])


def _slowest_imports(env: dict[str, str], limit: int = 10) -> list[tuple[float, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import gateway.cli"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]) / 1e6, parts[2].rstrip()))
    return sorted(rows, reverse=True)[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # As on a user's machine, the first (discarded) run writes the project's bytecode: a
        # PYTHONDONTWRITEBYTECODE set for the whole session (CI's sandboxes set it) would have every
        # run compile the project from source, ~0.03 s more.
        env = {
            **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
            "CLOUD_AGENT_STATE_DIR": str(Path(folder) / "state"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
        floor = _median_wall([sys.executable, "-c", "pass"], args.runs, env)
        help_wall = _median_wall([str(CLI), "--help"], args.runs, env)
        task_wall = _median_wall(
            [str(CLI), "task", "run", "--type", "shell", "--command", "echo hi", "--agent-id", "local"], args.runs, env
        )
        imports = _slowest_imports(env)
    print(f"python -c pass: median {floor:.2f} s over {args.runs} processes")
    print(f"cloud-agent --help: median {help_wall:.2f} s over {args.runs} processes")
    print(f"cloud-agent task run (shell 'echo hi'): median {task_wall:.2f} s over {args.runs} processes (target 0.5 s)")
    print("slowest imports under gateway.cli (cumulative s):")
    for seconds, module in imports:
        print(f"  {seconds:6.3f} {module}")


if __name__ == "__main__":
    main()
