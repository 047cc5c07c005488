"""Cost of classifying a shell command line (``analyze_shell``), without running anything.

Two sets: the spec's shell examples (``tests/data/task-examples.json``, type ``shell``) and a few
long pipelines of the kind a diagnosis writes. For each command, ``--runs`` classifications after a
warm-up; prints the median (p50) and p95 per set in microseconds of CPU time (the machine is
shared: wall-clock time counts other people's work), and the slowest command.

``--against REF`` also times the shell analyser as it was at git REF (its ``executors/_policy/shell.py``,
before it became a package), interleaved with this one so both see the same load.

    .venv/bin/python bench/shell_policy.py [--runs 300] [--against main]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executors._policy._assessment import Assessment
from executors._policy.shell import analyze_shell
from tests.spec_data import TASK_EXAMPLES

ROOT = Path(__file__).resolve().parent.parent

Analyser = Callable[[str], Assessment]

LONG_PIPELINES = [
    "grep -E 'ERROR|FATAL' /var/log/app/*.log | awk '{print $1,$2,$NF}' | sort | uniq -c | sort -rn | head -20",
    "journalctl -u api --since '1 hour ago' --no-pager | grep -i -E 'timeout|refused' | cut -d' ' -f1-3,5- "
    "| sort | uniq -c | sort -rn | head -50 && df -h && free -m && uptime",
    "ps aux --sort=-%mem | head -20; ss -tlnp | grep -v 127.0.0.1; netstat -s | grep -i retrans; "
    "cat /proc/loadavg; vmstat 1 5; iostat -x 1 3; dmesg | tail -50",
    'for f in /var/log/nginx/access.log /var/log/nginx/error.log; do echo "== $f"; tail -n 200 "$f" '
    "| grep -v healthz | sed -n '1,50p'; done",
    "kubectl get pods -n shop -o wide | grep -v Running | awk 'NR>1 {print $1}' | head -20; "
    "docker ps --format '{{.Names}} {{.Status}}' | sort; curl -s http://localhost:8080/health | jq .",
    "find /var/log -name '*.log' -mmin -60 -size +1M -printf '%s %p\\n' | sort -rn | head; "
    "lsof -i :5432 | wc -l; systemctl status postgresql --no-pager | head -20",
]


def _spec_shell_commands() -> list[str]:
    examples = json.loads(TASK_EXAMPLES.read_text())
    return [example["command"] for example in examples if example.get("type") == "shell"]


def _analyser_at(ref: str) -> Analyser:
    """``analyze_shell`` from the single-module shell analyser at git ``ref``."""
    try:
        source = subprocess.run(
            ["git", "show", f"{ref}:executors/_policy/shell.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"--against {ref}: no executors/_policy/shell.py there ({exc.stderr.strip()})") from exc
    path = Path(tempfile.mkdtemp(prefix="shell-policy-")) / "shell_at_ref.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("shell_at_ref", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module.analyze_shell  # type: ignore[no-any-return]


Timings = dict[str, tuple[list[float], str, float]]


def _timings(analysers: dict[str, Analyser], commands: list[str], runs: int) -> Timings:
    """Per analyser: every sample (µs), the slowest command and its median."""
    samples: dict[str, list[float]] = {name: [] for name in analysers}
    slowest: dict[str, tuple[str, float]] = {name: ("", 0.0) for name in analysers}
    for command in commands:
        own: dict[str, list[float]] = {name: [] for name in analysers}
        for analyse in analysers.values():
            for _ in range(20):
                analyse(command)
        for _ in range(runs):
            for name, analyse in analysers.items():  # interleaved: both see the same load
                start = time.thread_time()
                analyse(command)
                own[name].append((time.thread_time() - start) * 1e6)
        for name in analysers:
            samples[name].extend(own[name])
            median = statistics.median(own[name])
            if median > slowest[name][1]:
                slowest[name] = (command, median)
    return {name: (samples[name], *slowest[name]) for name in analysers}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="classifications per command (default 300)")
    parser.add_argument("--against", metavar="REF", help="also time the shell analyser at this git ref")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    analysers: dict[str, Analyser] = {"this tree": analyze_shell}
    if args.against:
        analysers[args.against] = _analyser_at(args.against)
    for label, commands in (("spec examples", _spec_shell_commands()), ("long pipelines", LONG_PIPELINES)):
        for name, (samples, slowest, slowest_us) in _timings(analysers, commands, args.runs).items():
            p95 = statistics.quantiles(samples, n=20)[-1]
            print(f"{label:15} {name:10} {len(commands):3} commands  p50 {statistics.median(samples):8.1f} µs  "
                  f"p95 {p95:8.1f} µs  slowest {slowest_us:8.1f} µs: {slowest[:50]!r}")  # fmt: skip
    for name, analyse in analysers.items():
        risks = [analyse(command).risk.value for command in _spec_shell_commands() + LONG_PIPELINES]
        print(f"{name}: {', '.join(f'{r}={risks.count(r)}' for r in sorted(set(risks)))}")


if __name__ == "__main__":
    main()
