"""Training sets and model training: the cold-start model from the simulator, and ``retrain``
from simulated plus real outcomes with a promotion gate on held-out incidents."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._analysis import incident_features, rank_candidates
from models._evaluation import ac_at_k, avg_at_k
from models._features import FEATURE_NAMES
from models._observations import Observations
from models._ranker import HypothesisRanker
from models._simulator import SimulatedIncident, SimulationConfig, case_seed_of, simulate_incident
from models._telemetry import Telemetry
from models._topology import Topology
from models._types import FaultType

if TYPE_CHECKING:
    from models.store import ModelStore, OutcomeStore

COLD_START_SEED = 20_261_125
COLD_START_CASES = 300
#: Processes that simulate the cold-start incidents (the result does not depend on it).
COLD_START_JOBS = 2
#: Shorter incidents than the default 10 minutes: features are scale-free, training is faster.
COLD_START_DURATION = 300
#: Held-out simulated incidents of ``retrain``'s promotion gate, from their own seed.
HOLDOUT_SEED = COLD_START_SEED + 1
#: What the ranker must cope with: full context most of the time, sometimes no topology,
#: sometimes metrics alone.
VIEWS: dict[str, float] = {"full": 0.6, "no_topology": 0.2, "metrics_only": 0.2}
RANKER_PARAMS: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "negative_rate": 0.35}


@dataclass(frozen=True)
class TrainingSet:
    """Candidate rows with labels: ``service, fault, <features>, label, incident``."""

    frame: pd.DataFrame

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.reindex(columns=list(FEATURE_NAMES)).astype(float)

    @property
    def y(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=int)

    @property
    def groups(self) -> np.ndarray:
        return self.frame["incident"].to_numpy()

    @property
    def n_incidents(self) -> int:
        return int(self.frame["incident"].nunique()) if len(self.frame) else 0

    def data_hash(self) -> str:
        """SHA-256 of the features (NaN-canonical), labels and incident ids, in row order."""
        digest = hashlib.sha256()
        values = np.ascontiguousarray(np.nan_to_num(self.X.to_numpy(dtype=np.float64), nan=np.inf))
        digest.update(values.tobytes())
        digest.update(self.y.astype(np.int8).tobytes())
        digest.update("\x1f".join(map(str, self.groups)).encode())
        return digest.hexdigest()

    @classmethod
    def concat(cls, parts: Iterable[TrainingSet]) -> TrainingSet:
        frames = [part.frame for part in parts if len(part.frame)]
        return cls(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["label", "incident"]))


def labelled_rows(candidates: pd.DataFrame, root_cause: tuple[str, FaultType], incident: str) -> pd.DataFrame:
    """Candidate rows with ``label`` (1 for the root cause) and ``incident``."""
    service, fault = root_cause
    rows = candidates.copy()
    rows["label"] = ((rows["service"] == service) & (rows["fault"] == FaultType(fault).value)).astype(int)
    rows["incident"] = incident
    return rows


def incident_view(incident: SimulatedIncident, view: str) -> pd.DataFrame:
    """The candidate rows of a simulated incident as seen with ``view``'s share of the context."""
    telemetry = incident.telemetry
    topology: Topology | None = incident.topology
    observations = incident.observations
    if view == "no_topology":
        topology = None
    elif view == "metrics_only":
        topology, observations = None, Observations()
        telemetry = Telemetry(metrics=telemetry.metrics)
    return incident_features(telemetry, topology, observations, incident.alert_time).candidates


def simulated_training_set(
    n: int,
    seed: int,
    *,
    config: SimulationConfig | None = None,
    views: dict[str, float] | None = None,
    n_jobs: int = 1,
) -> TrainingSet:
    """Rows of ``n`` simulated incidents, fault types cycling, one random view per incident.

    The result does not depend on ``n_jobs`` (each incident has its own seed); it is cached
    per process, so repeated calls with the same arguments are free.
    """
    config = config or SimulationConfig(duration=COLD_START_DURATION)
    key = (n, seed, config.model_dump_json(), tuple(sorted((views or VIEWS).items())))
    if key not in _TRAINING_SETS:
        if len(_TRAINING_SETS) >= 8:
            _TRAINING_SETS.pop(next(iter(_TRAINING_SETS)))
        _TRAINING_SETS[key] = _build_training_set(*key, n_jobs=n_jobs)
    return _TRAINING_SETS[key]


# Per process: retraining reuses the simulated part, whatever ``n_jobs`` built it.
_TRAINING_SETS: dict[tuple[int, int, str, tuple[tuple[str, float], ...]], TrainingSet] = {}


def _build_training_set(
    n: int, seed: int, config_json: str, views: tuple[tuple[str, float], ...], *, n_jobs: int
) -> TrainingSet:
    config = SimulationConfig.model_validate_json(config_json)
    weights = config.weights()
    faults = [fault for fault in FaultType if weights[fault] > 0]
    names = [name for name, _ in views]
    shares = np.array([share for _, share in views], dtype=float)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x71E5])
    chosen = rng.choice(len(names), size=n, p=shares / shares.sum())
    # Balanced fault types when the weights are uniform; drawn by the weights otherwise.
    jobs = [
        (seed, i, None if config.fault_weights else faults[i % len(faults)], names[int(chosen[i])], config_json)
        for i in range(n)
    ]
    if n_jobs > 1 and n > 1:
        from joblib import Parallel, delayed  # scikit-learn's own dependency

        parts = Parallel(n_jobs=n_jobs, batch_size=max(1, n // (4 * n_jobs)))(
            delayed(_simulated_rows)(*job) for job in jobs
        )
    else:
        parts = [_simulated_rows(*job) for job in jobs]
    return TrainingSet(pd.concat(parts, ignore_index=True))


def _simulated_rows(seed: int, i: int, fault: FaultType | None, view: str, config_json: str) -> pd.DataFrame:
    config = SimulationConfig.model_validate_json(config_json)
    incident = simulate_incident(case_seed_of(seed, i), fault, config=config)
    assert incident.root_cause is not None
    return labelled_rows(incident_view(incident, view), incident.root_cause, f"sim:{seed}:{i}")


def train_ranker(training: TrainingSet, *, random_state: int = 0, **params: Any) -> HypothesisRanker:
    """A ``HypothesisRanker`` fitted on ``training`` (incidents as groups)."""
    settings = {**RANKER_PARAMS, **params}
    return HypothesisRanker(random_state=random_state, **settings).fit(training.X, training.y, groups=training.groups)


@lru_cache(maxsize=1)
def cold_start_ranker() -> HypothesisRanker:
    """The cold-start model, trained once per process from the simulator (deterministic)."""
    return train_ranker(cold_start_training_set())


def cold_start_training_set(n_jobs: int = COLD_START_JOBS) -> TrainingSet:
    return simulated_training_set(COLD_START_CASES, COLD_START_SEED, n_jobs=n_jobs)


# ---------------------------------------------------------------------------------------------
# held-out evaluation of candidate rows


@dataclass(frozen=True)
class HeldOutCase:
    incident: str
    candidates: pd.DataFrame
    root_cause: tuple[str, FaultType]


def held_out_scores(ranker: HypothesisRanker, cases: Sequence[HeldOutCase]) -> dict[str, float]:
    """AC@1, AC@3 and Avg@5 of ``ranker`` on prepared candidate rows."""
    rankings, truths = [], []
    for case in cases:
        order, _ = rank_candidates(ranker, case.candidates)
        services = case.candidates["service"].to_numpy()
        faults = case.candidates["fault"].to_numpy()
        rankings.append([(str(services[i]), FaultType(faults[i])) for i in order[:5]])
        truths.append((case.root_cause[0], FaultType(case.root_cause[1])))
    if not cases:
        return {"n": 0, "ac1": float("nan"), "ac3": float("nan"), "avg5": float("nan")}
    return {
        "n": len(cases),
        "ac1": ac_at_k(rankings, truths, 1),
        "ac3": ac_at_k(rankings, truths, 3),
        "avg5": avg_at_k(rankings, truths, 5),
    }


def simulated_held_out(n: int, seed: int = HOLDOUT_SEED, config: SimulationConfig | None = None) -> list[HeldOutCase]:
    """Full-view candidate rows of ``n`` simulated incidents (fault types cycling)."""
    config = config or SimulationConfig(duration=COLD_START_DURATION)
    return list(_cached_held_out(n, seed, config.model_dump_json()))


@lru_cache(maxsize=4)
def _cached_held_out(n: int, seed: int, config_json: str) -> tuple[HeldOutCase, ...]:
    config = SimulationConfig.model_validate_json(config_json)
    faults = list(FaultType)
    cases = []
    for i in range(n):
        incident = simulate_incident(
            case_seed_of(seed, i), faults[i % len(faults)] if not config.fault_weights else None, config=config
        )
        assert incident.root_cause is not None
        cases.append(HeldOutCase(f"sim:{seed}:{i}", incident_view(incident, "full"), incident.root_cause))
    return tuple(cases)


# ---------------------------------------------------------------------------------------------
# retraining


class RetrainReport(BaseModel):
    """What ``retrain`` did."""

    model_config = ConfigDict(frozen=True)

    #: The version this run trained (saved whether or not it was promoted).
    candidate_version: str
    #: The promoted version before this run (``None`` for the first model).
    previous_version: str | None
    promoted: bool
    reason: str
    #: Held-out scores of the new model and of the model it would replace.
    metrics: dict[str, float]
    previous_metrics: dict[str, float] = Field(default_factory=dict)
    n_simulated: int
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
            f"Trained on {self.n_simulated} simulated and {self.n_real_train} real incidents "
            f"({self.n_real_held_out} real ones held out) in {self.seconds:.1f} s; data hash `{self.data_hash[:16]}`.",
            "",
            "| held-out metric | new | previous |",
            "|---|---|---|",
        ]
        for key in sorted(self.metrics):
            if key.endswith("_n"):
                continue
            old = self.previous_metrics.get(key)
            lines.append(f"| {key} | {self.metrics[key]:.3f} | {'-' if old is None else f'{old:.3f}'} |")
        return "\n".join(lines) + "\n"


def _is_held_out(incident_id: str, fraction: float) -> bool:
    # Stable across runs and processes: the same incident is always on the same side.
    bucket = int(hashlib.sha256(incident_id.encode()).hexdigest()[:8], 16) % 1000
    return bucket < fraction * 1000


def _pooled(real: dict[str, float], simulated: dict[str, float]) -> dict[str, float]:
    n_real, n_sim = int(real.get("n", 0)), int(simulated.get("n", 0))
    pooled: dict[str, float] = {"n": n_real + n_sim}
    for key in ("ac1", "ac3", "avg5"):
        values = [(real.get(key, 0.0), n_real), (simulated.get(key, 0.0), n_sim)]
        total = sum(weight for _, weight in values if weight)
        pooled[key] = sum(value * weight for value, weight in values if weight) / total if total else float("nan")
    return pooled


#: Real held-out incidents from which the gate judges on them (simulated ones only guard).
MIN_REAL_HELD_OUT = 20
#: How much simulated-held-out AC@1 a model may lose while it wins on real incidents.
SIMULATED_SLACK = 0.05


def promotion_decision(new: dict[str, float], old: dict[str, float]) -> tuple[bool, str]:
    """Whether a candidate with held-out scores ``new`` may replace the model scoring ``old``.

    With at least ``MIN_REAL_HELD_OUT`` real held-out incidents the real ones decide (AC@1, then
    Avg@5), as long as simulated AC@1 drops by no more than ``SIMULATED_SLACK``: production is
    what the model must be good at, the simulator is a guard rail. With fewer, the pooled
    held-out set decides.
    """
    if new.get("real_n", 0) >= MIN_REAL_HELD_OUT:
        new_key, old_key = (new["real_ac1"], new["real_avg5"]), (old["real_ac1"], old["real_avg5"])
        guard = new["simulated_ac1"] >= old["simulated_ac1"] - SIMULATED_SLACK
        promoted = new_key >= old_key and guard
        scope = f"real held-out ({int(new['real_n'])} incidents)"
        if not guard:
            return False, (
                f"simulated held-out AC@1 fell from {old['simulated_ac1']:.3f} to {new['simulated_ac1']:.3f}: "
                "kept the current model"
            )
    else:
        new_key = (new["held_out_ac1"], new["held_out_avg5"])
        old_key = (old["held_out_ac1"], old["held_out_avg5"])
        promoted = new_key >= old_key
        scope = f"held-out ({int(new['held_out_n'])} incidents, real and simulated)"
    verdict = "not worse, promoted" if promoted else "worse, kept the current model"
    return promoted, (
        f"{scope} AC@1 {new_key[0]:.3f} vs {old_key[0]:.3f} (Avg@5 {new_key[1]:.3f} vs {old_key[1]:.3f}): {verdict}"
    )


def retrain(
    model_store: ModelStore,
    outcome_store: OutcomeStore,
    *,
    simulated_cases: int = COLD_START_CASES,
    seed: int = COLD_START_SEED,
    config: SimulationConfig | None = None,
    held_out_fraction: float = 0.3,
    held_out_simulated: int = 100,
    real_weight: int = 3,
    random_state: int = 0,
    n_jobs: int = 1,
) -> RetrainReport:
    """Fit a new model version from simulated incidents plus labelled real outcomes.

    Real incidents with a confirmed root cause are split (stably, by incident id) into training
    and held-out; the training ones count ``real_weight`` times. The new version is saved, the
    previous ones are kept, and it is promoted only if its AC@1 on the held-out incidents (real
    held-out ones pooled with ``held_out_simulated`` simulated ones) is not worse than the
    current model's (ties broken by Avg@5); see ``promotion_decision``.
    """
    started = time.perf_counter()
    current = model_store.current()
    simulated = simulated_training_set(simulated_cases, seed, config=config, n_jobs=n_jobs)
    real_train, real_held_out = [], []
    for outcome in outcome_store.labelled():
        assert outcome.root_cause is not None and outcome.candidates is not None
        candidates = outcome.candidates.to_frame()
        if _is_held_out(outcome.incident_id, held_out_fraction):
            real_held_out.append(HeldOutCase(outcome.incident_id, candidates, outcome.root_cause))
        else:
            rows = labelled_rows(candidates, outcome.root_cause, f"real:{outcome.incident_id}")
            if rows["label"].sum() == 1:
                real_train.extend([TrainingSet(rows)] * max(1, real_weight))
    training = TrainingSet.concat([simulated, *real_train])
    model = train_ranker(training, random_state=random_state)
    sim_held_out = simulated_held_out(held_out_simulated, config=config)

    def scores(ranker: HypothesisRanker) -> dict[str, float]:
        real = held_out_scores(ranker, real_held_out)
        sim = held_out_scores(ranker, sim_held_out)
        pooled = _pooled(real, sim)
        return {
            **{f"held_out_{k}": v for k, v in pooled.items()},
            **{f"real_{k}": v for k, v in real.items()},
            **{f"simulated_{k}": v for k, v in sim.items()},
        }

    new_metrics = scores(model)
    previous_metrics = scores(current[0]) if current is not None else {}
    if current is None:
        promoted, reason = True, "no current model"
    else:
        promoted, reason = promotion_decision(new_metrics, previous_metrics)
    data_hash = training.data_hash()
    version = model_store.save(
        model,
        metrics=new_metrics,
        data_hash=data_hash,
        parent=current[1].version if current is not None else None,
        training={
            "simulated_incidents": simulated.n_incidents,
            "real_incidents": len(real_train) // max(1, real_weight),
            "real_weight": real_weight,
            "seed": seed,
            "rows": len(training.frame),
        },
    )
    if promoted:
        model_store.promote(version)
    return RetrainReport(
        candidate_version=version,
        previous_version=current[1].version if current is not None else None,
        promoted=promoted,
        reason=reason,
        metrics=new_metrics,
        previous_metrics=previous_metrics,
        n_simulated=simulated.n_incidents,
        n_real_train=len(real_train) // max(1, real_weight),
        n_real_held_out=len(real_held_out),
        data_hash=data_hash,
        seconds=round(time.perf_counter() - started, 3),
    )


def default_ranker(
    model_store: ModelStore,
    *,
    cases: int = COLD_START_CASES,
    seed: int = COLD_START_SEED,
    n_jobs: int = COLD_START_JOBS,
    held_out: int = 50,
) -> HypothesisRanker:
    """The promoted model of ``model_store``; if there is none, the cold-start model, trained
    from ``cases`` simulated incidents, saved as the first version and promoted.

    Args:
        model_store: where models live.
        cases: simulated incidents of the cold-start training set.
        seed: their seed.
        n_jobs: processes simulating them (the model does not depend on it).
        held_out: simulated incidents (another seed) scored for the version's metadata.
    """
    current = model_store.current()
    if current is not None:
        return current[0]
    started = time.perf_counter()
    training = simulated_training_set(cases, seed, n_jobs=n_jobs)
    model = train_ranker(training)
    trained = time.perf_counter() - started
    metrics = {f"simulated_{k}": v for k, v in held_out_scores(model, simulated_held_out(held_out)).items()}
    metrics["train_seconds"] = round(trained, 3)
    version = model_store.save(
        model,
        metrics=metrics,
        data_hash=training.data_hash(),
        parent=None,
        training={"simulated_incidents": training.n_incidents, "seed": seed, "rows": len(training.frame)},
    )
    model_store.promote(version)
    return model
