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


def column_compare(
    spec, base, current, minimum: int, *, reference: bool
) -> tuple[dict[str, float], tuple[float, float] | None]:
    """One column's distances and its verdict test (p-value, effect; stats/verdict.py), or
    ({}, None) if either side has fewer than ``minimum`` values. ``reference``: ``base`` is
    the training reference (not another window), so unseen categories are tested against
    its long tail. The KS statistic of the distances is the test's."""
    scores = column_scores(spec, base, current, minimum)
    if not scores:
        return scores, None
    if isinstance(spec, NumericSpec):
        ref_coarse = drift.regroup(base.counts, spec.groups, spec.psi_bins)
        cur_coarse = drift.regroup(current.counts, spec.groups, spec.psi_bins)
        return scores, verdict.numeric_pvalue(scores["ks"], ref_coarse, cur_coarse)
    share = spec.new_value_share if reference else None
    return scores, verdict.categorical_pvalue(base, current, share)


def numeric_counts(profile: Profile, j: int, spec: NumericSpec) -> drift.NumericCounts:
    return drift.NumericCounts(profile.numeric[j, : spec.bins], profile.sums[j, : spec.bins])


def _columns(specs: ColumnSpecs, base: Profile, current: Profile):
    """(spec, base counts, current counts) of every column of ``specs``."""
    for j, spec in enumerate(specs.numeric):
        yield spec, numeric_counts(base, j, spec), numeric_counts(current, j, spec)
    for j, spec in enumerate(specs.categorical):
        yield spec, base.categorical[j, : spec.bins], current.categorical[j, : spec.bins]


def profile_scores(specs: ColumnSpecs, base: Profile, current: Profile, minimum: int) -> dict:
    """{(column, method): value} for every column of ``specs``."""
    out = {}
    for spec, b, c in _columns(specs, base, current):
        for method, value in column_scores(spec, b, c, minimum).items():
            out[(spec.name, method)] = value
    return out


def profile_compare(
    specs: ColumnSpecs, base: Profile, current: Profile, minimum: int, *, reference: bool
) -> tuple[dict, dict]:
    """({(column, method): value}, {column: (p-value, effect)}) for every column of
    ``specs`` with enough values (see ``column_compare``)."""
    scores, tests = {}, {}
    for spec, b, c in _columns(specs, base, current):
        column, test = column_compare(spec, b, c, minimum, reference=reference)
        for method, value in column.items():
            scores[(spec.name, method)] = value
        if test is not None:
            tests[spec.name] = test
    return scores, tests
