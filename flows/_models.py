"""The models this process diagnoses with: the promoted version in the model store, reloaded when
a newer one is promoted (by the scheduled retraining), else the model shipped with the package.
Nothing is trained here: a cycle never waits for a model."""

from __future__ import annotations

import threading

from flows.runtime import settings
from models import DiagnosisModel, ModelStore, OutcomeStore, active_model

_lock = threading.Lock()
_loaded: tuple[tuple[str, str | None], DiagnosisModel] | None = None


def model_store() -> ModelStore:
    return ModelStore(settings().model_dir)


def outcome_store() -> OutcomeStore:
    return OutcomeStore(settings().outcomes_path)


def current_model() -> DiagnosisModel:
    """The promoted model (the shipped one while none is), loaded once per promotion."""
    global _loaded
    store = model_store()
    with _lock:
        key = (str(store.root), store.current_version())
        if _loaded is None or _loaded[0] != key:
            _loaded = (key, active_model(store)[0])
        return _loaded[1]
