"""Speed of the queueing incident generator: CPU seconds per case, 50 components x 600 s.

Target (the generator's brief): at most 0.2 s per case on one core in ``metrics`` mode. Prints,
per mode, the mean, median and 90th percentile of CPU time per case over ``--cases`` cases
(fault types in turn), each the fastest of ``--repeat`` runs (others' load on a shared machine
only ever slows a run down), and how long a fixed numpy workload took meanwhile, so that numbers
from a busy machine can be compared with a quiet one.

    .venv/bin/python bench/queueing_speed.py [--cases 20] [--repeat 3] [--mode metrics full]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def reference_workload() -> float:
    """CPU seconds of a fixed numpy workload of the generator's kind (small arrays, many ops)."""
    a = np.random.default_rng(0).random((50, 600))
    start = time.process_time()
    for _ in range(300):
        b = np.exp(a) * a + np.minimum(a, 0.5)
        np.cumsum(b, axis=1)
    return time.process_time() - start


def main() -> None:
    from models.domain._types import INJECTED_FAULTS
    from models.generators import QueueingConfig, queueing_incident

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", nargs="+", default=["metrics", "full"], choices=["metrics", "full"])
    args = parser.parse_args()
    faults = list(INJECTED_FAULTS)
    for mode in args.mode:
        config = QueueingConfig(n_services=50, duration=600, step=1, mode=mode)
        queueing_incident(0, faults[0], config=config)  # imports, tables, caches
        times, references = [], []
        for case in range(args.cases):
            runs = []
            for _ in range(args.repeat):
                start = time.process_time()
                queueing_incident(1000 + case, faults[case % len(faults)], config=config)
                runs.append(time.process_time() - start)
            times.append(min(runs))
            references.append(reference_workload())
        p90 = float(np.percentile(times, 90))
        print(
            f"{mode:8s} CPU s/case: mean {statistics.mean(times):.3f}  median {statistics.median(times):.3f}  "
            f"p90 {p90:.3f}  max {max(times):.3f}   (reference workload {statistics.median(references):.4f} s)"
        )


if __name__ == "__main__":
    main()
