"""A fitted ``HypothesisRanker`` as plain arrays: what ``analyze`` runs, with numpy alone.

scikit-learn is needed to *fit* the ranker; predicting with it means importing scikit-learn (about
a second) on every ``cloud-agent analyze``. The trees of a histogram gradient-boosting model are a
few arrays per tree (feature, threshold, where missing values go, children, leaf values) and the
calibrators are step or logistic functions, so the fitted model is written out as arrays and
evaluated here, all trees of all rows at once. ``CompiledRanker`` gives the same numbers as the
ranker it came from (a test checks it on every fit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_EPSILON = 1e-6


@dataclass(frozen=True)
class _Forest:
    """Every tree of one boosted ensemble in flat arrays (node ids are global)."""

    baseline: float
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's decision value (log-odds) of each row."""
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        active = ~self.leaf[node]
        while active.any():
            current = node[active]
            x = X[np.broadcast_to(rows, node.shape)[active], self.feature[current]]
            go_left = np.where(np.isnan(x), self.missing_left[current], x <= self.threshold[current])
            node[active] = np.where(go_left, self.left[current], self.right[current])
            active = ~self.leaf[node]
        return self.baseline + self.value[node].sum(axis=1)


@dataclass(frozen=True)
class _Calibrator:
    """Isotonic (``kind == "isotonic"``: a step function through ``x``/``y``) or logistic on logits."""

    kind: str
    x: np.ndarray
    y: np.ndarray

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return raw
        if self.kind == "isotonic":
            return np.interp(raw, self.x, self.y)
        return 1.0 / (1.0 + np.exp(-(self.x[0] * _logit(raw) + self.y[0])))


@dataclass(frozen=True)
class CompiledRanker:
    """What ``HypothesisRanker.score_incident`` computes, without scikit-learn."""

    feature_names: tuple[str, ...]
    forests: tuple[_Forest, ...]
    calibrators: tuple[_Calibrator, ...]
    share: _Calibrator | None

    def predict_proba_positive(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        positive = np.zeros(len(X))
        for forest, calibrator in zip(self.forests, self.calibrators, strict=True):
            positive += calibrator.apply(_expit(forest.raw(X)))
        return np.clip(positive / len(self.forests), 0.0, 1.0)

    def score_incident(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(confidence within the incident, the trees' own score)``, as the ranker's own."""
        X = np.asarray(X, dtype=np.float64)
        positive, raw = np.zeros(len(X)), np.zeros(len(X))
        for forest, calibrator in zip(self.forests, self.calibrators, strict=True):
            scores = _expit(forest.raw(X))
            raw += scores
            positive += calibrator.apply(scores)
        positive = np.clip(positive / len(self.forests), 0.0, 1.0)
        raw /= len(self.forests)
        if self.share is None or len(positive) == 0:
            return positive, raw
        share = positive / max(float(positive.sum()), _EPSILON)
        return np.clip(self.share.apply(share), 0.0, 1.0), raw

    # -- storage -----------------------------------------------------------------------------------

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Every array, named under ``prefix``, for ``numpy.savez``."""
        out: dict[str, np.ndarray] = {}
        for i, forest in enumerate(self.forests):
            for name in ("roots", "feature", "threshold", "missing_left", "left", "right", "leaf", "value"):
                out[f"{prefix}.forest{i}.{name}"] = getattr(forest, name)
            out[f"{prefix}.forest{i}.baseline"] = np.array([forest.baseline])
        for i, calibrator in enumerate(self.calibrators):
            out[f"{prefix}.calibrator{i}.x"], out[f"{prefix}.calibrator{i}.y"] = calibrator.x, calibrator.y
        if self.share is not None:
            out[f"{prefix}.share.x"], out[f"{prefix}.share.y"] = self.share.x, self.share.y
        return out

    def header(self) -> dict[str, Any]:
        """What the arrays do not say: names, counts and calibrator kinds (JSON)."""
        return {
            "feature_names": list(self.feature_names),
            "forests": len(self.forests),
            "calibrators": [calibrator.kind for calibrator in self.calibrators],
            "share": self.share is not None,
        }

    @classmethod
    def from_arrays(cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str) -> CompiledRanker:
        forests = tuple(
            _Forest(
                baseline=float(arrays[f"{prefix}.forest{i}.baseline"][0]),
                **{
                    name: arrays[f"{prefix}.forest{i}.{name}"]
                    for name in ("roots", "feature", "threshold", "missing_left", "left", "right", "leaf", "value")
                },
            )
            for i in range(int(header["forests"]))
        )
        calibrators = tuple(
            _Calibrator(kind, arrays[f"{prefix}.calibrator{i}.x"], arrays[f"{prefix}.calibrator{i}.y"])
            for i, kind in enumerate(header["calibrators"])
        )
        share = (
            _Calibrator("isotonic", arrays[f"{prefix}.share.x"], arrays[f"{prefix}.share.y"])
            if header["share"]
            else None
        )
        return cls(tuple(header["feature_names"]), forests, calibrators, share)


def compile_ranker(ranker: Any) -> CompiledRanker:
    """The arrays of a fitted ``HypothesisRanker``."""
    from sklearn.isotonic import IsotonicRegression  # only here: compiling happens where models are fitted

    forests = tuple(_forest(trees) for trees in ranker.estimators_)
    calibrators = []
    for calibrator in ranker.calibrators_:
        if calibrator is None:
            calibrators.append(_Calibrator("none", np.zeros(0), np.zeros(0)))
        elif isinstance(calibrator, IsotonicRegression):
            calibrators.append(_isotonic(calibrator))
        else:
            calibrators.append(
                _Calibrator(
                    "sigmoid", np.array([float(calibrator.coef_[0, 0])]), np.array([float(calibrator.intercept_[0])])
                )
            )
    share = _isotonic(ranker.share_calibrator_) if ranker.share_calibrator_ is not None else None
    return CompiledRanker(tuple(str(name) for name in ranker.feature_names), forests, tuple(calibrators), share)


def _isotonic(calibrator: Any) -> _Calibrator:
    # ``out_of_bounds="clip"`` is what np.interp does beyond the end points.
    return _Calibrator(
        "isotonic", np.asarray(calibrator.X_thresholds_, float), np.asarray(calibrator.y_thresholds_, float)
    )


def _forest(trees: Any) -> _Forest:
    if trees.n_trees_per_iteration_ != 1:
        raise ValueError("only binary rankers compile")
    parts = [predictors[0].nodes for predictors in trees._predictors]
    if any(part["is_categorical"].any() for part in parts):
        raise ValueError("categorical splits do not compile")
    offsets = np.cumsum([0] + [len(part) for part in parts[:-1]])
    nodes = np.concatenate(parts)
    shift = np.repeat(offsets, [len(part) for part in parts])
    return _Forest(
        baseline=float(np.ravel(trees._baseline_prediction)[0]),
        roots=offsets.astype(np.int64),
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        left=(nodes["left"] + shift).astype(np.int64),
        right=(nodes["right"] + shift).astype(np.int64),
        leaf=nodes["is_leaf"].astype(bool),
        value=nodes["value"].astype(np.float64),
    )


def _expit(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-raw))


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, _EPSILON, 1 - _EPSILON)
    return np.log(clipped / (1 - clipped))
