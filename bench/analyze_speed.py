"""How long one diagnosis takes, in process and from a fresh ``cloud-agent analyze`` process.

In process: ``models.analyze`` with the shipped model on simulated incidents of 10, 25 and 50
components over 600 one-second samples (metrics, logs, traces and observations), the model already
loaded; median and 90th percentile of ``--runs`` calls per size, and the split the analysis reports
itself (detection and features; ranking and explaining). Target (issue 12): at most 0.2 s for 50 components.
Then one frame wider than it is long (6000 metric columns, 600 samples), three calls.

From process start: ``cloud-agent analyze --telemetry … --alert-time … --json`` on one case written
in the RCAEval layout, median of ``--cli-runs`` processes, JSON on stdout. Target: at most 1 s.

    .venv/bin/python bench/analyze_speed.py [--runs 20] [--cli-runs 5]

Measure on a quiet machine: both cores busy with something else roughly double every figure.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import FaultType, analyze, simulate_incident
from models.store import shipped_model

SIZES = (10, 25, 50)
CLI = Path(sys.executable).with_name("cloud-agent")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(runs: int) -> None:
    model, metadata = shipped_model()
    print(f"in process, model {metadata.version}, {runs} calls per size (after one warm-up call)")
    print(f"{'components':>10} {'median s':>9} {'p90 s':>7} {'features s':>10} {'rank+explain s':>14}")
    for size in SIZES:
        incident = simulate_incident(1000 + size, FaultType.DB_POOL_EXHAUSTED, size)
        arguments = (incident.telemetry, incident.topology, incident.observations, incident.alert_time, model)
        analyze(*arguments)
        walls, detects, ranks = [], [], []
        for _ in range(runs):
            started = time.perf_counter()
            analysis = analyze(*arguments)
            walls.append(time.perf_counter() - started)
            timings = analysis.timings
            detects.append(timings["features"])
            ranks.append(timings["rank"] + timings["explain"])
        print(
            f"{size:>10} {statistics.median(walls):>9.3f} {_percentile(walls, 0.9):>7.3f} "
            f"{statistics.median(detects):>10.3f} {statistics.median(ranks):>14.3f}"
        )


def wide(runs: int) -> None:
    """A frame wider than it is long: 300 services x 20 metrics over 600 s (one metric steps)."""
    import numpy as np
    import pandas as pd

    from models import Telemetry

    rng = np.random.default_rng(0)
    values = 10 + rng.normal(0, 0.5, (600, 6000))
    values[400:, 140] *= 100
    columns = [f"s{service}_m{metric}" for service in range(300) for metric in range(20)]
    frame = pd.DataFrame(values, columns=columns)
    frame.insert(0, "time", 1_700_000_000.0 + np.arange(600))
    telemetry, (model, _) = Telemetry(metrics=frame), shipped_model()
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        analysis = analyze(telemetry, alert_time=1_700_000_400.0, model=model)
        walls.append(time.perf_counter() - started)
    assert analysis.hypotheses[0].component == "s7"
    median = statistics.median(walls)
    print(f"6000 metric columns (300 services x 20), 600 samples: median {median:.2f} s over {runs} calls")


def from_process_start(runs: int) -> None:
    incident = simulate_incident(7, FaultType.CPU, 25)
    with tempfile.TemporaryDirectory() as folder:
        telemetry = Path(folder) / "data.csv"
        incident.telemetry.metrics.to_csv(telemetry, index=False)
        command = [
            str(CLI), "analyze", "--telemetry", str(telemetry),
            "--alert-time", str(incident.alert_time), "--json",
        ]  # fmt: skip
        walls = []
        for _ in range(runs + 1):  # the first run fills the OS's file cache
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            walls.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"cloud-agent analyze failed: {done.stderr.strip()}")
    print(
        f"cloud-agent analyze, 25 components, metrics only, from process start to JSON: "
        f"median {statistics.median(walls[1:]):.2f} s over {runs} processes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cli-runs", type=int, default=5)
    args = parser.parse_args()
    in_process(args.runs)
    wide(3)
    from_process_start(args.cli_runs)


if __name__ == "__main__":
    main()
