"""RCA accuracy where the model was not trained: leave one generator out, beside the peers.

    make peers-env
    .venv/bin/python bench/rca_accuracy.py [--train-cases 240] [--test-cases 60] [--seed 11]
    .venv/bin/python bench/rca_accuracy.py --cases-dir DIR [--cases-dir DIR2] [--outcomes-dir DIR3]   # from elsewhere

For every generator (the project's simulator, the queueing model, PyRCA's linear-Gaussian and
nonlinear-Laplace SCMs) the models are trained on the *other* families of generators only and
scored on fresh incidents of the one left out, once with everything the generator gives (topology,
logs, traces, observations, the alerting component), once with metrics and the alert's time alone
(RCAEval's layout), and once more with those metrics renamed ``<component>_m<k>`` (``unnamed_metrics``:
names the kind rules cannot read, as a team's own metrics may be). RCAEval's BARO and N-sigma and
PyRCA's HT run on the very same incidents in their own environment (``make peers-env``), given the
alert time (what a user has) and, for HT, the graph when the view has one (an empty graph otherwise:
PyRCA's PC takes minutes per case); with ``--oracle-peers`` also given the injection time, RCAEval's
own setting, which no user has. Printed per fold and view: AC@1 with its 95 % interval, AC@3, Avg@5,
the fault type, top-1 and top-5 ECE, seconds per case, and the peers' AC@1 / AC@3. ``conf@1`` is the
mean confidence of the top hypothesis; ``floor`` is the top-1 ECE a perfectly calibrated model would
show at those confidences on so few incidents (only the excess over it is miscalibration). A last
table gives how often the top answer is right at the same first-day confidence on each left-out
generator: where the same band is right at different rates on different generators, no confidence
learnt on the others is calibrated on all of them (README, "Confidence on a system it never saw").

With ``--outcomes N`` (default 40) each fold and view is scored once more by a model retrained as
the cycle's retraining does after N confirmed outcomes on that system: N other incidents of the
left-out generator, seen as the view shows them, added as ``real`` rows (each weighing three
generated incidents in the trees). Its confidences lean on those outcomes (``HypothesisRanker``'s
``calibrate_on``); the line is marked ``+N``. It is not the first-day number above it: it is the
number after N incidents with feedback.

With ``--cases-dir`` the shipped model (``make model``: trained on every generator) is scored on case
folders written by someone else (``metrics.csv``, ``truth.json``, optional ``topology.yaml``,
``logs.csv``, ``traces.csv``; the layout of ``bench/peers/client.write_case``), beside the peers
(HT given the case's topology as its graph, or none: PyRCA's PC takes minutes per case). With
``--outcomes-dir DIR`` it is scored once more after the cycle's scheduled retraining
(``models.learning.retrain``, its defaults, its gate) has learnt from the incidents of ``DIR``
(others than the scored ones) as confirmed outcomes: each diagnosed by the shipped model and its
root cause confirmed, as the feedback step records them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers.client import PeersError, run_peers, score, write_case
from models import (
    TRAINING_GENERATORS,
    DiagnosisModel,
    EvaluationReport,
    FaultType,
    ModelStore,
    Outcome,
    OutcomeStore,
    SimulatedIncident,
    Telemetry,
    Topology,
    analyze,
    evaluate,
    generate,
    retrain,
    train_models,
    training_set,
)
from models.generators import generator
from models.learning import (
    REAL_WEIGHT,
    SCORED_VIEWS,
    TrainingSet,
    ac_at_k,
    avg_at_k,
    expected_calibration_error,
    generated_training_set,
)
from models.store import load_telemetry, shipped_model

FOLDS = ("simulator", "queueing", "pyrca-linear", "pyrca-nonlinear")
#: The views the peers run on: they read no metric names, so ``unnamed_metrics`` is ``metrics_only`` to them.
PEER_VIEWS = {"full": "full", "metrics_only": "metrics_only", "unnamed_metrics": "metrics_only"}


def _metrics_only_case(incident: SimulatedIncident, folder: Path) -> Path:
    """A case folder holding only what a metrics-only user has: the metrics and the truth."""
    write_case(incident, folder)
    for extra in ("topology.yaml", "graph.json", "logs.csv", "traces.csv"):
        (folder / extra).unlink(missing_ok=True)
    return folder


def peers_on(
    incidents: list[SimulatedIncident], root: Path, *, oracle: bool = False
) -> dict[str, dict[str, dict[str, float]]]:
    """Per view, the peers' scores on ``incidents`` (``{}`` when their environment is missing).

    They get the alert's time as the anomaly's start (what a user has), or with ``oracle`` the
    injection time (RCAEval's own setting). Without a graph (metrics only), HT runs on an empty
    graph: PyRCA's PC takes minutes per case here.
    """
    scores = {}
    for view in sorted(set(PEER_VIEWS.values())):
        folders = []
        for incident in incidents:
            folder = root / view / incident.id
            folders.append(write_case(incident, folder) if view == "full" else _metrics_only_case(incident, folder))
        try:
            results = run_peers(folders, root / f"peers-{view}-{oracle}.json", oracle_time=oracle, no_pc=True)
            scores[view] = score(results)
        except PeersError as exc:
            print(f"peers skipped: {exc}", file=sys.stderr)
            return {}
    return {view: scores[shown_as] for view, shown_as in PEER_VIEWS.items()}


def wilson_interval(hits: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion of ``hits`` out of ``n`` (Wilson 1927): at 100
    cases an AC@1 near 0.5 is known to about ±0.10, which is what a difference between folds, seeds
    or methods must clear before it means anything."""
    if n == 0:
        return float("nan"), float("nan")
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def fold_line(
    name: str, report: EvaluationReport, peers: dict[str, dict[str, float]], oracle: dict[str, dict[str, float]]
) -> str:
    fault = f"{report.fault_ac1:>6.3f}" if report.fault_ac1 == report.fault_ac1 else f"{'-':>6}"
    low, high = wilson_interval(report.ac1 * report.n, report.n)
    line = (
        f"{name:<16} {report.view:<15} {report.n:>4} {report.ac1:>6.3f} [{low:.2f},{high:.2f}] "
        f"{report.ac3:>6.3f} {report.avg5:>6.3f} "
        f"{fault} {report.top1_mean_confidence:>6.3f} {report.top1_ece:>6.3f} {report.top1_ece_floor:>6.3f} "
        f"{report.top5_ece:>6.3f} {report.seconds_per_case:>6.3f}"
    )
    for method in ("baro", "nsigma", "ht"):
        entry = peers.get(method)
        line += f" | {entry['ac1_any']:>5.2f} {entry['ac3_any']:>5.2f}" if entry else f" | {'-':>5} {'-':>5}"
    best = max((entry["ac1_any"] for entry in peers.values()), default=None)
    at_injection = max((entry["ac1_any"] for entry in oracle.values()), default=None)
    margin = f"{report.ac1 - best:>+6.3f}" if best is not None else f"{'-':>6}"
    return line + f" | {margin} | " + (f"{at_injection:>5.2f}" if at_injection is not None else f"{'-':>5}")


HEADER = (
    f"{'left out':<16} {'view':<15} {'n':>4} {'AC@1':>6} {'95% CI':^11} {'AC@3':>6} {'Avg@5':>6} {'fault':>6} "
    f"{'conf@1':>6} {'ECE@1':>6} {'floor':>6} {'ECE@5':>6} {'s/case':>6} | {'BARO':^11} | {'N-sigma':^11} | "
    f"{'PyRCA HT':^11} | {'vs best':>6} | oracle"
)


def leave_one_out(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    training = training_set(TRAINING_GENERATORS, args.train_cases, args.seed, n_jobs=args.jobs)
    print(
        f"training rows: {training.n_incidents} incidents of {', '.join(training.generators)} "
        f"({args.train_cases} each) in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    print(HEADER)
    work = Path(tempfile.mkdtemp(prefix="rca-accuracy-"))
    first_day: dict[str, list[EvaluationReport]] = {}
    for name in args.folds:
        family = generator(name).family
        model = train_models(training.without([family]), random_state=args.seed).compiled(f"without-{family}")
        incidents = generate(name, args.test_cases, args.seed + 7919)
        peers = peers_on(incidents, work / name) if not args.no_peers else {}
        oracle = peers_on(incidents, work / name, oracle=True) if args.oracle_peers else {}
        for view in SCORED_VIEWS:
            report = evaluate(model, incidents, view=view, name=name)
            print(fold_line(name, report, peers.get(view, {}), oracle.get(view, {})), flush=True)
            if view in SHIFT_VIEWS:
                first_day.setdefault(name, []).append(report)
        for view in SCORED_VIEWS if args.outcomes else ():
            # Other incidents of the same system than the test ones: their own seed.
            seen = generated_training_set(name, args.outcomes, args.seed + 104_729, views={view: 1.0})
            adapted = train_models(
                TrainingSet.concat([training.without([family]), seen.as_outcomes()]),
                random_state=args.seed,
                real_weight=REAL_WEIGHT,
            ).compiled(f"without-{family}+{args.outcomes}")
            report = evaluate(adapted, incidents, view=view, name=name)
            print(fold_line(name, report.model_copy(update={"view": f"{view}+{args.outcomes}"}), {}, {}), flush=True)
        trained_on = [other for other in TRAINING_GENERATORS if generator(other).family != family]
        print(
            f"{'':<16} trained on {', '.join(trained_on)}; peers given the alert time"
            + ("; oracle: the best peer given the injection time" if args.oracle_peers else ""),
            flush=True,
        )
    print(same_confidence_table(first_day))
    print(f"total {time.perf_counter() - started:.0f} s")


#: The views pooled in ``same_confidence_table`` (on PyRCA's cases ``unnamed_metrics`` repeats ``metrics_only``).
SHIFT_VIEWS = ("full", "metrics_only")
#: The confidence bands of ``same_confidence_table``: edges on the reliability tables' tenths.
SHIFT_BANDS = ((0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))


def same_confidence_table(reports: dict[str, list[EvaluationReport]]) -> str:
    """How often the top answer is right at the same first-day confidence, per left-out generator.

    Where one band's accuracy differs between generators, no confidence learnt on the others can
    be calibrated on all of them: the difference is what a system's own confirmed outcomes correct.
    """
    names = list(reports)
    lines = [
        "top answer right, by first-day confidence (full and metrics only pooled; cases in brackets)",
        f"{'confidence':<12}" + "".join(f"{name:>18}" for name in names),
    ]
    for low, high in SHIFT_BANDS:
        cells = []
        for name in names:
            rows = [
                row
                for report in reports[name]
                for row in report.reliability
                if row.count and low - 1e-9 <= row.low and row.high <= high + 1e-9
            ]
            count = sum(row.count for row in rows)
            hits = sum(row.count * (row.accuracy or 0.0) for row in rows)
            cells.append(f"{hits / count:>11.2f} ({count:>3})" if count else f"{'-':>11} (  0)")
        lines.append(f"{low:.1f}-{high:.1f}".ljust(12) + "".join(f"{cell:>18}" for cell in cells))
    return "\n".join(lines)


def read_case(folder: Path) -> tuple[Telemetry, Topology | None, dict[str, Any]]:
    """A case folder written by anyone (see ``write_case``): its telemetry, topology and truth."""
    logs, traces = folder / "logs.csv", folder / "traces.csv"
    telemetry = load_telemetry(
        folder / "metrics.csv", logs if logs.exists() else None, traces if traces.exists() else None
    )
    topology_file = folder / "topology.yaml"
    topology = Topology.from_dict(yaml.safe_load(topology_file.read_text())) if topology_file.exists() else None
    return telemetry, topology, json.loads((folder / "truth.json").read_text())


def case_folders(root: str | Path) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if (p / "truth.json").exists())


def score_folders(label: str, folders: list[Path], model: DiagnosisModel) -> None:
    """Print how ``model`` ranks the incidents of ``folders`` (one line)."""
    rankings, truths, conf1, hit1, conf5, hit5, faults, seconds = [], [], [], [], [], [], [], []
    for folder in folders:
        telemetry, topology, truth = read_case(folder)
        started = time.perf_counter()
        analysis = analyze(telemetry, topology, None, truth.get("alert_time"), model)
        seconds.append(time.perf_counter() - started)
        roots = set(truth.get("root_causes") or [truth["service"]])
        ranking = [h.component for h in analysis.hypotheses]
        rankings.append(ranking)
        truths.append(roots)
        for position, hypothesis in enumerate(analysis.hypotheses):
            conf5.append(hypothesis.confidence)
            hit5.append(hypothesis.component in roots)
            if position == 0:
                conf1.append(hypothesis.confidence)
                hit1.append(hypothesis.component in roots)
                if truth.get("fault"):
                    faults.append(hypothesis.component in roots and hypothesis.fault.value == truth["fault"])
    fault = sum(faults) / len(faults) if faults else float("nan")
    low, high = wilson_interval(sum(hit1), len(folders))
    print(
        f"{label}: n={len(folders)} AC@1 {ac_at_k(rankings, truths, 1):.3f} [{low:.2f},{high:.2f}] "
        f"AC@3 {ac_at_k(rankings, truths, 3):.3f} Avg@5 {avg_at_k(rankings, truths, 5):.3f} fault {fault:.3f} "
        f"conf@1 {sum(conf1) / max(len(conf1), 1):.3f} ECE@1 {expected_calibration_error(conf1, hit1):.3f} "
        f"ECE@5 {expected_calibration_error(conf5, hit5):.3f} {sum(seconds) / max(len(seconds), 1):.3f} s/case",
        flush=True,
    )


def retrained_on(outcomes_dir: str, model: DiagnosisModel, jobs: int) -> DiagnosisModel:
    """The model the cycle's scheduled retraining (``models.learning.retrain``, its own defaults)
    fits after the incidents of ``outcomes_dir`` were diagnosed by ``model`` and their root causes
    confirmed: the candidate version, whether its gate promoted it or not."""
    work = Path(tempfile.mkdtemp(prefix="rca-outcomes-"))
    outcomes = OutcomeStore(work / "outcomes.sqlite3")
    for folder in case_folders(outcomes_dir):
        telemetry, topology, truth = read_case(folder)
        if not truth.get("fault"):
            continue  # retraining learns from a confirmed component and fault
        analysis = analyze(telemetry, topology, None, truth.get("alert_time"), model)
        root = (truth["service"], FaultType(truth["fault"]))
        outcomes.record(Outcome.from_analysis(folder.name, analysis, root_cause=root, verification="confirmed"))
    store = ModelStore(work / "models")
    report = retrain(store, outcomes, n_jobs=jobs)
    print(report.to_markdown(), file=sys.stderr)
    return store.load(report.candidate_version)[0]


def external(args: argparse.Namespace, model: DiagnosisModel) -> None:
    adapted = (
        {directory: retrained_on(directory, model, args.jobs) for directory in args.outcomes_dir}
        if args.outcomes_dir
        else {}
    )
    for root in args.cases_dir:
        folders = case_folders(root)
        score_folders(root, folders, model)
        for directory, retrained in adapted.items():
            score_folders(f"{root} after the outcomes of {directory}", folders, retrained)
        if not args.no_peers:
            try:
                peers = score(run_peers(folders, Path(tempfile.mkdtemp()) / "peers.json", no_pc=True))
            except PeersError as exc:
                print(f"peers skipped: {exc}", file=sys.stderr)
                continue
            for method, entry in peers.items():
                print(f"    {method:<10} AC@1 {entry['ac1_any']:.3f} AC@3 {entry['ac3_any']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-cases", type=int, default=240, help="training incidents per generator")
    parser.add_argument("--test-cases", type=int, default=60, help="incidents of the left-out generator")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--outcomes", type=int, default=40, help="also score after this many confirmed outcomes per fold (0: skip)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip the peers (no peers environment)")
    parser.add_argument(
        "--oracle-peers", action="store_true", help="also run the peers given the injection time (RCAEval's setting)"
    )
    parser.add_argument("--cases-dir", action="append", default=[], help="score on case folders from elsewhere")
    parser.add_argument(
        "--outcomes-dir",
        action="append",
        default=[],
        help="with --cases-dir: also score the model retrained after these case folders' root causes were confirmed",
    )
    args = parser.parse_args()
    if args.cases_dir:
        external(args, shipped_model()[0])
    else:
        leave_one_out(args)


if __name__ == "__main__":
    main()
