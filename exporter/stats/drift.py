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

# scipy.special, not scipy.stats/spatial: the same primitives those use, at a third of the
# memory (importing scipy.stats costs ~70 MiB of RSS, scipy.special ~24 MiB).
from scipy.special import chdtrc, rel_entr

# PSI floors zero proportions here so that an empty bin gives a large, finite term.
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class NumericCounts:
    """What the numeric distances need: fine-bin counts and the sum of values per bin."""

    counts: np.ndarray  # len(edges) + 1 bins: (-inf, e0), [e0, e1), ..., [e_last, inf)
    sums: np.ndarray  # sum of the values in each bin


def proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index over the given bins, proportions floored at PSI_EPSILON."""
    p = np.maximum(proportions(reference), PSI_EPSILON)
    q = np.maximum(proportions(current), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen–Shannon distance, base 2, in [0, 1] (as scipy.spatial.distance.jensenshannon)."""
    if reference.sum() == 0 or current.sum() == 0:
        return 0.0
    p, q = proportions(reference), proportions(current)
    m = (p + q) / 2
    divergence = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2
    return float(np.sqrt(max(divergence, 0.0) / np.log(2)))


def linf(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest absolute difference between category frequencies."""
    return float(np.max(np.abs(proportions(reference) - proportions(current))))


def chi2_pvalue(reference: np.ndarray, current: np.ndarray) -> float:
    """p-value of the chi-squared test of independence on the 2 x bins contingency table.

    A two-sample test (as scipy.stats.chi2_contingency without continuity correction): both
    rows are samples. Columns empty in both are dropped.
    """
    table = np.vstack([reference, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table.sum(axis=1).min() == 0:
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return float(chdtrc(table.shape[1] - 1, statistic))


def ks_statistic(edges: np.ndarray, reference: NumericCounts, current: NumericCounts) -> float:
    """Two-sample Kolmogorov–Smirnov statistic from binned CDFs.

    Exact at the bin edges; within a bin the error is at most the larger bin mass.
    """
    f_ref = np.cumsum(proportions(reference.counts))
    f_cur = np.cumsum(proportions(current.counts))
    return float(np.max(np.abs(f_ref - f_cur)))


def _cdf_integrals(edges: np.ndarray, c: NumericCounts) -> np.ndarray:
    """Per bin, the integral of the CDF over it (of 1 - CDF for the last bin), exactly.

    Over [a, b): (b - a) F(a) + sum over values x in the bin of (b - x), over n.
    Below e0: sum of (e0 - x). At or above e_last: sum of (x - e_last).
    """
    n = c.counts.sum()
    counts, sums = c.counts / n, c.sums / n
    f_left = np.cumsum(counts)[:-2]  # F at the left edge of each interior bin
    interior = np.diff(edges) * f_left + counts[1:-1] * edges[1:] - sums[1:-1]
    low = counts[0] * edges[0] - sums[0]
    high = sums[-1] - counts[-1] * edges[-1]
    return np.concatenate([[low], interior, [high]])


def wasserstein(
    edges: np.ndarray, reference: NumericCounts, current: NumericCounts, scale: float
) -> float:
    """Wasserstein-1 distance divided by ``scale`` (the reference's standard deviation).

    The integral of |F_ref - F_cur| is summed bin by bin from exact per-bin integrals of
    the CDFs, so it is exact unless the two CDFs cross inside a bin.
    """
    if reference.counts.sum() == 0 or current.counts.sum() == 0:
        return 0.0
    diff = _cdf_integrals(edges, reference) - _cdf_integrals(edges, current)
    distance = float(np.abs(diff).sum())
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
    """Every numeric method for one feature.

    PSI and JS use the ten reference-decile bins: over 100 fine bins their small-sample
    bias alone would cross the default thresholds at a few hundred values. KS and
    Wasserstein use the fine bins, where resolution makes them more exact.
    """
    ref_coarse = regroup(reference.counts, groups, n_groups)
    cur_coarse = regroup(current.counts, groups, n_groups)
    return {
        "psi": psi(ref_coarse, cur_coarse),
        "js": js_distance(ref_coarse, cur_coarse),
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
