"""The peers' statistics as the ranker's evidence: each one measures what its paper says."""

import numpy as np
import pandas as pd

from models import Telemetry
from models.signals import deviations, metric_frame
from models.signals._frame import spans_magnitudes
from models.signals._scores import column_scores


def _chain(shift_on: str, n: int = 500, change: int = 400, seed: int = 0) -> pd.DataFrame:
    """A linear chain c -> b -> a (a calls b, b calls c); the fault shifts one of them."""
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 1, n)
    b = 0.9 * c + rng.normal(0, 0.3, n)
    if shift_on == "b":
        b[change:] += 5
    if shift_on == "c":
        c[change:] += 5
        b = 0.9 * c + rng.normal(0, 0.3, n)
    a = 0.9 * b + rng.normal(0, 0.3, n)
    return pd.DataFrame({"time": 1_700_000_000.0 + np.arange(n), "a_value": a, "b_value": b, "c_value": c})


def _scores(frame: pd.DataFrame, callees: dict[int, list[int]] | None):
    metrics = metric_frame(Telemetry(metrics=frame), ["a", "b", "c"])
    return metrics, column_scores(metrics, deviations(metrics, 1_700_000_000.0 + 400), callees)


def test_the_residual_blames_the_component_its_callees_do_not_explain() -> None:
    metrics, scores = _scores(_chain("b"), callees=None)
    index = {name: metrics.services.index(name) for name in "abc"}
    callees = {index["a"]: [index["b"]], index["b"]: [index["c"]], index["c"]: []}
    metrics, scores = _scores(_chain("b"), callees)
    by_service = {metrics.services[metrics.service_of[j]]: scores.residual[j] for j in range(3)}
    # a moved as much as b, but b explains it: the residual points at b; the raw deviations do not tell.
    assert by_service["b"] > 5 * by_service["a"]
    assert by_service["b"] > 5 * by_service["c"]
    assert scores.baro[metrics.columns.index("a_value")] > scores.baro[metrics.columns.index("c_value")]


def test_without_a_graph_the_blanket_residual_still_points_near_the_cause() -> None:
    metrics, scores = _scores(_chain("c"), callees=None)
    assert np.isnan(scores.residual).all()
    # c's shift leaves b and a explained by their parents: in the blanket residual c (and its
    # parents, none here) stand out.
    assert metrics.columns[int(np.argmax(scores.blanket))] == "c_value"
    assert (scores.nsigma >= 0).all() and (scores.baro >= 0).all()


def _compounding_chain(n: int = 500, change: int = 400, seed: int = 0) -> pd.DataFrame:
    """c -> b -> a where each is the square of its cause plus noise (PyRCA's ``square`` SCM): b and
    a span orders of magnitude, and on the linear scale a moves five times as many spreads as c."""
    rng = np.random.default_rng(seed)
    c = rng.laplace(0, 1, n)
    c[change:] += 4
    b = c**2 + rng.laplace(0, 0.1, n)
    a = b**2 + rng.laplace(0, 0.1, n)
    return pd.DataFrame({"time": 1_700_000_000.0 + np.arange(n), "a_value": a, "b_value": b, "c_value": c})


def test_a_metric_that_spans_magnitudes_is_read_on_a_log_scale() -> None:
    rng = np.random.default_rng(1)
    spiky = rng.normal(80, 5, 400)
    spiky[::40] = 2000.0  # a latency with a few spikes: its body does not span magnitudes
    sparse = np.where(rng.random(400) < 0.05, rng.integers(1, 50, 400), 0).astype(float)
    normal = np.column_stack([rng.normal(50, 5, 400), rng.laplace(0, 1, 400) ** 4, np.zeros(400), spiky, sparse])
    assert spans_magnitudes(normal).tolist() == [False, True, False, False, False]
    metrics = metric_frame(Telemetry(metrics=_compounding_chain()), ["a", "b", "c"])
    peak = np.abs(deviations(metrics, 1_700_000_000.0 + 400).peak)
    by_service = {metrics.services[metrics.service_of[j]]: peak[j] for j in range(3)}
    # Read linearly a's deviation is five times c's (19.5 and 4.0); read as magnitudes they are alike.
    assert by_service["a"] < 3 * by_service["c"]


def test_the_blanket_finds_the_cause_of_a_compounding_chain() -> None:
    metrics, scores = _scores(_compounding_chain(), callees=None)
    assert metrics.columns[int(np.argmax(scores.blanket))] == "c_value"


def test_with_more_columns_than_normal_samples_the_blanket_is_the_same_statistic() -> None:
    # 300 columns, 99 normal samples: the precision comes from the 99 x 99 Gram matrix (Woodbury);
    # it must equal the one of the shrunk 300 x 300 covariance inverted as is.
    from models.signals._scores import _blanket_residual

    rng = np.random.default_rng(4)
    values = rng.normal(size=(160, 300))
    values[:, 1] = 0.8 * values[:, 0] + 0.2 * rng.normal(size=160)
    values[100:, 7] += 4.0
    residual, explained = _blanket_residual(values, 100)
    normal = values[:99]
    centred = normal - normal.mean(axis=0)
    k, p = centred.shape
    covariance = centred.T @ centred / k
    target = np.trace(covariance) / p
    distance = ((covariance - target * np.eye(p)) ** 2).sum()
    spread = (np.einsum("ti,ti->t", centred, centred) ** 2).sum() / k**2 - (covariance**2).sum() / k
    shrinkage = min(1.0, max(spread, 0.0) / distance)
    shrunk = (1 - shrinkage) * covariance + shrinkage * target * np.eye(p)
    precision = np.linalg.inv(shrunk)
    expected = np.abs(((values[100:] - normal.mean(axis=0)) @ precision).mean(axis=0) / np.sqrt(np.diag(precision)))
    np.testing.assert_allclose(residual, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(explained, 1 - 1 / np.maximum(np.diag(precision) * np.diag(shrunk), 1), atol=1e-10)
    assert int(np.argmax(residual)) == 7
