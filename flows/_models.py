"""The ranker this process uses: the promoted version in the model store, reloaded when a newer
one is promoted (by the scheduled retraining), trained from the simulator on first use."""

from __future__ import annotations

import threading

from flows._runtime import settings
from models import HypothesisRanker, ModelStore, OutcomeStore, default_ranker

_lock = threading.Lock()
_loaded: tuple[tuple[str, str | None], HypothesisRanker] | None = None


def model_store() -> ModelStore:
    return ModelStore(settings().model_dir)


def outcome_store() -> OutcomeStore:
    return OutcomeStore(settings().outcomes_path)


def current_ranker() -> tuple[HypothesisRanker, str | None]:
    """The promoted ranker and its version."""
    global _loaded
    store = model_store()
    with _lock:
        key = (str(store.root), store.current_version())
        if _loaded is None or _loaded[0] != key:
            ranker = default_ranker(store)  # trains and saves version 1 when the store is empty
            _loaded = ((str(store.root), store.current_version()), ranker)
        return _loaded[1], _loaded[0][1]
