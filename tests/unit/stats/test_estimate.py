"""Quality estimated from scores alone (CBPE), against independent computations: scipy's
isotonic regression, the analytical expectation of each metric given calibrated
probabilities, and simulated labels for AUC and the band's coverage."""

import numpy as np
import pytest
from scipy.optimize import isotonic_regression
from scipy.stats import rankdata

from exporter.stats.estimate import calibration_map, estimate_binary, isotonic

THRESHOLD = 0.5


def test_isotonic_equals_scipy():
    rng = np.random.default_rng(0)
    rate = np.sort(rng.random(200)) + rng.normal(0, 0.15, 200)
    weight = rng.integers(1, 50, 200).astype(float)
    want = isotonic_regression(rate, weights=weight).x
    assert isotonic(rate, weight) == pytest.approx(want, abs=1e-12)
    # Bins without reference rows take the value before them (the first: the one after).
    weight[[0, 1, 57]] = 0
    got = isotonic(rate, weight)
    assert got[0] == got[1] == got[2] and got[57] == got[56]


def bins_of(p: np.ndarray, edges: np.ndarray):
    """Counts, mean score per bin, bin index — as the exporter's prediction window keeps."""
    idx = np.searchsorted(edges, p, side="right")
    k = len(edges) + 1
    counts = np.bincount(idx, minlength=k)
    sums = np.bincount(idx, weights=p, minlength=k)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), 0.5)
    return counts, mean, idx


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    ranks = rankdata(scores)
    n1 = y.sum()
    n0 = len(y) - n1
    return (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


@pytest.fixture(scope="module")
def setting():
    """A reference with known calibrated probabilities (score = P(y=1)), its 100 quantile
    bins, and a shifted window (more low scores: quality drops) to estimate."""
    rng = np.random.default_rng(1)
    ref_p = rng.beta(2, 3, 200_000)
    edges = np.quantile(ref_p, np.linspace(0, 1, 101)[1:-1])
    counts, _, idx = bins_of(ref_p, edges)
    positives = np.bincount(idx, weights=rng.random(len(ref_p)) < ref_p, minlength=len(counts))
    calibrated = calibration_map(counts, positives)
    window_p = rng.beta(1.5, 3.5, 20_000)
    return rng, edges, calibrated, window_p


def test_estimate_equals_the_expectation_of_each_metric(setting):
    rng, edges, calibrated, p = setting
    counts, mean, _ = bins_of(p, edges)
    got = estimate_binary(counts, mean, calibrated, THRESHOLD)
    pred = p >= THRESHOLD
    tp, fp = p[pred].sum(), (1 - p[pred]).sum()
    fn, tn = p[~pred].sum(), (1 - p[~pred]).sum()
    expected = {
        "accuracy": (tp + tn) / len(p),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }
    # AUC's expectation has no closed form: the mean over simulated label draws.
    draws = [auc(p, rng.random(len(p)) < p) for _ in range(100)]
    expected["auc"] = float(np.mean(draws))
    # Tolerance: 100 bins (a bin's calibrated value is its mean probability, the threshold
    # falls inside one bin) and the calibration learned from 200k sampled labels.
    for metric, want in expected.items():
        assert got[metric][0] == pytest.approx(want, abs=0.005), metric


def test_the_band_holds_the_realized_value_95_percent_of_the_time(setting):
    rng, edges, calibrated, p = setting
    counts, mean, _ = bins_of(p[:3000], edges)
    got = estimate_binary(counts, mean, calibrated, THRESHOLD)
    pred = p[:3000] >= THRESHOLD
    inside = {m: 0 for m in got}
    trials = 400
    for _ in range(trials):
        y = rng.random(3000) < p[:3000]
        tp, fp, fn = (y & pred).sum(), (~y & pred).sum(), (y & ~pred).sum()
        realized = {
            "accuracy": (y == pred).mean(),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "auc": auc(p[:3000], y),
        }
        for m, (value, half) in got.items():
            inside[m] += abs(realized[m] - value) <= half
    for m, k in inside.items():
        # 95 % nominal; 400 trials give ±2.2 % (2 s.d.), plus the bins' and delta method's
        # approximations.
        assert 0.90 <= k / trials <= 0.99, (m, k / trials)


def test_merged_histograms_estimate_as_the_union(setting):
    _, edges, calibrated, p = setting
    a, b = p[:7000], p[7000:]
    ca, sa = (
        bins_of(a, edges)[0],
        np.bincount(np.searchsorted(edges, a, "right"), a, len(edges) + 1),
    )
    cb, sb = (
        bins_of(b, edges)[0],
        np.bincount(np.searchsorted(edges, b, "right"), b, len(edges) + 1),
    )
    merged = ca + cb
    mean = np.where(merged > 0, (sa + sb) / np.maximum(merged, 1), 0.5)
    whole, whole_mean, _ = bins_of(p, edges)
    got = estimate_binary(merged, mean, calibrated, THRESHOLD)
    want = estimate_binary(whole, whole_mean, calibrated, THRESHOLD)
    for m in want:
        assert got[m] == pytest.approx(want[m], abs=1e-12)
