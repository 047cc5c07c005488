"""Statistical anomaly scores of every metric column: the peers' methods as evidence for the ranker.

Four views of "how abnormal is this column after the change point", each known from the RCA
literature and each failing differently, so that a learned ranker can weigh them and fall back on
them where other evidence is thin:

* ``baro``: the largest deviation after the change in units of the normal period's inter-quartile
  range (BARO, Pham et al., FSE 2024: robust scaling, max of the abnormal period).
* ``nsigma``: the same in standard deviations (the N-sigma rule, RCAEval's ``nsigma``).
* ``residual``: what is left of the column once the columns of the components it *calls* explain
  it, a regression fitted on the normal period (hypothesis testing on a causal graph, as in PyRCA's
  HT and CIRCA, Li et al., KDD 2022). A caller slowed by its callee is explained; the root cause is
  not. Two regressions (linear, and linear plus squares) are fitted and the smaller residual kept,
  so a linear dependency is not blamed on a quadratic fit's extrapolation, nor the other way round.
* ``blanket``: the same without a graph, given *all* other columns (the Markov blanket): with the
  normal period's precision matrix Θ, column j's residual is ``(Θ z)_j / Θ_jj``. Under a shift of
  one component's own mechanism only it and its causal parents move in this residual.

The two regressions (``residual`` and ``blanket``) are also fitted on the values' signed logarithm,
and each column keeps the scale on which its normal period is explained better. Metrics that
compound (a queue's wait on a queue's length, a retry storm's load on the errors that trigger it)
span orders of magnitude, and what is a product or a power of its causes is a sum of them on a log
scale; a linear fit of such a column extrapolates wildly past the normal period and blames it for
its causes' move. The scale is chosen on the normal period alone, so nothing of the incident decides it.

Each is a non-negative number per column; NaN where it cannot be computed (no normal period).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.signals._frame import Deviations, MetricFrame, robust_center_scale

#: Ridge penalty of the residual regressions, per normal sample (standardised inputs).
RIDGE = 0.05
#: At most this many callee columns explain one column (the most correlated in the normal period).
MAX_PARENTS = 24
_FLOOR = 1e-9


@dataclass(frozen=True)
class ColumnScores:
    """Per metric column (aligned with ``MetricFrame.columns``)."""

    baro: np.ndarray
    nsigma: np.ndarray
    #: NaN for a column without a graph (no topology and no traces).
    residual: np.ndarray
    blanket: np.ndarray


def column_scores(frame: MetricFrame, found: Deviations, callees: dict[int, list[int]] | None) -> ColumnScores:
    """Scores of every column around ``found.change_point``.

    Args:
        frame: the metrics.
        found: the deviations at the change point (its split between normal and abnormal).
        callees: per component (position in ``frame.services``), the components it calls;
            ``None`` when the call graph is unknown.
    """
    split = found.split
    normal = frame.filled[: max(split - 1, 2)]
    after = frame.filled[split:] if split < len(frame.filled) else frame.filled[-1:]
    median, scale = robust_center_scale(normal)
    baro = np.max(np.abs(after - median) / scale, axis=0)
    standard = _standardise(frame.filled, split)
    nsigma = np.max(np.abs(standard[split:] if split < len(standard) else standard[-1:]), axis=0)
    logged = _standardise(frame.logged, split)
    if callees is None:
        residual = np.full(frame.n_columns, np.nan)
    else:
        residual = _better_fit(
            _graph_residual(frame, standard, split, callees), _graph_residual(frame, logged, split, callees)
        )
    blanket = _better_fit(_blanket_residual(standard, split), _blanket_residual(logged, split))
    return ColumnScores(baro=baro, nsigma=nsigma, residual=residual, blanket=blanket)


def _standardise(values: np.ndarray, split: int) -> np.ndarray:
    normal = values[: max(split - 1, 2)]
    mean = normal.mean(axis=0)
    return (values - mean) / np.maximum(normal.std(axis=0), np.maximum(1e-3, 0.02 * np.abs(mean)))


def _better_fit(linear: tuple[np.ndarray, np.ndarray], logged: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per column, the residual of the scale whose regression explains more of its normal period."""
    (linear_residual, linear_explained), (log_residual, log_explained) = linear, logged
    return np.where(log_explained > linear_explained, log_residual, linear_residual)


def _graph_residual(
    frame: MetricFrame, standard: np.ndarray, split: int, callees: dict[int, list[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """``(residual after the change, share of the normal period explained)`` of every column."""
    normal_end = max(split - 1, 2)
    result = np.full(standard.shape[1], np.nan)
    explained = np.zeros(standard.shape[1])
    columns_of = [np.flatnonzero(frame.service_of == s) for s in range(len(frame.services))]
    for service, own in enumerate(columns_of):
        if not len(own):
            continue
        parents = np.concatenate(
            [columns_of[c] for c in callees.get(service, []) if c < len(columns_of)] or [np.zeros(0, dtype=int)]
        )
        own_z = standard[:, own]
        if not len(parents):
            # Nothing upstream explains it: its residual is its own deviation.
            result[own] = np.abs(own_z[split:].mean(axis=0))
            continue
        if len(parents) > MAX_PARENTS:
            parents = _most_correlated(standard[:normal_end], own, parents)
        inputs = standard[:, parents]
        linear, linear_explained = _ridge_residual(own_z, inputs, normal_end)
        quadratic, quadratic_explained = _ridge_residual(own_z, np.hstack([inputs, inputs**2]), normal_end)
        result[own] = np.minimum(np.abs(linear[split:].mean(axis=0)), np.abs(quadratic[split:].mean(axis=0)))
        explained[own] = np.maximum(linear_explained, quadratic_explained)
    return result, explained


def _most_correlated(normal: np.ndarray, own: np.ndarray, parents: np.ndarray) -> np.ndarray:
    centred = normal - normal.mean(axis=0)
    norms = np.maximum(np.linalg.norm(centred, axis=0), _FLOOR)
    correlation = np.abs(centred[:, own].T @ centred[:, parents]) / np.outer(norms[own], norms[parents])
    return parents[np.argsort(-correlation.max(axis=0))[:MAX_PARENTS]]


def _ridge_residual(targets: np.ndarray, inputs: np.ndarray, normal_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Residuals of ridge regressions of ``targets`` on ``inputs`` fitted on the normal samples,
    in units of each residual's normal spread, and the share of each target's normal variance the
    regression explains."""
    centre = inputs[:normal_end].mean(axis=0)
    spread = np.maximum(inputs[:normal_end].std(axis=0), _FLOOR)
    design = (inputs - centre) / spread
    fit = design[:normal_end]
    gram = fit.T @ fit + RIDGE * normal_end * np.eye(design.shape[1])
    target_centre = targets[:normal_end].mean(axis=0)
    beta = np.linalg.solve(gram, fit.T @ (targets[:normal_end] - target_centre))
    residual = targets - target_centre - design @ beta
    residual_spread = np.maximum(residual[:normal_end].std(axis=0), 1e-6)
    explained = 1.0 - residual_spread**2 / np.maximum(targets[:normal_end].var(axis=0), 1e-12)
    return residual / residual_spread, explained


def _blanket_residual(standard: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray]:
    """``(residual after the change, share of the normal period explained)`` of every column."""
    normal_end = max(split - 1, 2)
    normal = standard[:normal_end]
    k, p = normal.shape
    mean = normal.mean(axis=0)
    centred = normal - mean
    # The normal period's X'X (p x p) or, with more columns than samples, its Gram matrix XX'
    # (k x k): both have the same norm, and the precision follows from either (Woodbury below), so a
    # frame of thousands of columns never inverts a p x p matrix.
    product = centred.T @ centred if p <= k else centred @ centred.T
    # Ledoit-Wolf shrinkage of C = X'X / k towards the scaled identity (Ledoit & Wolf, 2004): with
    # hundreds of columns and a few hundred normal samples C cannot be inverted as is.
    row_squares = np.einsum("ti,ti->t", centred, centred)
    trace = float(row_squares.sum()) / k
    target = trace / p
    frobenius = float((product**2).sum()) / k**2
    distance = frobenius - 2 * target * trace + target**2 * p
    spread = float((row_squares**2).sum()) / k**2 - frobenius / k
    shrinkage = min(1.0, max(spread, 0.0) / distance) if distance > 0 else 1.0
    # The shrunk covariance is weight * X'X + ridge * I. The floor keeps it invertible when every
    # column was flat through the normal period (a step from constants): C is then rounding errors.
    weight = (1 - shrinkage) / k
    ridge = max(shrinkage * max(target, 1e-6), 1e-6)
    change = standard[split:].mean(axis=0) - mean if split < len(standard) else np.zeros(p)
    if p <= k:
        precision = np.linalg.inv(weight * product + ridge * np.eye(p))
        diagonal, moved = np.diag(precision), change @ precision
    else:
        # (ridge I + w X'X)^-1 = (I - w X' (ridge I + w XX')^-1 X) / ridge
        inner = ridge * np.eye(k) + weight * product
        diagonal = (1.0 - weight * (centred * np.linalg.solve(inner, centred)).sum(axis=0)) / ridge
        moved = (change - weight * (np.linalg.solve(inner, centred @ change) @ centred)) / ridge
    # Θ_jj is the inverse of column j's variance left unexplained by all the others.
    explained = 1.0 - 1.0 / np.maximum(diagonal * (weight * (centred**2).sum(axis=0) + ridge), 1.0)
    return np.abs(moved / np.sqrt(diagonal)), explained
