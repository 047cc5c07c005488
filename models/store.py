"""Everything in ``models`` that touches files: telemetry and topology loaders, the model store
(versions of the fitted models, the promoted one, the shipped one) and the outcome store (SQLite).

Paths are always arguments; nothing here reads environment variables. scikit-learn and skops are
imported only to save or reload estimators: loading a model for ``analyze`` needs numpy alone.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.domain._errors import ModelStoreError, OutcomeStoreError, TelemetryError, TopologyError
from models.domain._telemetry import Telemetry
from models.domain._topology import Topology
from models.domain._types import FaultType
from models.playbook._catalog import FixHistory
from models.ranking._analysis import Analysis, CaseFeatures, DiagnosisModel
from models.ranking._compiled import CompiledRanker
from models.ranking._trained import TrainedModels

# ---------------------------------------------------------------------------------------------
# reading telemetry and documents


def read_frame(path: str | Path, what: str = "file") -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet file as a frame.

    Raises:
        TelemetryError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise TelemetryError(
            f"{what}: {str(path)!r} is a folder, not a file" if path.is_dir() else f"{what}: no such file {str(path)!r}"
        )
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".txt")):
            return pd.read_csv(path)
        if name.endswith((".jsonl", ".ndjson")):
            return pd.read_json(path, lines=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise TelemetryError(f"{what}: cannot read {str(path)!r}: {exc}") from exc
    raise TelemetryError(f"{what}: {str(path)!r} is neither CSV nor Parquet (by its extension)")


def load_telemetry(
    metrics_path: str | Path, logs_path: str | Path | None = None, traces_path: str | Path | None = None
) -> Telemetry:
    """Telemetry from CSV/Parquet files (see ``Telemetry`` for the columns).

    Raises:
        TelemetryError: a file is missing, unreadable or does not hold the expected columns.
    """
    return Telemetry(
        metrics=read_frame(metrics_path, "metrics"),
        logs=read_frame(logs_path, "logs") if logs_path is not None else None,
        traces=read_frame(traces_path, "traces") if traces_path is not None else None,
    )


def read_topology(path: str | Path) -> Topology:
    """A topology from a JSON or YAML file (see ``Topology.from_dict`` for the layout)."""
    return Topology.from_dict(read_document(path, what="topology"))


def read_document(path: str | Path, what: str = "document") -> Any:
    """A JSON or YAML file as plain data.

    Raises:
        TopologyError: the file is missing or not valid JSON/YAML.
    """
    path = Path(path)
    if not path.is_file():
        raise TopologyError(
            f"{what}: {str(path)!r} is a folder, not a file" if path.is_dir() else f"{what}: no such file {str(path)!r}"
        )
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise TopologyError(f"{what}: cannot read {str(path)!r}: {exc}".splitlines()[0]) from exc


# ---------------------------------------------------------------------------------------------
# model store

#: Types a saved estimator holds beyond those skops trusts by itself (scikit-learn's estimators,
#: numpy arrays). Loading refuses a file holding any other type skops does not trust.
TRUSTED_TYPES: tuple[str, ...] = (
    "models.ranking._ranker.HypothesisRanker",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.linear_model._logistic.LogisticRegression",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
    "builtins.slice",
)

_VERSION = re.compile(r"^v(\d{4,})$")
#: The model shipped with the package: what ``analyze`` uses before any model of one's own exists.
SHIPPED_MODEL = Path(__file__).resolve().parent / "shipped"
_COMPILED = "compiled.npz"
_METADATA = "metadata.json"


class ModelMetadata(BaseModel):
    """What is known about a saved model version."""

    model_config = ConfigDict(frozen=True)

    version: str
    created_at: str
    data_hash: str
    metrics: dict[str, float] = Field(default_factory=dict)
    parent: str | None = None
    training: dict[str, Any] = Field(default_factory=dict)
    component_features: list[str] = Field(default_factory=list)
    fault_features: list[str] = Field(default_factory=list)
    sklearn_version: str = ""
    skops_version: str = ""

    @property
    def calibrated_on(self) -> int:
        """Confirmed outcomes of the served system its confidences are calibrated on."""
        return int(self.training.get("real_incidents", 0))


def save_compiled(model: DiagnosisModel, folder: Path) -> None:
    """The model's arrays in ``folder/compiled.npz`` (numpy's format: loading runs no code)."""
    arrays = {**model.components.arrays("components"), **model.faults.arrays("faults")}  # type: ignore[attr-defined]
    header = {"components": model.components.header(), "faults": model.faults.header()}  # type: ignore[attr-defined]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(folder / _COMPILED, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_compiled(folder: Path, version: str | None = None, calibrated_on: int = 0) -> DiagnosisModel:
    """The model saved by ``save_compiled`` in ``folder`` (``version`` and ``calibrated_on``: what its
    metadata says, for ``DiagnosisModel``).

    Raises:
        ModelStoreError: no model there, or an unreadable one.
    """
    path = folder / _COMPILED
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        header = json.loads(bytes(arrays.pop("header")).decode())
        return DiagnosisModel(
            CompiledRanker.from_arrays(header["components"], arrays, "components"),
            CompiledRanker.from_arrays(header["faults"], arrays, "faults"),
            version,
            calibrated_on,
        )
    except FileNotFoundError as exc:
        raise ModelStoreError(f"no model in {str(folder)!r} (expected {_COMPILED})") from exc
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelStoreError(f"unreadable model in {str(folder)!r}: {exc}") from exc


def shipped_model() -> tuple[DiagnosisModel, ModelMetadata]:
    """The model that ships with the package (trained by ``make model`` on every generator)."""
    metadata = _read_metadata(SHIPPED_MODEL / _METADATA)
    return load_compiled(SHIPPED_MODEL, metadata.version, metadata.calibrated_on), metadata


def write_model(model: DiagnosisModel, metadata: ModelMetadata, folder: Path) -> None:
    """A compiled model and its metadata in ``folder`` (the shipped model's layout)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_compiled(model, folder)
        (folder / _METADATA).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
    except OSError as exc:
        raise ModelStoreError(f"cannot write the model to {str(folder)!r}: {exc}") from exc


def active_model(store: ModelStore | None) -> tuple[DiagnosisModel, ModelMetadata]:
    """The model to diagnose with: the store's promoted version, else the shipped one."""
    current = store.current() if store is not None else None
    return current if current is not None else shipped_model()


def _read_metadata(path: Path) -> ModelMetadata:
    try:
        return ModelMetadata.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelStoreError(f"no model metadata at {str(path)!r}") from exc
    except (OSError, ValidationError) as exc:
        raise ModelStoreError(f"unreadable model metadata {str(path)!r}: {str(exc).splitlines()[0]}") from exc


class ModelStore:
    """Versioned models under ``root`` (created on first save)::

    root/v0001/compiled.npz       what analyze runs (numpy arrays)
    root/v0001/components.skops   the fitted estimators (for retraining and inspection)
    root/v0001/faults.skops
    root/v0001/metadata.json      version, created_at, data_hash, metrics, parent, library versions
    root/CURRENT                  the promoted version's name
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """Saved versions, oldest first."""
        if not self.root.is_dir():
            return []
        found = [
            p.name for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name) and (p / _COMPILED).is_file()
        ]
        return sorted(found, key=lambda name: int(name[1:]))

    def save(
        self,
        trained: TrainedModels,
        *,
        data_hash: str,
        metrics: Mapping[str, float] | None = None,
        parent: str | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> str:
        """Save fitted models as the next version (not promoted) and return its name."""
        import sklearn
        import skops
        import skops.io as sio

        self.root.mkdir(parents=True, exist_ok=True)
        existing = self.versions()
        number = int(existing[-1][1:]) + 1 if existing else 1
        version = f"v{number:04d}"
        folder = self.root / version
        while folder.exists():  # a half-written version left by a crash: never overwrite it
            number += 1
            version = f"v{number:04d}"
            folder = self.root / version
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.root))
        metadata = ModelMetadata(
            version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            data_hash=data_hash,
            # NaN (a score over no case) has no JSON form: an unknown metric is left out.
            metrics={key: float(value) for key, value in (metrics or {}).items() if math.isfinite(float(value))},
            parent=parent,
            training=dict(training or {}),
            component_features=list(trained.components.feature_names),
            fault_features=list(trained.faults.feature_names),
            sklearn_version=sklearn.__version__,
            skops_version=skops.__version__,
        )
        try:
            sio.dump(trained.components, staging / "components.skops")
            sio.dump(trained.faults, staging / "faults.skops")
            save_compiled(trained.compiled(version), staging)
            (staging / _METADATA).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
            os.replace(staging, folder)
        except OSError as exc:
            raise ModelStoreError(f"cannot save model {version} under {str(self.root)!r}: {exc}") from exc
        return version

    def metadata(self, version: str) -> ModelMetadata:
        if not (self.root / version).is_dir():
            raise ModelStoreError(f"no model version {version!r} in {str(self.root)!r}")
        return _read_metadata(self.root / version / _METADATA)

    def load(self, version: str) -> tuple[DiagnosisModel, ModelMetadata]:
        """A saved version, ready for ``analyze`` (numpy only), and its metadata.

        Raises:
            ModelStoreError: unknown version or unreadable files.
        """
        if not _VERSION.match(version):
            raise ModelStoreError(f"not a version name: {version!r}")
        metadata = self.metadata(version)
        return load_compiled(self.root / version, version, metadata.calibrated_on), metadata

    def load_estimators(self, version: str) -> TrainedModels:
        """The fitted scikit-learn estimators of a version.

        Raises:
            ModelStoreError: unknown version, or a file holding types outside ``TRUSTED_TYPES``.
        """
        import skops.io as sio

        from models.ranking._ranker import HypothesisRanker

        self.metadata(version)
        loaded = []
        for name in ("components", "faults"):
            path = self.root / version / f"{name}.skops"
            try:
                untrusted = sio.get_untrusted_types(file=path)
            except FileNotFoundError as exc:
                raise ModelStoreError(f"no {name} model file for {version!r}") from exc
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise ModelStoreError(f"unreadable {name} model file for {version!r}: {exc}") from exc
            unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
            if unexpected:
                raise ModelStoreError(f"model {version!r} holds types that are not trusted: {unexpected}")
            ranker = sio.load(path, trusted=list(TRUSTED_TYPES))
            if not isinstance(ranker, HypothesisRanker):
                raise ModelStoreError(f"model {version!r} is a {type(ranker).__name__}, not a HypothesisRanker")
            loaded.append(ranker)
        return TrainedModels(*loaded)

    def current_version(self) -> str | None:
        path = self.root / "CURRENT"
        if not path.is_file():
            return None
        version = path.read_text(encoding="utf-8").strip()
        return version or None

    def current(self) -> tuple[DiagnosisModel, ModelMetadata] | None:
        """The promoted version, or ``None`` when nothing was promoted yet."""
        version = self.current_version()
        return None if version is None else self.load(version)

    def promote(self, version: str) -> None:
        """Make ``version`` the current model (the others stay on disk)."""
        self.metadata(version)
        temporary = self.root / f".CURRENT.{os.getpid()}"
        temporary.write_text(version + "\n", encoding="utf-8")
        os.replace(temporary, self.root / "CURRENT")


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


# ---------------------------------------------------------------------------------------------
# outcome store


class Outcome(BaseModel):
    """What happened with one incident: what we said, what verification found, what fixed it.

    Recording the same ``incident_id`` again fills in the fields that are set this time.
    """

    model_config = ConfigDict(frozen=True)

    incident_id: str = Field(min_length=1)
    environment: str | None = None
    recorded_at: float = Field(default_factory=time.time)
    #: The hypotheses shown, ``(component, fault, confidence)``, most likely first.
    hypotheses: list[tuple[str, FaultType, float]] = Field(default_factory=list)
    #: The candidate rows the ranker saw (``Analysis.candidates``): what retraining learns from.
    candidates: CaseFeatures | None = None
    #: The verification verdict of the root cause: ``confirmed``, ``refuted`` or ``inconclusive``.
    verification: str | None = None
    #: The confirmed ``(component, fault)``; ``None`` while unknown.
    root_cause: tuple[str, FaultType] | None = None
    fix_action: str | None = None
    #: The fault the fix addressed (defaults to the root cause's).
    fix_fault: FaultType | None = None
    fix_worked: bool | None = None
    model_version: str | None = None

    @field_validator("fix_fault", mode="before")
    @classmethod
    def _fault_or_none(cls, value: object) -> object:
        # Callers pass str(fault) and may pass str(None): anything that is not a fault is unknown.
        if value is None or isinstance(value, FaultType):
            return value
        text = str(value).strip().lower()
        return text if text in {fault.value for fault in FaultType} else None

    @classmethod
    def from_analysis(cls, incident_id: str, analysis: Analysis, **fields: Any) -> Outcome:
        """An outcome holding ``analysis``'s hypotheses and candidate rows (plus ``fields``)."""
        return cls(
            incident_id=incident_id,
            hypotheses=[(h.component, h.fault, h.confidence) for h in analysis.hypotheses],
            candidates=analysis.candidates,
            model_version=analysis.model_version,
            **fields,
        )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    incident_id   TEXT PRIMARY KEY,
    environment   TEXT,
    recorded_at   REAL NOT NULL,
    hypotheses    TEXT,
    candidates    TEXT,
    verification  TEXT,
    root_service  TEXT,
    root_fault    TEXT,
    fix_action    TEXT,
    fix_fault     TEXT,
    fix_worked    INTEGER,
    model_version TEXT
)
"""


class OutcomeStore:
    """Outcomes in a SQLite file, one row per incident."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutcomeStoreError(f"cannot open the outcome store {str(self.path)!r}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db

    def record(self, outcome: Outcome) -> str:
        """Store ``outcome`` (or complete the stored one: unset fields keep their value).

        Returns:
            The incident id.
        """
        root = outcome.root_cause
        fix_fault = outcome.fix_fault or (root[1] if root else None)
        row = {
            "incident_id": outcome.incident_id,
            "environment": outcome.environment,
            "recorded_at": outcome.recorded_at,
            "hypotheses": json.dumps([[c, FaultType(f).value, float(p)] for c, f, p in outcome.hypotheses])
            if outcome.hypotheses
            else None,
            "candidates": outcome.candidates.model_dump_json() if outcome.candidates is not None else None,
            "verification": outcome.verification,
            "root_service": root[0] if root else None,
            "root_fault": FaultType(root[1]).value if root else None,
            "fix_action": outcome.fix_action,
            "fix_fault": FaultType(fix_fault).value if fix_fault else None,
            "fix_worked": None if outcome.fix_worked is None else int(outcome.fix_worked),
            "model_version": outcome.model_version,
        }
        columns = ", ".join(row)
        placeholders = ", ".join(f":{name}" for name in row)
        updates = ", ".join(
            f"{name} = COALESCE(excluded.{name}, outcomes.{name})" for name in row if name != "incident_id"
        )
        try:
            with self._connect() as db:
                db.execute(
                    f"INSERT INTO outcomes ({columns}) VALUES ({placeholders}) "
                    f"ON CONFLICT(incident_id) DO UPDATE SET {updates}",
                    row,
                )
        except sqlite3.Error as exc:
            raise OutcomeStoreError(f"cannot record the outcome of {outcome.incident_id!r}: {exc}") from exc
        return outcome.incident_id

    def _rows(self, where: str = "", params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._connect() as db:
                db.row_factory = sqlite3.Row
                return list(db.execute(f"SELECT * FROM outcomes {where} ORDER BY recorded_at, incident_id", params))
        except sqlite3.Error as exc:
            raise OutcomeStoreError(f"cannot read the outcome store {str(self.path)!r}: {exc}") from exc

    @staticmethod
    def _outcome(row: sqlite3.Row) -> Outcome:
        root = None
        if row["root_service"] and row["root_fault"]:
            root = (row["root_service"], FaultType(row["root_fault"]))
        return Outcome(
            incident_id=row["incident_id"],
            environment=row["environment"],
            recorded_at=row["recorded_at"],
            hypotheses=[tuple(item) for item in json.loads(row["hypotheses"])] if row["hypotheses"] else [],
            candidates=_case_features(row["candidates"]),
            verification=row["verification"],
            root_cause=root,
            fix_action=row["fix_action"],
            fix_fault=row["fix_fault"],
            fix_worked=None if row["fix_worked"] is None else bool(row["fix_worked"]),
            model_version=row["model_version"],
        )

    def get(self, incident_id: str) -> Outcome | None:
        rows = self._rows("WHERE incident_id = ?", (incident_id,))
        return self._outcome(rows[0]) if rows else None

    def outcomes(self) -> list[Outcome]:
        """Every outcome, oldest first."""
        return [self._outcome(row) for row in self._rows()]

    def labelled(self) -> list[Outcome]:
        """Outcomes with a confirmed root cause and candidate rows: what retraining learns from."""
        rows = self._rows("WHERE root_service IS NOT NULL AND root_fault IS NOT NULL AND candidates IS NOT NULL")
        return [self._outcome(row) for row in rows]

    def count(self) -> int:
        try:
            with self._connect() as db:
                return int(db.execute("SELECT count(*) FROM outcomes").fetchone()[0])
        except sqlite3.Error as exc:
            raise OutcomeStoreError(f"cannot read the outcome store {str(self.path)!r}: {exc}") from exc

    def fix_history(self) -> FixHistory:
        """Successes and failures per (fault, fix action), for fix confidences."""
        rows = self._rows("WHERE fix_action IS NOT NULL AND fix_fault IS NOT NULL AND fix_worked IS NOT NULL")
        return FixHistory.from_outcomes((row["fix_fault"], row["fix_action"], bool(row["fix_worked"])) for row in rows)


def _case_features(text: str | None) -> CaseFeatures | None:
    """Stored candidate rows, or ``None`` when absent or written by a model of another shape (an
    outcome recorded before the two-model ranking keeps its verdict, not its rows)."""
    if not text:
        return None
    try:
        return CaseFeatures.model_validate_json(text)
    except ValidationError:
        return None
