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
    # Accuracy: each prediction is correct with probability c (predicted positive) or 1 − c.
    found = {"accuracy": ((tp + tn) / n, (var_tp + var_fn) / (n * n))}
    for metric, (value, ga, gb) in _class_metrics(tp, fp, fn).items():
        found[metric] = (value, ga * ga * var_tp + gb * gb * var_fn)
    order = np.argsort(np.asarray(mean_scores, float), kind="stable")
    auc = _auc(pos[order], neg[order])
    if auc is not None:
        found["auc"] = auc
    return {metric: (value, Z95 * math.sqrt(var)) for metric, (value, var) in found.items()}


# Multiclass sufficient statistics per class k, over the rows of a window (``CLASS_SUMS``):
# rows predicted k; the sum of k's calibrated probability c_k over the rows predicted k and
# over the others. ``moments`` (2, classes, classes): the sums of c_k c_l over all rows,
# and over the rows predicted k (the band's covariances).
CLASS_SUMS = ("predicted", "c_predicted", "c_other")


def estimate_multiclass(
    sums: np.ndarray, bin_rows: np.ndarray, bin_expected: np.ndarray, moments: np.ndarray
) -> dict[str, tuple[float, float]]:
    """metric -> (estimate, 95 % half-width), one-vs-rest and macro-averaged over classes.

    ``sums``: (classes, CLASS_SUMS); ``bin_rows``/``bin_expected``: (classes, bins) rows per
    bin of each class's score and the sum of its calibrated probability there (expected rows
    of that class), bins in increasing score order — for each class's ROC AUC.

    Accuracy is the expected share of rows whose predicted class is their label: the sum of
    the calibrated probabilities of the predicted classes. Precision, recall and F1 of each
    class come from its expected one-vs-rest confusion matrix, ROC AUC from its expected
    positives and negatives per score bin; each is averaged over the classes where it is
    defined (macro). The band: a row's label is one draw of a categorical over the classes,
    so one row moves several classes' counts at once; the variance of the macro average,
    linearised, is a sum over rows of the variance of one such draw — exact in the sums
    and ``moments`` kept (docs/statistics.md). AUC's band treats the classes as independent.
    """
    sums = np.asarray(sums, float)
    rows = np.asarray(bin_rows, float)
    n = rows[0].sum() if len(rows) else 0.0
    if n <= 0:
        return {}
    k_all = len(sums)
    predicted, c_pred, c_other = sums.T
    everyone, by_predicted = np.asarray(moments, float)
    draws = _CategoricalDraws(c_pred, c_other, everyone, by_predicted)
    out = {"accuracy": (c_pred.sum() / n, draws.variance(np.full(k_all, 1.0 / n), 0.0))}
    per_class: dict[str, tuple[list, np.ndarray, np.ndarray]] = {}
    aucs = []
    for k in range(k_all):
        tp, fp, fn = c_pred[k], predicted[k] - c_pred[k], c_other[k]
        for metric, (value, ga, gb) in _class_metrics(tp, fp, fn).items():
            values, gamma, delta = per_class.setdefault(
                metric, ([], np.zeros(k_all), np.zeros(k_all))
            )
            values.append(value)
            gamma[k], delta[k] = ga, gb
        expected = np.asarray(bin_expected[k], float)
        auc = _auc(expected, rows[k] - expected)
        if auc is not None:
            aucs.append(auc)
    for metric, (values, gamma, delta) in per_class.items():
        m = len(values)
        out[metric] = (float(np.mean(values)), draws.variance(gamma / m, delta / m))
    if aucs:
        values, variances = zip(*aucs, strict=True)
        out["auc"] = (float(np.mean(values)), float(np.sum(variances)) / len(aucs) ** 2)
    return {metric: (value, Z95 * math.sqrt(max(var, 0.0))) for metric, (value, var) in out.items()}


class _CategoricalDraws:
    """Variance of a statistic linear in each row's label, the label one draw from the row's
    calibrated probabilities c: the statistic adds ``gamma[k]`` when a row predicted k is
    labelled k and ``delta[k]`` when a row predicted otherwise is labelled k. Per row the
    variance is Σ_k g_k² c_k − (Σ_k g_k c_k)²; summed over rows it needs only the window's
    sums of c_k (rows predicted k or not) and of c_k c_l (all rows; rows predicted k)."""

    def __init__(self, c_pred, c_other, everyone, by_predicted):
        self.c_pred, self.c_other = c_pred, c_other
        self.everyone, self.by_predicted = everyone, by_predicted

    def variance(self, gamma, delta) -> float:
        gamma = np.asarray(gamma, float)
        delta = np.broadcast_to(np.asarray(delta, float), gamma.shape)
        first = (gamma * gamma * self.c_pred + delta * delta * self.c_other).sum()
        step = gamma - delta  # the predicted class's extra over the others'
        mean_sq = (
            delta @ self.everyone @ delta
            + 2.0 * step @ (self.by_predicted @ delta)
            + (step * step * np.diag(self.by_predicted)).sum()
        )
        return float(first - mean_sq)


def _class_metrics(tp, fp, fn) -> dict[str, tuple[float, float, float]]:
    """Precision, recall and F1 of an expected confusion matrix, each as (value, ∂/∂TP,
    ∂/∂FN): the predicted positives TP + FP are a count, not random; TP and FN are sums of
    label draws (the callers' variances come from these gradients, the delta method)."""
    out = {}
    n_pp = tp + fp
    if n_pp > 0:
        out["precision"] = (tp / n_pp, 1.0 / n_pp, 0.0)
    if tp + fn > 0:
        a, b = tp, fn
        d = (a + b) ** 2
        out["recall"] = (a / (a + b), b / d, -a / d)
        # F1 = 2·TP / (TP + FN + predicted positives).
        denom = a + b + n_pp
        out["f1"] = (2.0 * a / denom, 2.0 * (b + n_pp) / denom**2, -2.0 * a / denom**2)
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float] | None:
    """ROC AUC as (value, variance) from expected positives and negatives per score bin, bins
    in increasing score order (ties within a bin count one half); None if a class is empty."""
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    above = np.cumsum(pos[::-1])[::-1] - pos  # expected positives in higher bins
    auc = float((neg * (above + 0.5 * pos)).sum() / (total_pos * total_neg))
    return auc, _hanley_mcneil(auc, total_pos, total_neg) ** 2


def _hanley_mcneil(auc: float, n_pos: float, n_neg: float) -> float:
    """Standard error of an ROC AUC over n_pos positives and n_neg negatives."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (
        auc * (1.0 - auc) + (n_pos - 1.0) * (q1 - auc * auc) + (n_neg - 1.0) * (q2 - auc * auc)
    ) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))
