"""Every method for every column of two profiles over the same specs."""

from __future__ import annotations

from exporter.state.profiles import ColumnSpecs, NumericSpec, Profile
from exporter.stats import drift, verdict


def column_scores(spec, base, current, minimum: int) -> dict[str, float]:
    """All methods for one column, or nothing if either side has fewer than ``minimum``."""
    if base is None:
        return {}
    if isinstance(spec, NumericSpec):
        if current.counts.sum() < minimum or base.counts.sum() < minimum:
            return {}
        return drift.numeric_scores(
            spec.edges, spec.groups, spec.psi_bins, spec.scale, base, current
        )
    if current.sum() < minimum or base.sum() < minimum:
        return {}
    return drift.categorical_scores(base, current)


def column_test(
    spec, base, current, minimum: int, *, reference: bool = False
) -> tuple[float, float] | None:
    """(p-value, effect) of one column's two-sample test (stats/verdict.py), or None if
    either side has fewer than ``minimum`` values. ``reference``: ``base`` is the training
    reference (not another window), so unseen categories are tested against its long tail."""
    if base is None:
        return None
    if isinstance(spec, NumericSpec):
        if current.counts.sum() < minimum or base.counts.sum() < minimum:
            return None
        ks = drift.ks_statistic(spec.edges, base, current)
        ref_coarse = drift.regroup(base.counts, spec.groups, spec.psi_bins)
        cur_coarse = drift.regroup(current.counts, spec.groups, spec.psi_bins)
        return verdict.numeric_pvalue(ks, ref_coarse, cur_coarse)
    if current.sum() < minimum or base.sum() < minimum:
        return None
    share = spec.new_value_share if reference else None
    return verdict.categorical_pvalue(base, current, share)


def numeric_counts(profile: Profile, j: int, spec: NumericSpec) -> drift.NumericCounts:
    return drift.NumericCounts(profile.numeric[j, : spec.bins], profile.sums[j, : spec.bins])


def profile_tests(
    specs: ColumnSpecs, base: Profile, current: Profile, minimum: int, *, reference: bool
) -> dict:
    """{column: (p-value, effect)} for every column of ``specs`` with enough values."""
    out = {}
    for j, spec in enumerate(specs.numeric):
        t = column_test(
            spec, numeric_counts(base, j, spec), numeric_counts(current, j, spec), minimum
        )
        if t is not None:
            out[spec.name] = t
    for j, spec in enumerate(specs.categorical):
        t = column_test(
            spec,
            base.categorical[j, : spec.bins],
            current.categorical[j, : spec.bins],
            minimum,
            reference=reference,
        )
        if t is not None:
            out[spec.name] = t
    return out


def profile_scores(specs: ColumnSpecs, base: Profile, current: Profile, minimum: int) -> dict:
    """{(column, method): value} for every column of ``specs``."""
    out = {}
    for j, spec in enumerate(specs.numeric):
        scores = column_scores(
            spec, numeric_counts(base, j, spec), numeric_counts(current, j, spec), minimum
        )
        for method, value in scores.items():
            out[(spec.name, method)] = value
    for j, spec in enumerate(specs.categorical):
        scores = column_scores(
            spec, base.categorical[j, : spec.bins], current.categorical[j, : spec.bins], minimum
        )
        for method, value in scores.items():
            out[(spec.name, method)] = value
    return out
