"""Drift verdicts: a test per column whose no-drift false-alarm rate holds at every sample
size, and a correction across a model's columns so the model-level verdict holds it too.

Distances (psi, js, ks, ...) are effect sizes: how far apart two distributions are. They say
nothing about whether the difference is noise, which depends on the samples' sizes: at a
hundred records sampling noise alone exceeds any fixed distance threshold, at a million a
real shift hides below it. A verdict is decided instead by a p-value of a two-sample test on
the same binned counts (O(bins), never O(rows)):

- numeric: the Kolmogorov–Smirnov statistic at the fine bin edges, with the Kolmogorov
  distribution at n_eff = n·m/(n+m) (Stephens' small-sample correction), and a chi-squared
  test over the ten decile bins; the column's p-value is the smaller of the two, doubled
  (Bonferroni over the two tests). KS sees shifts of location; the chi-squared test sees
  changes of shape and spread. Binning and ties only make both conservative: the binned KS
  statistic is a maximum over fewer points than the continuous one.
- categorical: a chi-squared test of the 2 × categories table in which sparse categories
  (expected count < ``MIN_EXPECTED`` in the smaller sample) are pooled into one column, so
  the chi-squared approximation holds with 2 or 500 levels at any n; ``__unseen__`` is a
  column of its own when it is not sparse.

The model's columns (features, predictions per version, labels) are one family per
comparison; Benjamini–Hochberg at level α (the default) or Bonferroni decides which are
drifted. With no drift at all, either makes "any column drifted" happen in at most α of
windows (BH controls the family-wise error under the complete null). docs/statistics.md
says how Prometheus can apply the same rule from exported quantities.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import bdtrc, chdtrc, kolmogorov

from exporter.stats.drift import proportions

# Below this expected count in the smaller sample a category is pooled with the other
# sparse ones (Cochran's rule for the chi-squared approximation).
MIN_EXPECTED = 5.0

CORRECTIONS = ("benjamini_hochberg", "bonferroni")


def effective_size(n: float, m: float) -> float:
    """n·m/(n+m): the size a two-sample comparison has (≈ n against a large reference)."""
    return n * m / (n + m) if n > 0 and m > 0 else 0.0


def ks_pvalue(statistic: float, n: float, m: float) -> float:
    """Asymptotic two-sample KS p-value with Stephens' correction (Numerical Recipes)."""
    en = math.sqrt(effective_size(n, m))
    if en == 0:
        return 1.0
    return float(min(1.0, kolmogorov((en + 0.12 + 0.11 / en) * statistic)))


def pooled_chi2(reference: np.ndarray, current: np.ndarray, keep_apart: int | None = None):
    """(statistic, degrees of freedom, p-value) of the chi-squared test of homogeneity of two
    count vectors, sparse columns pooled; ``keep_apart`` (a column index) is never pooled
    with known columns unless it is sparse itself."""
    ref = np.asarray(reference, float)
    cur = np.asarray(current, float)
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref <= 0 or n_cur <= 0:
        return 0.0, 0, 1.0
    totals = ref + cur
    present = totals > 0
    small = min(n_ref, n_cur) / (n_ref + n_cur)
    expected_small = totals * small
    sparse = present & (expected_small < MIN_EXPECTED)
    dense = present & ~sparse
    cols_ref = list(ref[dense])
    cols_cur = list(cur[dense])
    if sparse.any():
        pool_ref, pool_cur = ref[sparse].sum(), cur[sparse].sum()
        # The pool's total times the share (counts add exactly; per-column products would
        # round differently with the order of the sum).
        pool_expected = totals[sparse].sum() * small
        if pool_expected < MIN_EXPECTED and cols_ref:
            # Still sparse: fold it into the smallest dense column (not the unseen one).
            dense_idx = np.flatnonzero(dense)
            # The smallest, the first of equals (a stable sort: batch.py picks the same).
            by_total = np.argsort(totals[dense], kind="stable")
            order = [i for i in by_total if dense_idx[i] != keep_apart]
            i = order[0] if order else int(np.argmin(totals[dense]))
            cols_ref[i] += pool_ref
            cols_cur[i] += pool_cur
        else:
            cols_ref.append(pool_ref)
            cols_cur.append(pool_cur)
    if len(cols_ref) < 2:
        return 0.0, 0, 1.0
    table = np.array([cols_ref, cols_cur])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    df = table.shape[1] - 1
    return statistic, df, float(chdtrc(df, statistic))


def numeric_pvalue(
    ks_statistic: float, ref_coarse: np.ndarray, cur_coarse: np.ndarray
) -> tuple[float, float]:
    """(p-value, effect) of a numeric column: KS and decile chi-squared, Bonferroni over the
    two; the effect is the KS statistic (the largest share of traffic that moved across
    any value)."""
    n, m = float(cur_coarse.sum()), float(ref_coarse.sum())
    p_ks = ks_pvalue(ks_statistic, n, m)
    p_chi2 = pooled_chi2(ref_coarse, cur_coarse)[2]
    return min(1.0, 2 * min(p_ks, p_chi2)), ks_statistic


def categorical_pvalue(
    reference: np.ndarray, current: np.ndarray, new_value_share: float | None = None
) -> tuple[float, float]:
    """(p-value, effect) of a categorical column over top-K, ``__other__``, ``__unseen__``
    (the last column); the effect is the total variation distance (the share of traffic
    that moved between categories).

    Between two windows (``new_value_share`` None) unseen values are one more column. Against
    the training reference they cannot be: the reference has none by construction, not by
    sampling. There the top-K categories and the rest (``__other__`` and ``__unseen__``
    together: the reference's own rare values stand in for the tail it never saw) get the
    chi-squared test, and the unseen count an exact binomial test against
    ``new_value_share`` (the rate a long tail gives with no drift); Bonferroni over the two.
    """
    tv = 0.5 * float(np.abs(proportions(reference) - proportions(current)).sum())
    if new_value_share is None:
        return pooled_chi2(reference, current, keep_apart=len(reference) - 1)[2], tv
    top_ref, top_cur = reference[:-2], current[:-2]
    rest_ref, rest_cur = reference[-2:].sum(), current[-2:].sum()
    if reference[-2] > 0 and len(top_ref):
        # The top K were chosen by these very counts: those that made the cut by a few
        # standard errors are biased upwards (the winner's curse), enough to matter when a
        # window is as large as the reference. They join the rest.
        cutoff = top_ref.min()
        near = top_ref < cutoff + 3 * math.sqrt(cutoff)
        rest_ref += top_ref[near].sum()
        rest_cur += top_cur[near].sum()
        top_ref, top_cur = top_ref[~near], top_cur[~near]
    p_known = pooled_chi2(np.append(top_ref, rest_ref), np.append(top_cur, rest_cur))[2]
    n, unseen = int(current.sum()), int(current[-1])
    share = max(new_value_share, 1.0 / (float(reference.sum()) + 1))
    p_unseen = float(bdtrc(unseen - 1, n, share)) if unseen > 0 else 1.0
    return min(1.0, 2 * min(p_known, p_unseen)), tv


def decide(pvalues: np.ndarray, alpha: float, correction: str = "benjamini_hochberg"):
    """(drifted mask, p-value threshold in force) for one family of p-values at level α.

    Benjamini–Hochberg rejects the k smallest p-values where k is the largest rank with
    p_(k) ≤ k·α/m; the threshold in force is k·α/m (α/m when nothing is rejected: the
    smallest p-value would have to reach it). Bonferroni: α/m for every column.
    """
    p = np.asarray(pvalues, float)
    m = len(p)
    if m == 0:
        return np.zeros(0, bool), alpha
    if correction == "bonferroni":
        threshold = alpha / m
        return p <= threshold, threshold
    order = np.sort(p)
    passed = np.flatnonzero(order <= alpha * np.arange(1, m + 1) / m)
    k = int(passed[-1]) + 1 if passed.size else 0
    threshold = alpha * max(k, 1) / m
    return (p <= threshold) if k else np.zeros(m, bool), threshold


def fleet_threshold(alpha: float, columns: int, categories: int, n_eff: float) -> float:
    """The distance above which a column is drifted by the rule PromQL can evaluate from
    merged counters (docs/statistics.md#the-same-rule-in-prometheus): the largest share
    difference (the KS statistic at bucket edges for numbers, L∞ over the ``categories``
    for categories) against √(ln(2·categories·columns/α) / (2·n_eff)). With one category and
    one column it is the large-sample KS critical value c(α)/√n_eff, c(α) = √(-ln(α/2)/2).

    Hoeffding's inequality for a difference of two sample shares (bounded terms of ranges
    1/n and 1/m) gives P(|Δ share - Δ true| ≥ t) ≤ 2·exp(-2·n_eff·t²); a union over the
    categories and a Bonferroni split of α over the model's columns bound the model's
    false-alarm rate by α at every n. Conservative: the exporter's own tests catch more.
    """
    if n_eff <= 0:
        return math.inf
    return math.sqrt(math.log(2 * max(categories, 1) * max(columns, 1) / alpha) / (2 * n_eff))
