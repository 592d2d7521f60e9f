"""Model quality from joined (prediction, label) pairs, as windowed sums. Pure functions.

Binary classification keeps, per window: n, tp, fp, tn, fn, summed log loss, and
histograms of the scores of positives and negatives on ``AUC_BINS`` equal bins of [0, 1],
from which AUC is the probability that a positive outscores a negative (ties within a bin
count one half). Regression keeps n, sum |error|, sum error². Multiclass keeps n, correct.
"""

from __future__ import annotations

import numpy as np

AUC_BINS = 200
LOGLOSS_EPS = 1e-15
BINARY_SUMS = ("n", "tp", "fp", "tn", "fn", "logloss")
REGRESSION_SUMS = ("n", "abs_error", "sq_error")
MULTICLASS_SUMS = ("n", "correct")


def binary_sums(scores: np.ndarray, positive: np.ndarray, threshold: float) -> np.ndarray:
    predicted = scores >= threshold
    p = np.clip(scores, LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    loss = -(positive * np.log(p) + (~positive) * np.log(1 - p))
    return np.array(
        [
            len(scores),
            np.sum(predicted & positive),
            np.sum(predicted & ~positive),
            np.sum(~predicted & ~positive),
            np.sum(~predicted & positive),
            loss.sum(),
        ],
        dtype=float,
    )


def score_histograms(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """(2, AUC_BINS): score histograms of negatives (row 0) and positives (row 1)."""
    idx = np.clip((np.clip(scores, 0, 1) * AUC_BINS).astype(int), 0, AUC_BINS - 1)
    flat = idx + positive.astype(int) * AUC_BINS
    return np.bincount(flat, minlength=2 * AUC_BINS).reshape(2, AUC_BINS)


def regression_sums(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    err = predictions - labels
    return np.array([len(err), np.abs(err).sum(), (err * err).sum()])


def binned_auc(histograms: np.ndarray) -> float:
    neg, pos = histograms[0].astype(float), histograms[1].astype(float)
    n_neg, n_pos = neg.sum(), pos.sum()
    if n_neg == 0 or n_pos == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives in lower bins
    return float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))


def binary_metrics(sums: np.ndarray, histograms: np.ndarray) -> dict[str, float]:
    n, tp, fp, tn, fn, loss = sums
    out = {"accuracy": (tp + tn) / n, "logloss": loss / n, "auc": binned_auc(histograms)}
    if tp + fp:
        out["precision"] = tp / (tp + fp)
    if tp + fn:
        out["recall"] = tp / (tp + fn)
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}


def regression_metrics(sums: np.ndarray) -> dict[str, float]:
    n, abs_error, sq_error = sums
    return {"mae": float(abs_error / n), "rmse": float(np.sqrt(sq_error / n))}


def multiclass_metrics(sums: np.ndarray) -> dict[str, float]:
    n, correct = sums
    return {"accuracy": float(correct / n)}
