"""Distribution distances between a reference and a current profile.

Pure functions over binned counts (no I/O, no Prometheus): cost is O(bins), never O(rows).
Each method is registered with its default threshold and the column kinds it applies to,
beside its math. Inputs are count vectors over the same bins.

Numeric bins are the reference's fine quantile bins with two open-ended outer bins, so
the reference puts no mass in the outer bins; bins are left-closed, [a, b).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

# PSI floors zero proportions here so that an empty bin gives a large, finite term.
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class NumericCounts:
    """What the numeric distances need: fine-bin counts and the exact tail sums."""

    counts: np.ndarray  # len(edges) + 1 bins: (-inf, e0), [e0, e1), ..., [e_last, inf)
    low_tail_sum: float  # sum of (e0 - x) over values below e0
    high_tail_sum: float  # sum of (x - e_last) over values at or above e_last


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index over the given bins, proportions floored at PSI_EPSILON."""
    p = np.maximum(_proportions(reference), PSI_EPSILON)
    q = np.maximum(_proportions(current), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen–Shannon distance, base 2, in [0, 1]."""
    value = jensenshannon(_proportions(reference), _proportions(current), base=2)
    return float(np.nan_to_num(value))


def linf(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest absolute difference between category frequencies."""
    return float(np.max(np.abs(_proportions(reference) - _proportions(current))))


def chi2_pvalue(reference: np.ndarray, current: np.ndarray) -> float:
    """p-value of the chi-squared test of independence on the 2 x bins contingency table.

    A two-sample test: both rows are samples. Columns empty in both are dropped.
    """
    table = np.vstack([reference, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def ks_statistic(edges: np.ndarray, reference: NumericCounts, current: NumericCounts) -> float:
    """Two-sample Kolmogorov–Smirnov statistic from binned CDFs.

    Exact at the bin edges; within a bin the error is at most the larger bin mass.
    """
    f_ref = np.cumsum(_proportions(reference.counts))
    f_cur = np.cumsum(_proportions(current.counts))
    return float(np.max(np.abs(f_ref - f_cur)))


def wasserstein(
    edges: np.ndarray, reference: NumericCounts, current: NumericCounts, scale: float
) -> float:
    """Wasserstein-1 distance divided by ``scale`` (the reference's standard deviation).

    CDFs are linear inside each interior bin (values uniform within a bin); the outer bins
    are exact, from the tail sums.
    """
    n_ref, n_cur = reference.counts.sum(), current.counts.sum()
    if n_ref == 0 or n_cur == 0:
        return 0.0
    # CDF difference at each edge: edge i is the left end of bin i + 1.
    diff = np.cumsum(reference.counts / n_ref - current.counts / n_cur)[:-1]
    a, b, width = diff[:-1], diff[1:], np.diff(edges)
    same_sign = a * b >= 0
    denom = np.where(same_sign, 1.0, np.abs(a) + np.abs(b))
    area = np.where(
        same_sign,
        (np.abs(a) + np.abs(b)) / 2 * width,
        (a * a + b * b) / (2 * denom) * width,
    )
    tails = abs(reference.low_tail_sum / n_ref - current.low_tail_sum / n_cur) + abs(
        reference.high_tail_sum / n_ref - current.high_tail_sum / n_cur
    )
    distance = float(area.sum() + tails)
    return distance / scale if scale > 0 else distance


@dataclass(frozen=True)
class Method:
    name: str
    kinds: frozenset[str]  # "numeric", "categorical"
    default_threshold: float
    # True for distances (alert when above); False for p-values (alert when below).
    higher_is_worse: bool
    doc: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("psi", frozenset({"numeric", "categorical"}), 0.2, True, psi.__doc__ or ""),
        Method("js", frozenset({"numeric", "categorical"}), 0.1, True, js_distance.__doc__ or ""),
        Method("ks", frozenset({"numeric"}), 0.1, True, ks_statistic.__doc__ or ""),
        Method("wasserstein", frozenset({"numeric"}), 0.1, True, wasserstein.__doc__ or ""),
        Method("linf", frozenset({"categorical"}), 0.1, True, linf.__doc__ or ""),
        Method("chi2_pvalue", frozenset({"categorical"}), 0.01, False, chi2_pvalue.__doc__ or ""),
    )
}

NUMERIC_METHODS = tuple(n for n, m in METHODS.items() if "numeric" in m.kinds)
CATEGORICAL_METHODS = tuple(n for n, m in METHODS.items() if "categorical" in m.kinds)


def decile_groups(edges: np.ndarray, decile_edges: np.ndarray) -> np.ndarray:
    """For each fine bin (outer bins included), the PSI bin it belongs to."""
    lower = np.concatenate([[-np.inf], edges])  # left end of each fine bin
    return np.searchsorted(decile_edges, lower, side="right")


def regroup(counts: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum fine-bin counts into coarser bins."""
    return np.bincount(groups, weights=counts, minlength=n_groups)


def numeric_scores(
    edges: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    scale: float,
    reference: NumericCounts,
    current: NumericCounts,
) -> dict[str, float]:
    """Every numeric method for one feature."""
    ref_coarse = regroup(reference.counts, groups, n_groups)
    cur_coarse = regroup(current.counts, groups, n_groups)
    return {
        "psi": psi(ref_coarse, cur_coarse),
        "js": js_distance(reference.counts, current.counts),
        "ks": ks_statistic(edges, reference, current),
        "wasserstein": wasserstein(edges, reference, current, scale),
    }


def categorical_scores(reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    """Every categorical method for one feature (bins: top-K values, other, unseen)."""
    return {
        "psi": psi(reference, current),
        "js": js_distance(reference, current),
        "linf": linf(reference, current),
        "chi2_pvalue": chi2_pvalue(reference, current),
    }
