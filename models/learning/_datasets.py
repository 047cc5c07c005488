"""Labelled rows from incidents with known root causes: one table for the component model, one for
the fault model, each row tagged with its incident and the generator that drew it."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.domain._observations import Observations
from models.domain._telemetry import Telemetry, column_splitter
from models.domain._topology import Topology
from models.generators._registry import GENERATORS, draw, generator
from models.generators._simulator import SimulatedIncident
from models.ranking._analysis import incident_features
from models.signals._claims import FAULT_FEATURES, fault_table
from models.signals._features import COMPONENT_FEATURES

#: What a model must cope with: full context most of the time, sometimes no topology, sometimes
#: metrics alone (RCAEval's layout, what a user of ``cloud-agent analyze`` often has). Training on
#: ``unnamed_metrics`` too (10 % of incidents) ranked unreadable names better but flattened every
#: confidence (README, "Metric names it cannot read"): it is scored, not trained on.
VIEWS: dict[str, float] = {"full": 0.5, "no_topology": 0.2, "metrics_only": 0.3}
#: The views a model is scored in: everything, metrics alone, and metrics whose names say nothing
#: the kind rules can read (a team's own ``orders_m3``; PyRCA's ``node-07_value`` already are).
SCORED_VIEWS: tuple[str, ...] = ("full", "metrics_only", "unnamed_metrics")
#: The ``generator`` tag of rows from confirmed outcomes of the system a model serves.
REAL = "real"
_TAGS = ("incident", "generator", "label")


@dataclass(frozen=True)
class TrainingSet:
    """``components``: ``service``, the component features, ``label``, ``incident``, ``generator``;
    ``faults``: ``service``, ``fault``, the fault features and the same tags."""

    components: pd.DataFrame
    faults: pd.DataFrame

    @property
    def n_incidents(self) -> int:
        return int(self.components["incident"].nunique()) if len(self.components) else 0

    @property
    def generators(self) -> list[str]:
        return sorted(self.components["generator"].unique()) if len(self.components) else []

    def without(self, families: Iterable[str]) -> TrainingSet:
        """The rows of every generator but those of ``families`` (``pyrca`` drops ``pyrca-linear`` too;
        rows of real incidents, tagged ``real``, stay unless ``real`` is named)."""
        left_out = set(families)
        dropped = {
            name for name in self.generators if (generator(name).family if name in GENERATORS else name) in left_out
        }
        return TrainingSet(
            self.components.loc[~self.components["generator"].isin(dropped)].reset_index(drop=True),
            self.faults.loc[~self.faults["generator"].isin(dropped)].reset_index(drop=True),
        )

    def as_outcomes(self) -> TrainingSet:
        """These rows as confirmed outcomes of the served system (tagged ``real``)."""
        return TrainingSet(self.components.assign(generator=REAL), self.faults.assign(generator=REAL))

    def data_hash(self) -> str:
        """SHA-256 of both tables' features (NaN-canonical), labels and incident ids, in row order."""
        digest = hashlib.sha256()
        for frame, names in ((self.components, COMPONENT_FEATURES), (self.faults, FAULT_FEATURES)):
            values = frame.reindex(columns=list(names)).to_numpy(dtype=np.float64)
            digest.update(np.ascontiguousarray(np.nan_to_num(values, nan=np.inf)).tobytes())
            digest.update(frame["label"].to_numpy(dtype=np.int8).tobytes() if len(frame) else b"")
            digest.update("\x1f".join(map(str, frame["incident"])).encode())
        return digest.hexdigest()

    @classmethod
    def concat(cls, parts: Iterable[TrainingSet]) -> TrainingSet:
        parts = list(parts)
        return cls(
            _concat([part.components for part in parts], ["service", *COMPONENT_FEATURES, *_TAGS]),
            _concat([part.faults for part in parts], ["service", "fault", *FAULT_FEATURES, *_TAGS]),
        )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class IncidentView:
    """What one view shows of an incident: the inputs ``analyze`` gets."""

    telemetry: Telemetry
    topology: Topology | None
    observations: Observations
    alert_time: float
    alert_service: str | None


def incident_view(incident: SimulatedIncident, view: str) -> IncidentView:
    """What ``view`` shows of an incident: ``full`` (everything the generator gives), ``no_topology``,
    ``metrics_only`` (RCAEval's layout: the metrics and the alert's time, as a user of ``cloud-agent
    analyze --telemetry ... --alert-time ...`` has them; not even which component paged), or
    ``unnamed_metrics`` (the same with every metric renamed ``<component>_m<k>``)."""
    labels = incident.alert.get("labels", {}) if isinstance(incident.alert, dict) else {}
    paged = str(labels["service"]) if labels.get("service") else None
    if view == "full":
        return IncidentView(incident.telemetry, incident.topology, incident.observations, incident.alert_time, paged)
    if view == "no_topology":
        return IncidentView(incident.telemetry, None, incident.observations, incident.alert_time, paged)
    if view in ("metrics_only", "unnamed_metrics"):
        metrics = incident.telemetry.metrics
        if view == "unnamed_metrics":
            metrics = metrics.rename(columns=unnamed_columns(metrics.columns[1:]))
        return IncidentView(Telemetry(metrics=metrics), None, Observations(), incident.alert_time, None)
    raise ValueError(f"unknown view {view!r}; known: {', '.join(dict.fromkeys([*VIEWS, *SCORED_VIEWS]))}")


def unnamed_columns(columns: Iterable[str]) -> dict[str, str]:
    """Each metric column's name with its metric part replaced by ``m<k>``, ``k`` counting per
    component in column order: what the component is stays readable, what the metric is does not."""
    split = column_splitter()
    seen: Counter[str] = Counter()
    renamed = {}
    for column in columns:
        service, _ = split(column)
        renamed[column] = f"{service}_m{seen[service]}"
        seen[service] += 1
    return renamed


def labelled_rows(incident: SimulatedIncident, view: str) -> TrainingSet:
    """The rows one incident contributes, as ``view`` shows it.

    Every component is a row of the component table, labelled 1 when it is a root cause. The fault
    table holds the main root cause's candidate faults, labelled 1 for the true one, only when the
    generator's fault types mean something and the data shows evidence for the true one (a model
    must not learn to claim what the evidence does not show).
    """
    if incident.root_cause is None:
        raise ValueError(f"incident {incident.id} has no root cause to learn from")
    shown = incident_view(incident, view)
    features = incident_features(
        shown.telemetry, shown.topology, shown.observations, shown.alert_time, shown.alert_service
    )
    roots = {service for service, _ in incident.root_causes}
    tags = {"incident": f"{incident.generator}:{incident.id}:{view}", "generator": incident.generator}
    components = features.components.assign(label=features.components["service"].isin(roots).astype(int), **tags)
    faults = pd.DataFrame()
    service, fault = incident.root_cause
    if generator(incident.generator).typed and service in features.signals.services:
        rows = fault_table(features.signals, [service])
        truth = rows["fault"] == fault.value
        if truth.any() and rows.loc[truth, "supported"].iloc[0] > 0:
            faults = rows.assign(label=truth.astype(int), **tags)
    return TrainingSet(components, faults)


def generated_training_set(
    name: str, n: int, seed: int, *, views: dict[str, float] | None = None, n_jobs: int = 1
) -> TrainingSet:
    """Rows of ``n`` incidents of generator ``name``, each in one view drawn by ``views``' shares.

    The result does not depend on ``n_jobs``; it is cached per process.
    """
    views = views or VIEWS
    key = (name, n, seed, tuple(sorted(views.items())))
    if key not in _CACHE:
        if len(_CACHE) >= 16:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _build(name, n, seed, views, n_jobs)
    return _CACHE[key]


_CACHE: dict[tuple[str, int, int, tuple[tuple[str, float], ...]], TrainingSet] = {}


def _build(name: str, n: int, seed: int, views: dict[str, float], n_jobs: int) -> TrainingSet:
    names = list(views)
    shares = np.array([views[view] for view in names], dtype=float)
    chosen = np.random.default_rng([seed & 0xFFFFFFFF, 0x71E5]).choice(len(names), size=n, p=shares / shares.sum())
    jobs = [(name, seed, i, names[int(chosen[i])]) for i in range(n)]
    if n_jobs > 1 and n > 1:
        from joblib import Parallel, delayed  # scikit-learn's own dependency

        parts = Parallel(n_jobs=n_jobs, batch_size=max(1, n // (4 * n_jobs)))(delayed(_rows)(*job) for job in jobs)
    else:
        parts = [_rows(*job) for job in jobs]
    return TrainingSet.concat(parts)


def _rows(name: str, seed: int, i: int, view: str) -> TrainingSet:
    return labelled_rows(draw(name, seed, i), view)


def training_set(
    names: Sequence[str], n: int, seed: int, *, views: dict[str, float] | None = None, n_jobs: int = 1
) -> TrainingSet:
    """``n`` incidents of each generator of ``names`` (each generator from its own seed)."""
    return TrainingSet.concat(
        generated_training_set(name, n, seed + index, views=views, n_jobs=n_jobs) for index, name in enumerate(names)
    )
