"""Model quality before the labels arrive: confidence-based performance estimation (CBPE,
as NannyML calls it) from a histogram of prediction scores. Pure functions.

With calibrated scores — P(y = 1 | score) known for every score — each prediction is a
fraction of a true positive and a fraction of a false one, and the expected confusion matrix
of a window is a sum over its scores. Over score bins: a bin of ``n`` predictions whose
calibrated probability is ``c`` holds ``n·c`` expected positives and ``n·(1 − c)`` negatives.
So a window's score histogram (mergeable: counts add across time buckets and exporters) is
all an estimate needs, beside a calibration map learned once from the reference.

Calibration: isotonic over the reference's score bins (pool-adjacent-violators on each bin's
positive rate, weighted by its count). Why isotonic: it assumes only that a higher score
never means a lower chance of the positive class, it has no parameter to tune (Platt's
sigmoid assumes a shape), and on bins it is exact and fast (one pass). Bins with no
reference rows take their neighbours' value.

Uncertainty: given the scores, labels are independent Bernoulli(c) draws, so a realized
metric scatters around its estimate; the half-width returned is 1.96 standard deviations of
that scatter (accuracy and precision exactly; recall and F1 by the delta method; ROC AUC by
Hanley & McNeil's formula at the expected class counts). It is the band within which the
realized value should fall if the estimate's assumptions hold (docs/statistics.md).
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("accuracy", "precision", "recall", "f1", "auc")
Z95 = 1.959963984540054


def isotonic(rate: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The non-decreasing fit of ``rate`` minimising the weighted squared error (PAVA).
    Entries of zero weight take the fitted value of the nearest weighted entry before them
    (or after, at the start)."""
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for r, w in zip(rate, weight, strict=True):
        if w <= 0:
            continue
        values.append(float(r))
        weights.append(float(w))
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w2 = weights[-2] + weights[-1]
            v2 = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w2
            s2 = sizes[-2] + sizes[-1]
            del values[-1], weights[-1], sizes[-1]
            values[-1], weights[-1], sizes[-1] = v2, w2, s2
    fitted = np.repeat(values, sizes) if values else np.array([])
    out = np.full(len(rate), np.nan)
    out[weight > 0] = fitted
    if not len(fitted):
        return out
    # Unweighted bins: carry the last fitted value forward, the first one backward.
    idx = np.where(weight > 0, np.arange(len(rate)), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(weight > 0))
    idx[idx < 0] = first
    return out[idx]


def calibration_map(counts: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """P(positive) per score bin, from the reference's rows and positive labels per bin."""
    counts = np.asarray(counts, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(counts > 0, np.asarray(positives, float) / counts, 0.0)
    return isotonic(rate, counts)


def estimate_binary(
    counts: np.ndarray, mean_scores: np.ndarray, calibrated: np.ndarray, threshold: float
) -> dict[str, tuple[float, float]]:
    """metric -> (estimate, 95 % half-width) for one window's score histogram.

    ``counts``: predictions per score bin; ``mean_scores``: their mean score per bin (which
    side of the decision threshold a bin is on); ``calibrated``: P(positive) per bin.
    """
    n_b = np.asarray(counts, float)
    n = n_b.sum()
    if n <= 0:
        return {}
    c = np.clip(np.nan_to_num(np.asarray(calibrated, float), nan=0.0), 0.0, 1.0)
    predicted = np.asarray(mean_scores, float) >= threshold
    pos = n_b * c  # expected positives per bin
    neg = n_b - pos
    var_b = n_b * c * (1.0 - c)  # variance of the positives' count per bin
    tp, fp = pos[predicted].sum(), neg[predicted].sum()
    fn, tn = pos[~predicted].sum(), neg[~predicted].sum()
    var_tp, var_fn = var_b[predicted].sum(), var_b[~predicted].sum()
    out: dict[str, tuple[float, float]] = {}
    # Accuracy: each prediction is correct with probability c (predicted positive) or 1 − c.
    out["accuracy"] = ((tp + tn) / n, Z95 * math.sqrt(var_tp + var_fn) / n)
    n_pp = tp + fp
    if n_pp > 0:
        out["precision"] = (tp / n_pp, Z95 * math.sqrt(var_tp) / n_pp)
    if tp + fn > 0:
        a, b = tp, fn  # positives predicted positive / negative: independent sums
        d = (a + b) ** 2
        out["recall"] = (a / (a + b), Z95 * math.sqrt(b * b * var_tp + a * a * var_fn) / d)
        # F1 = 2·TP / (TP + FN + predicted positives); the last is a count, not random.
        denom = a + b + n_pp
        ga, gb = 2.0 * (b + n_pp) / denom**2, -2.0 * a / denom**2
        out["f1"] = (2.0 * a / denom, Z95 * math.sqrt(ga * ga * var_tp + gb * gb * var_fn))
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos > 0 and total_neg > 0:
        order = np.argsort(np.asarray(mean_scores, float), kind="stable")
        p, q = pos[order], neg[order]
        above = np.cumsum(p[::-1])[::-1] - p  # expected positives in higher bins
        auc = float((q * (above + 0.5 * p)).sum() / (total_pos * total_neg))
        out["auc"] = (auc, Z95 * _hanley_mcneil(auc, total_pos, total_neg))
    return out


def _hanley_mcneil(auc: float, n_pos: float, n_neg: float) -> float:
    """Standard error of an ROC AUC over n_pos positives and n_neg negatives."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (
        auc * (1.0 - auc) + (n_pos - 1.0) * (q1 - auc * auc) + (n_neg - 1.0) * (q2 - auc * auc)
    ) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))
