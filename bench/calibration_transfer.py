"""Can the first day's confidences be calibrated on a system the model never saw? Measured, not assumed.

    .venv/bin/python bench/calibration_transfer.py [--seeds 11 12 13] [--train-cases 120] [--test-cases 100]

Leave one generator out, as ``bench/rca_accuracy.py`` does (the same training and test incidents for
the same seed), with metrics and everything, and metrics alone. For every left-out generator the top
hypothesis's confidence is re-fitted from the *other* generators' left-out incidents (each of them
scored by a model that did not see it) in three ways, and scored on the left-out one:

* ``as shipped``: the confidence the model gives;
* ``re-fitted``: an isotonic map of that confidence;
* ``incident``: a logistic model of whether the top answer is right, from what the incident shows
  of it: the confidence, the trees' score of the first and second candidates, the number of
  components, how many of the four statistics put the top candidate first and how far it stands
  out in each (each generator weighing the same);
* ``base rate``: one confidence for every incident, the other generators' mean accuracy;
* ``own cases``: the same logistic model fitted on the left-out generator's own incidents
  (five-fold cross-fitted): what the confidences could be once a system's outcomes are known.

The first four are what any first-day calibration can do; where they stay far above the floor on a
generator and ``own cases`` does not, how often the top answer is right depends on the system in a
way the incident does not show (README, "Confidence on a system it never saw").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rca_accuracy import FOLDS, SHIFT_BANDS, SHIFT_VIEWS
from models import TRAINING_GENERATORS, analyze, generate, train_models, training_set
from models.generators import generator
from models.learning import expected_calibration_error
from models.learning._datasets import incident_view
from models.ranking._analysis import score_rows
from models.signals._features import STATISTICS

INCIDENT_FEATURES = ("confidence", "first", "second", "components", "agreeing", "baro_rel", "blanket_rel", "svc_rel")


def top_answers(seed: int, train_cases: int, test_cases: int) -> pd.DataFrame:
    """One row per left-out incident and view: what the incident shows of its top answer, and whether it was right."""
    training = training_set(TRAINING_GENERATORS, train_cases, seed, n_jobs=2)
    rows = []
    for name in FOLDS:
        family = generator(name).family
        model = train_models(training.without([family]), random_state=seed).compiled(f"without-{family}")
        for incident in generate(name, test_cases, seed + 7919):
            for view in SHIFT_VIEWS:
                shown = incident_view(incident, view)
                analysis = analyze(
                    shown.telemetry, shown.topology, shown.observations, shown.alert_time, model,
                    alert_service=shown.alert_service,
                )  # fmt: skip
                if not analysis.hypotheses or analysis.candidates is None:
                    continue
                table = analysis.candidates.component_frame().set_index("service")
                _, trees = score_rows(model.components, table)
                ranked = np.sort(trees)[::-1]
                top = table.loc[analysis.hypotheses[0].component]
                known = [top[f"{s}_top"] for s in STATISTICS if np.isfinite(top[f"{s}_top"])]
                rows.append(
                    {
                        "seed": seed,
                        "generator": name,
                        "family": family,
                        "view": view,
                        "right": float(analysis.hypotheses[0].component in {s for s, _ in incident.root_causes}),
                        "confidence": analysis.hypotheses[0].confidence,
                        "first": ranked[0],
                        "second": ranked[1] if len(ranked) > 1 else 0.0,
                        "components": np.log(len(table)),
                        "agreeing": float(np.mean(known)) if known else 0.0,
                        **{name: float(np.nan_to_num(top[name], nan=-1.0)) for name in INCIDENT_FEATURES[-3:]},
                    }
                )
        print(f"seed {seed}: {name} done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def _logistic() -> LogisticRegression:
    return LogisticRegression(C=0.1, max_iter=5000)


def transfer_scores(answers: pd.DataFrame) -> pd.DataFrame:
    """Top-1 ECE per seed, left-out generator and view, for each way of calibrating (see the docstring)."""
    results = []
    for (seed, name, view), test in answers.groupby(["seed", "generator", "view"], sort=False):
        others = answers[(answers["seed"] == seed) & (answers["family"] != test["family"].iloc[0])]
        weight = 1.0 / others.groupby("generator")["right"].transform("size")
        features, right = test[list(INCIDENT_FEATURES)], test["right"]
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(others["confidence"], others["right"], sample_weight=weight)
        base_rate = float(np.average(others["right"], weights=weight))
        if others["right"].nunique() == 2:
            model = _logistic().fit(others[list(INCIDENT_FEATURES)], others["right"], sample_weight=weight)
            incident = model.predict_proba(features)[:, 1]
        else:  # the others were all right (or all wrong): nothing to learn but that
            incident = np.full(len(test), base_rate)
        row = {
            "seed": seed,
            "left out": name,
            "view": view,
            "AC@1": right.mean(),
            "as shipped": expected_calibration_error(test["confidence"], right),
            "re-fitted": expected_calibration_error(isotonic.predict(test["confidence"]), right),
            "incident": expected_calibration_error(incident, right),
            "base rate": abs(base_rate - right.mean()),
            "own cases": float("nan"),
        }
        folds = int(min(5, right.value_counts().min())) if right.nunique() == 2 else 0
        if folds >= 3:
            own = cross_val_predict(
                _logistic(), features, right, cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                method="predict_proba",
            )[:, 1]  # fmt: skip
            row["own cases"] = expected_calibration_error(own, right)
        results.append(row)
    return pd.DataFrame(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--train-cases", type=int, default=120, help="training incidents per generator")
    parser.add_argument("--test-cases", type=int, default=100, help="incidents of the left-out generator")
    args = parser.parse_args()
    answers = pd.concat([top_answers(seed, args.train_cases, args.test_cases) for seed in args.seeds])
    scores = transfer_scores(answers)
    columns = ["AC@1", "as shipped", "re-fitted", "incident", "base rate", "own cases"]
    print(f"top-1 ECE, mean over seeds {', '.join(map(str, args.seeds))} ({args.test_cases} incidents per cell)")
    print(scores.groupby(["left out", "view"], sort=False)[columns].mean().round(3).to_string())
    print(scores[columns].mean().round(3).to_frame("mean of the cells").T.to_string())
    edges = [low for low, _ in SHIFT_BANDS] + [SHIFT_BANDS[-1][1]]
    labels = [f"{low:.1f}-{high:.1f}" for low, high in SHIFT_BANDS]
    bands = pd.cut(answers["confidence"], edges, labels=labels, include_lowest=True)
    at_same = answers.assign(band=bands)
    print("\ntop answer right, by first-day confidence (both views)")
    print(at_same.pivot_table(index="band", columns="generator", values="right", observed=False).round(2).to_string())


if __name__ == "__main__":
    main()
