"""Learning from outcomes: AC@1 on a shifted distribution as outcomes are fed back through retrain.

    .venv/bin/python bench/learning_curve.py [--test-cases 100] [--batches 20,20,40,40]

The starting model was trained on small systems (10-25 components) that never had a bad deploy.
Production is bigger (35-50 components) and a quarter of its incidents are bad deploys. Each
round, new production incidents are analysed by the current model, their outcomes recorded
(the root cause is confirmed when it was among the three hypotheses verified, otherwise found
by a person in the post-mortem 70 % of the time), and ``retrain`` fits a new version from the
simulated set plus these outcomes, promoting it only if it is not worse on held-out incidents.
AC@1 is measured on production incidents that are never fed back.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import (
    FaultType,
    ModelStore,
    Outcome,
    OutcomeStore,
    SimulationConfig,
    analyze,
    retrain,
    simulated_training_set,
    train_ranker,
)
from models._simulator import case_seed_of, simulate_incident
from models._training import HeldOutCase, held_out_scores, incident_view

NEW_FAULT = FaultType.BAD_DEPLOY
START = SimulationConfig(
    duration=300,
    n_services=(10, 25),
    fault_weights={fault: (0.0 if fault is NEW_FAULT else 1.0) for fault in FaultType},
)
PRODUCTION = SimulationConfig(
    n_services=(35, 50),
    fault_weights={fault: (3.0 if fault is NEW_FAULT else 1.0) for fault in FaultType},
)
START_SEED, TEST_SEED, FEED_SEED = 1_001, 2_002, 3_003


def scores_by_fault(ranker, cases: list[HeldOutCase]) -> tuple[dict[str, float], dict[str, float]]:  # type: ignore[no-untyped-def]
    everything = held_out_scores(ranker, cases)
    new = held_out_scores(ranker, [case for case in cases if case.root_cause[1] is NEW_FAULT])
    return everything, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-cases", type=int, default=100)
    parser.add_argument("--batches", default="20,20,40,40", help="outcomes fed before each retraining")
    parser.add_argument("--simulated-cases", type=int, default=300)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b]

    started = time.perf_counter()
    test = []
    for i in range(args.test_cases):
        incident = simulate_incident(case_seed_of(TEST_SEED, i), config=PRODUCTION)
        test.append(HeldOutCase(incident.id, incident_view(incident, "full"), incident.root_cause))
    n_new = sum(case.root_cause[1] is NEW_FAULT for case in test)
    print(
        f"production test set: {len(test)} incidents ({n_new} {NEW_FAULT.value}), 35-50 components "
        f"(prepared in {time.perf_counter() - started:.1f} s)"
    )

    with tempfile.TemporaryDirectory() as folder:
        models = ModelStore(Path(folder) / "models")
        outcomes = OutcomeStore(Path(folder) / "outcomes.sqlite3")
        started = time.perf_counter()
        training = simulated_training_set(args.simulated_cases, START_SEED, config=START, n_jobs=2)
        ranker = train_ranker(training)
        models.promote(models.save(ranker, data_hash=training.data_hash(), training={"config": "start"}))
        print(
            f"starting model: {training.n_incidents} simulated incidents of 10-25 components, no {NEW_FAULT.value}, "
            f"trained in {time.perf_counter() - started:.1f} s\n"
        )
        rng = np.random.default_rng(0)
        header = (
            f"{'outcomes':>8} {'labelled':>8} {'version':>8} {'promoted':>8} | {'AC@1':>6} {'AC@3':>6} {'Avg@5':>6} "
            f"| {NEW_FAULT.value + ' AC@1':>22} | {'candidate AC@1':>14} | {'gate':>6} {'secs':>5}"
        )
        print("AC@1/AC@3/Avg@5: the promoted model on the production test set; candidate: the version just trained")
        print(header)
        print("-" * len(header))
        fed = 0

        def row(version: str, promoted: str, candidate: str, gate: str, seconds: float) -> None:
            current = models.current()
            assert current is not None
            everything, new = scores_by_fault(current[0], test)
            print(
                f"{fed:>8} {len(outcomes.labelled()):>8} {version:>8} {promoted:>8} | {everything['ac1']:>6.3f} "
                f"{everything['ac3']:>6.3f} {everything['avg5']:>6.3f} | {new['ac1']:>22.3f} "
                f"| {candidate:>14} | {gate:>6} {seconds:>5.1f}",
                flush=True,
            )

        row(models.current_version() or "-", "-", "-", "-", 0.0)
        for batch in batches:
            current = models.current()
            assert current is not None
            for _ in range(batch):
                incident = simulate_incident(case_seed_of(FEED_SEED, fed), config=PRODUCTION)
                analysis = analyze(
                    incident.telemetry, incident.topology, incident.observations, incident.alert_time, ranker=current[0]
                )
                shown = [h.key for h in analysis.hypotheses[:3]]
                found = incident.root_cause in shown or rng.random() < 0.7
                outcomes.record(
                    Outcome.from_analysis(
                        incident.id,
                        analysis,
                        verification="confirmed" if incident.root_cause in shown else "refuted",
                        root_cause=incident.root_cause if found else None,
                    )
                )
                fed += 1
            report = retrain(models, outcomes, simulated_cases=args.simulated_cases, seed=START_SEED, config=START)
            candidate = held_out_scores(models.load(report.candidate_version)[0], test)["ac1"]
            gate = "real" if report.reason.startswith("real") else "pooled"
            row(report.candidate_version, "yes" if report.promoted else "no", f"{candidate:.3f}", gate, report.seconds)
            print(f"{'':>8} {report.reason}", flush=True)


if __name__ == "__main__":
    main()
