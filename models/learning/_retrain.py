"""Retraining from generated incidents plus real outcomes, and the gate a new model must pass.

The gate is leave-one-generator-out: for every family of generators, the candidate's training
procedure is repeated without that family and scored on incidents of it. A candidate is promoted
only when, on every left-out family, it ranks no worse than the current model did (within
``SLACK``) and no worse than the plain BARO statistic on the same incidents; and, once enough real
incidents are held out, no worse on them. A model that only learned one generator fails the
folds of the others and is never promoted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.generators._registry import TRAINING_GENERATORS, generate, generator
from models.learning._datasets import REAL, VIEWS, TrainingSet, incident_view, training_set
from models.learning._evaluation import ac_at_k, evaluate
from models.learning._training import (
    CALIBRATION_PRIOR,
    COLD_START_CASES,
    COLD_START_SEED,
    REAL_WEIGHT,
    train_component_model,
    train_fault_model,
    train_models,
)
from models.ranking._analysis import CaseFeatures, incident_features
from models.ranking._trained import TrainedModels
from models.signals._claims import FAULT_FEATURES
from models.signals._features import COMPONENT_FEATURES
from models.store import ModelMetadata, ModelStore, OutcomeStore, write_model

#: The incidents of the gate's folds come from their own seed, the same for every model judged.
GATE_SEED = COLD_START_SEED + 1
#: How much AC@1 on a left-out family a candidate may lose against the current model.
SLACK = 0.03
#: Real held-out incidents from which the gate also judges on them.
MIN_REAL_HELD_OUT = 20
#: The views the gate scores each fold in.
GATE_VIEWS: tuple[str, ...] = ("full", "metrics_only")


class RetrainReport(BaseModel):
    """What ``retrain`` did."""

    model_config = ConfigDict(frozen=True)

    #: The version this run trained (saved whether or not it was promoted).
    candidate_version: str
    #: The promoted version before this run (``None``: the shipped model was in use).
    previous_version: str | None
    promoted: bool
    reason: str
    #: The gate's scores of the new model and of the model it would replace.
    metrics: dict[str, float]
    previous_metrics: dict[str, float] = Field(default_factory=dict)
    n_generated: int
    n_real_train: int
    n_real_held_out: int
    data_hash: str
    seconds: float

    def to_markdown(self) -> str:
        """A short report for people (a Prefect artifact, the CLI)."""
        verdict = "promoted" if self.promoted else "kept as a candidate (not promoted)"
        lines = [
            f"# Retraining: {self.candidate_version} {verdict}",
            "",
            f"{self.reason}.",
            "",
            f"Trained on {self.n_generated} generated and {self.n_real_train} real incidents "
            f"({self.n_real_held_out} real ones held out) in {self.seconds:.1f} s; data hash `{self.data_hash[:16]}`.",
            "",
            self._calibration_sentence(),
            "",
            "| gate metric | new | previous |",
            "|---|---|---|",
        ]
        for key in sorted(self.metrics):
            old = self.previous_metrics.get(key)
            lines.append(f"| {key} | {self.metrics[key]:.3f} | {'-' if old is None else f'{old:.3f}'} |")
        return "\n".join(lines) + "\n"

    def _calibration_sentence(self) -> str:
        if not self.n_real_train:
            return "Confidences are calibrated on the generators alone: no confirmed outcome of this system yet."
        return (
            f"Confidences are calibrated on this system's {self.n_real_train} confirmed outcomes, the generators "
            f"counting as {CALIBRATION_PRIOR:g} of them."
        )


def _is_held_out(incident_id: str, fraction: float) -> bool:
    # Stable across runs and processes: the same incident is always on the same side.
    bucket = int(hashlib.sha256(incident_id.encode()).hexdigest()[:8], 16) % 1000
    return bucket < fraction * 1000


def real_rows(features: CaseFeatures, root: tuple[str, object], incident: str) -> TrainingSet:
    """The rows of a real incident whose root cause was confirmed."""
    service, fault = root
    components = features.component_frame().reindex(columns=["service", *COMPONENT_FEATURES])
    components = components.assign(label=(components["service"] == service).astype(int), incident=incident)
    components["generator"] = REAL
    faults = features.fault_frame()
    faults = faults.loc[faults["service"] == service].reindex(columns=["service", "fault", *FAULT_FEATURES])
    truth = faults["fault"] == str(getattr(fault, "value", fault))
    if not truth.any() or not (faults.loc[truth, "supported"] > 0).any():
        faults = faults.iloc[0:0]
    faults = faults.assign(label=truth.astype(int), incident=incident, generator=REAL)
    return TrainingSet(components, faults)


def gate_scores(
    training: TrainingSet,
    *,
    test_cases: int,
    random_state: int = 0,
    families: Sequence[str] | None = None,
    real_weight: int = REAL_WEIGHT,
) -> dict[str, float]:
    """AC@1 of the training procedure on each left-out family (``logo_<family>``), in every gate
    view, next to BARO's on the same incidents (``baro_<family>``).

    AC@1 judges the component ranking, so only the component model is refitted per fold; the fault
    model (which does not move AC@1) is fitted once, on everything.
    """
    scores: dict[str, float] = {}
    fault_model = train_fault_model(training, random_state=random_state, real_weight=real_weight)
    for name in families or TRAINING_GENERATORS:
        family = generator(name).family
        fold = train_component_model(training.without([family]), random_state=random_state, real_weight=real_weight)
        models = TrainedModels(fold, fault_model).compiled()
        incidents = generate(name, test_cases, GATE_SEED)
        ours, baro = [], []
        for view in GATE_VIEWS:
            ours.append(evaluate(models, incidents, view=view).ac1)
            baro.append(_baro_ac1(incidents, view))
        scores[f"logo_{family}"] = float(np.mean(ours))
        scores[f"baro_{family}"] = float(np.mean(baro))
    return scores


def _baro_ac1(incidents: Sequence, view: str) -> float:
    """AC@1 of ranking components by their BARO score alone."""
    rankings, truths = [], []
    for incident in incidents:
        shown = incident_view(incident, view)
        table = incident_features(
            shown.telemetry, shown.topology, shown.observations, shown.alert_time, shown.alert_service
        ).components
        order = np.argsort(-np.nan_to_num(table["baro_score"].to_numpy(dtype=float), nan=-1.0), kind="stable")
        rankings.append([str(table["service"].iloc[i]) for i in order[:1]])
        truths.append({service for service, _ in incident.root_causes})
    return ac_at_k(rankings, truths, 1)


def promotion_decision(new: dict[str, float], old: dict[str, float]) -> tuple[bool, str]:
    """Whether a candidate with gate scores ``new`` may replace the model that scored ``old``."""
    problems = []
    for key in sorted(k for k in new if k.startswith("logo_")):
        family = key.removeprefix("logo_")
        if new[key] < new.get(f"baro_{family}", 0.0):
            problems.append(f"on {family} it ranks below BARO ({new[key]:.3f} < {new[f'baro_{family}']:.3f})")
        if key in old and new[key] < old[key] - SLACK:
            problems.append(f"on {family} AC@1 fell from {old[key]:.3f} to {new[key]:.3f}")
    if new.get("real_n", 0) >= MIN_REAL_HELD_OUT and "real_ac1" in old and new["real_ac1"] < old["real_ac1"]:
        problems.append(f"on {int(new['real_n'])} real held-out incidents AC@1 fell to {new['real_ac1']:.3f}")
    if problems:
        return False, "kept the current model: " + "; ".join(problems)
    folds = ", ".join(f"{k.removeprefix('logo_')} {v:.3f}" for k, v in sorted(new.items()) if k.startswith("logo_"))
    return True, f"not worse on any left-out generator (AC@1 {folds}): promoted"


def retrain(
    model_store: ModelStore,
    outcome_store: OutcomeStore,
    *,
    cases: int = COLD_START_CASES,
    seed: int = COLD_START_SEED,
    test_cases: int = 60,
    held_out_fraction: float = 0.3,
    real_weight: int = REAL_WEIGHT,
    random_state: int = 0,
    n_jobs: int = 1,
) -> RetrainReport:
    """Fit a new version from generated incidents plus labelled real outcomes; promote it if it
    passes the gate (see the module docstring)."""
    started = time.perf_counter()
    current = model_store.current()
    generated = training_set(TRAINING_GENERATORS, cases, seed, views=VIEWS, n_jobs=n_jobs)
    real_train: list[TrainingSet] = []
    held_out: list[tuple[CaseFeatures, tuple[str, object]]] = []
    for outcome in outcome_store.labelled():
        assert outcome.root_cause is not None and outcome.candidates is not None
        if _is_held_out(outcome.incident_id, held_out_fraction):
            held_out.append((outcome.candidates, outcome.root_cause))
        else:
            real_train.append(real_rows(outcome.candidates, outcome.root_cause, f"real:{outcome.incident_id}"))
    training = TrainingSet.concat([generated, *real_train])
    candidate = train_models(training, random_state=random_state, real_weight=real_weight)
    metrics = gate_scores(training, test_cases=test_cases, random_state=random_state, real_weight=real_weight)
    metrics.update(_real_scores(candidate, held_out))
    previous = model_store.metadata(current[1].version).metrics if current is not None else {}
    if current is not None and held_out:
        previous = {**previous, **_real_scores(model_store.load_estimators(current[1].version), held_out)}
    promoted, reason = promotion_decision(metrics, previous)
    data_hash = training.data_hash()
    version = model_store.save(
        candidate,
        metrics=metrics,
        data_hash=data_hash,
        parent=current[1].version if current is not None else None,
        training={
            "generators": list(TRAINING_GENERATORS),
            "cases_per_generator": cases,
            "seed": seed,
            "real_incidents": len(real_train),
            "real_weight": real_weight,
            "rows": len(training.components),
        },
    )
    if promoted:
        model_store.promote(version)
    return RetrainReport(
        candidate_version=version,
        previous_version=current[1].version if current is not None else None,
        promoted=promoted,
        reason=reason,
        metrics=metrics,
        previous_metrics=previous,
        n_generated=generated.n_incidents,
        n_real_train=len(real_train),
        n_real_held_out=len(held_out),
        data_hash=data_hash,
        seconds=round(time.perf_counter() - started, 3),
    )


def _real_scores(
    trained: TrainedModels, held_out: Sequence[tuple[CaseFeatures, tuple[str, object]]]
) -> dict[str, float]:
    """AC@1 on real held-out incidents, from the rows stored with their outcomes."""
    if not held_out:
        return {}
    model = trained.compiled()
    hits = []
    for features, (service, _) in held_out:
        frame = features.component_frame()
        aligned = frame.reindex(columns=list(model.components.feature_names)).to_numpy(dtype=float)
        confidence, probability = model.components.score_incident(aligned)
        best = int(np.lexsort((-probability, -confidence))[0])
        hits.append(str(frame["service"].iloc[best]) == service)
    return {"real_n": float(len(hits)), "real_ac1": float(np.mean(hits))}


def ship_model(
    folder: Path, *, cases: int = COLD_START_CASES, seed: int = COLD_START_SEED, gate_cases: int = 60, n_jobs: int = 1
) -> ModelMetadata:
    """Train on every generator and write the model to ``folder`` (``compiled.npz`` and
    ``metadata.json``, the gate's scores in its metrics): what ``make model`` ships."""
    started = time.perf_counter()
    training = training_set(TRAINING_GENERATORS, cases, seed, views=VIEWS, n_jobs=n_jobs)
    trained = train_models(training)
    metrics = gate_scores(training, test_cases=gate_cases) if gate_cases else {}
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = ModelMetadata(
        version=f"shipped-{training.data_hash()[:12]}",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_hash=training.data_hash(),
        metrics=metrics,
        training={"generators": list(TRAINING_GENERATORS), "cases_per_generator": cases, "seed": seed},
        component_features=list(trained.components.feature_names),
        fault_features=list(trained.faults.feature_names),
    )
    write_model(trained.compiled(metadata.version), metadata, folder)
    return metadata
