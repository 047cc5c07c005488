"""The hypothesis ranker: a calibrated scikit-learn classifier over candidate evidence features.

Each row is one candidate (component, fault) of one incident; the label says whether it was the
root cause. Gradient-boosted trees score the rows; the scores are calibrated on incidents the
trees did not see (cross-fitting by incident, isotonic or sigmoid), so that a confidence of 0.8
is right about 80 % of the time. Most candidates of an incident are obviously innocent, so only
a share of the negatives is used to grow the trees; calibration sees every row.

How often the top answer is right differs between systems in ways no feature of one incident
shows (on PyRCA's linear SCMs a model trained on the other generators is right 97 % of the time at
a confidence of 0.45; on the queueing model, half the time at 0.59). Confidences calibrated on
other generators only carry over so far; with ``calibrate_on`` the calibration leans on the rows of
one domain, the user's own confirmed incidents, the more of them there are.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.utils import Tags, check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

_EPSILON = 1e-6
#: Below this many rows prediction runs on one thread.
_THREADED_ROWS = 20_000
#: The incidents of the served system (``calibrate_on``) are cross-fitted in this many folds.
_OWN_FOLDS = 3


class HypothesisRanker(ClassifierMixin, BaseEstimator):
    """Probability that a candidate (component, fault) is the root cause of its incident.

    Args:
        max_iter: boosting iterations per tree ensemble.
        learning_rate: boosting learning rate.
        max_leaf_nodes: leaves per tree.
        min_samples_leaf: rows per leaf at least.
        l2_regularization: L2 penalty on leaf values.
        negative_rate: share of negative rows used to grow the trees (all positives are kept).
        calibration: ``"isotonic"`` or ``"sigmoid"`` (Platt scaling).
        cv: folds of the cross-fitting; each fold's trees are calibrated on the rows they did
            not see and ``predict_proba`` averages the calibrated folds.
        random_state: seed of the fold split, the negative sampling and the trees.
        monotonic: ``{feature name: +1 or -1}``: the probability may only rise (fall) with that
            feature. Where the evidence has a direction everywhere (a larger anomaly score, a better
            rank), saying so keeps a model from learning one generator's accidents.
        calibrate_on: with ``domains``, the domain whose rows the calibration is fitted to
            (``"real"``: confirmed outcomes of the system the model serves). Every other row
            together weighs as much as ``calibration_prior`` of its incidents: with none of them
            the calibration is the pooled one, with many it is that system's own.
        calibration_prior: see ``calibrate_on`` (incidents, as ``groups`` counts them).
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        negative_rate: float = 0.35,
        calibration: Literal["isotonic", "sigmoid"] = "isotonic",
        cv: int = 2,
        random_state: int | np.random.RandomState | None = None,
        monotonic: dict[str, int] | None = None,
        calibrate_on: str | None = None,
        calibration_prior: float = 5.0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.negative_rate = negative_rate
        self.calibration = calibration
        self.cv = cv
        self.random_state = random_state
        self.monotonic = monotonic
        self.calibrate_on = calibrate_on
        self.calibration_prior = calibration_prior

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags

    def fit(
        self, X: Any, y: Any, groups: Any = None, domains: Any = None, sample_weight: Any = None
    ) -> HypothesisRanker:
        """Fit on candidate rows.

        Args:
            X: features, one row per candidate (NaN for unknown evidence).
            y: 1 for the root cause, 0 otherwise (any two labels work).
            groups: incident of each row; folds never split an incident.
            domains: where each row comes from (the generator family). With two or more, the
                cross-fitting leaves one domain out per fold, so the confidences are calibrated
                on a domain the trees never saw, as they will be used.
            sample_weight: how much each row counts, for the trees and the calibration.

        Returns:
            self
        """
        if self.calibration not in ("isotonic", "sigmoid"):
            raise ValueError(f"calibration must be 'isotonic' or 'sigmoid', not {self.calibration!r}")
        if not 0 < self.negative_rate <= 1:
            raise ValueError(f"negative_rate must be in (0, 1], not {self.negative_rate!r}")
        if self.calibration_prior < 0:
            raise ValueError(f"calibration_prior must be at least 0, not {self.calibration_prior!r}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {y_type}.")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"HypothesisRanker needs samples of 2 classes; got 1 class ({self.classes_[0]!r})")
        target = (y == self.classes_[1]).astype(int)
        weight = _sample_weight(sample_weight, len(target))
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        domain_folds = self._domain_folds(domains, groups) if domains is not None else []
        self.calibrated_on_ = 0
        # One OpenMP thread per fit: on a shared machine spinning workers cost more than they win.
        with threadpool_limits(limits=1, user_api="openmp"):
            if domain_folds:
                calibration = self._calibration_weights(np.asarray(domains), groups, weight)
                self._fit_across_domains(X, target, groups, domain_folds, rng, seed, weight, calibration)
            else:
                self._fit_folds(X, target, groups, self._folds(X, target, groups, seed), rng, seed, weight)
        self.n_iter_ = max(trees.n_iter_ for trees in self.estimators_)
        return self

    def _fit_folds(self, X, target, groups, folds, rng, seed, weight) -> None:
        self.estimators_: list[HistGradientBoostingClassifier] = []
        self.calibrators_: list[IsotonicRegression | LogisticRegression | None] = []
        self.share_calibrator_: IsotonicRegression | None = None
        out_of_fold = np.full(len(target), np.nan)
        if not folds:
            # Too few rows of a class to cross-fit: trees on everything, no calibration.
            self.estimators_.append(self._grow(X, target, np.arange(len(target)), rng, seed, weight))
            self.calibrators_.append(None)
        else:
            for train, held_out in folds:
                trees = self._grow(X, target, train, rng, seed, weight)
                raw = trees.predict_proba(X[held_out])[:, 1]
                calibrator = self._calibrate(raw, target[held_out], None if weight is None else weight[held_out])
                self.estimators_.append(trees)
                self.calibrators_.append(calibrator)
                out_of_fold[held_out] = _apply(calibrator, raw)
            if groups is not None:
                # Within an incident exactly one candidate is the cause: calibrate each row's
                # share of its incident's probability mass too, on rows the trees did not see.
                share = _shares(out_of_fold, np.asarray(groups))
                self.share_calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                    share, target, sample_weight=weight
                )

    def _fit_across_domains(self, X, target, groups, folds, rng, seed, weight, calibration) -> None:
        """One ensemble of trees on every row, calibrated on what trees grown without a domain
        said about that domain: the confidences a model will have on a system it never saw."""
        out_of_domain = np.full(len(target), np.nan)
        for train, held_out in folds:
            trees = self._grow(X, target, train, rng, seed, weight)
            out_of_domain[held_out] = trees.predict_proba(X[held_out])[:, 1]
        calibrator = self._calibrate(out_of_domain, target, calibration)
        self.estimators_ = [self._grow(X, target, np.arange(len(target)), rng, seed, weight)]
        self.calibrators_ = [calibrator]
        self.share_calibrator_ = None
        if groups is not None:
            share = _shares(_apply(calibrator, out_of_domain), np.asarray(groups))
            self.share_calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                share, target, sample_weight=calibration
            )

    def _calibration_weights(self, domains: np.ndarray, groups: Any, weight: np.ndarray | None) -> np.ndarray | None:
        """Row weights of the calibration: ``weight``, unless ``calibrate_on`` has incidents; then
        every other domain together weighs ``calibration_prior`` of them.

        Also sets ``calibrated_on_``: how many incidents of ``calibrate_on`` the calibration leans on.
        """
        own = domains == self.calibrate_on
        if self.calibrate_on is None or groups is None or not own.any() or own.all():
            return weight
        incidents = len(np.unique(np.asarray(groups)[own]))
        self.calibrated_on_ = incidents
        calibration = np.ones(len(domains)) if weight is None else weight.copy()
        others = calibration[~own].sum()
        if others > 0:
            calibration[~own] *= self.calibration_prior * (calibration[own].sum() / incidents) / others
        return calibration

    def _domain_folds(self, domains: Any, groups: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """Leave one domain out per fold. The incidents of ``calibrate_on`` are held out a third
        at a time instead: the trees that will serve that system learn from its other incidents,
        and its confidences must be calibrated on what such trees say."""
        labels = np.asarray(domains)
        names = np.unique(labels)
        if len(names) < 2:
            return []
        folds = []
        for name in names:
            held = np.flatnonzero(labels == name)
            parts = [held]
            if name == self.calibrate_on and groups is not None:
                own_groups = np.asarray(groups)[held]
                n_splits = min(_OWN_FOLDS, len(np.unique(own_groups)))
                if n_splits >= 2:
                    parts = [held[part] for _, part in GroupKFold(n_splits=n_splits).split(held, groups=own_groups)]
            for part in parts:
                train = np.ones(len(labels), dtype=bool)
                train[part] = False
                folds.append((np.flatnonzero(train), part))
        return folds

    def _folds(self, X, target, groups, seed):
        n_splits = max(2, int(self.cv))
        if groups is not None:
            groups = np.asarray(groups)
            if len(np.unique(groups)) >= n_splits and target.sum() >= n_splits:
                # GroupKFold does not shuffle; permuting the group labels does.
                uniques, codes = np.unique(groups, return_inverse=True)
                shuffled = np.random.RandomState(seed).permutation(len(uniques))[codes]
                return list(GroupKFold(n_splits=n_splits).split(X, target, shuffled))
        if np.bincount(target, minlength=2).min() < n_splits:
            return []
        return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, target))

    def _grow(self, X, target, rows, rng, seed, weight):
        negatives = rows[target[rows] == 0]
        positives = rows[target[rows] == 1]
        if self.negative_rate < 1 and len(negatives):
            keep = max(round(self.negative_rate * len(negatives)), min(len(negatives), 1))
            negatives = rng.choice(negatives, size=keep, replace=False)
        chosen = np.sort(np.concatenate([positives, negatives]))
        row_weight = None if weight is None else weight[chosen]
        if row_weight is not None and np.array_equal(row_weight, np.round(row_weight)):
            # A whole weight repeats the row: leaf sizes (``min_samples_leaf``) count it as often,
            # as they would count the incident seen that many times.
            chosen, row_weight = np.repeat(chosen, row_weight.astype(int)), None
        rows = X[chosen]
        # A feature no chosen row has (no generator in the training set gives logs, say) cannot be
        # binned: a constant in its place leaves it unused, and missing values at prediction as before.
        unseen = np.isnan(rows).all(axis=0)
        if unseen.any():
            rows = rows.copy()
            rows[:, unseen] = 0.0
        constraints = None
        if self.monotonic:
            names = list(getattr(self, "feature_names_in_", []))
            constraints = [int(self.monotonic.get(name, 0)) for name in names] if names else None
        trees = HistGradientBoostingClassifier(
            monotonic_cst=constraints,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=seed,
        )
        return clone(trees).fit(rows, target[chosen], sample_weight=row_weight)

    def _calibrate(
        self, raw: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
    ) -> IsotonicRegression | LogisticRegression:
        if self.calibration == "isotonic" or len(np.unique(target)) < 2:
            return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                raw, target, sample_weight=weights
            )
        return LogisticRegression(C=1e4).fit(_logit(raw)[:, None], target, sample_weight=weights)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the features it was fitted on, in their order."""
        check_is_fitted(self)
        return tuple(str(name) for name in getattr(self, "feature_names_in_", ()))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        positive = np.zeros(len(X))
        # One incident is a few hundred rows: threads cost more than they save, and on a busy
        # machine OpenMP's spinning workers make a 5 ms prediction take half a second.
        with threadpool_limits(limits=1, user_api="openmp") if len(X) < _THREADED_ROWS else nullcontext():
            for trees, calibrator in zip(self.estimators_, self.calibrators_, strict=True):
                positive += _apply(calibrator, trees.predict_proba(X)[:, 1])
        positive = np.clip(positive / len(self.estimators_), 0.0, 1.0)
        return np.column_stack([1.0 - positive, positive])

    def predict_incident(self, X: Any) -> np.ndarray:
        """Confidence of each candidate of *one* incident (rows of ``X``) being its root cause.

        When the ranker was fitted with ``groups``, a row's share of the incident's probability
        mass is calibrated too (the top candidate is then neither over- nor under-confident);
        otherwise this is ``predict_proba(X)[:, 1]``.
        """
        return self.score_incident(X)[0]

    def score_incident(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(predict_incident(X), the trees' own score)`` in one pass over the trees.

        The second is the mean uncalibrated probability: calibration is a step function that
        ties rows the trees tell apart, so it orders the rows a calibrated confidence ties.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        positive, raw = np.zeros(len(X)), np.zeros(len(X))
        with threadpool_limits(limits=1, user_api="openmp") if len(X) < _THREADED_ROWS else nullcontext():
            for trees, calibrator in zip(self.estimators_, self.calibrators_, strict=True):
                scores = trees.predict_proba(X)[:, 1]
                raw += scores
                positive += _apply(calibrator, scores)
        positive = np.clip(positive / len(self.estimators_), 0.0, 1.0)
        raw /= len(self.estimators_)
        if self.share_calibrator_ is None or len(positive) == 0:
            return positive, raw
        share = _shares(positive, np.zeros(len(positive), dtype=int))
        return np.clip(self.share_calibrator_.predict(share), 0.0, 1.0), raw

    def predict(self, X: Any) -> np.ndarray:
        """The more probable label of each row."""
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] > 0.5).astype(int)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the calibrated probability of the positive class (> 0 means positive)."""
        return _logit(self.predict_proba(X)[:, 1])


def _sample_weight(sample_weight: Any, n_rows: int) -> np.ndarray | None:
    """``sample_weight`` checked (``None``: every row counts once)."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float64)
    if weight.shape != (n_rows,):
        raise ValueError(f"sample_weight must hold one weight per row ({n_rows}), not shape {weight.shape}")
    if not np.isfinite(weight).all() or (weight < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    if not weight.any():
        raise ValueError("sample_weight is zero for every row: nothing to fit")
    return weight


def _apply(calibrator: IsotonicRegression | LogisticRegression | None, raw: np.ndarray) -> np.ndarray:
    if calibrator is None:
        return raw
    if isinstance(calibrator, IsotonicRegression):
        return calibrator.predict(raw)
    return calibrator.predict_proba(_logit(raw)[:, None])[:, 1]


def _shares(positive: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row's probability divided by the sum over its group."""
    _, codes = np.unique(groups, return_inverse=True)
    totals = np.bincount(codes, weights=positive)
    return positive / np.maximum(totals[codes], _EPSILON)


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, _EPSILON, 1 - _EPSILON)
    return np.log(clipped / (1 - clipped))
