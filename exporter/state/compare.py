"""Every method for every column of two profiles over the same specs."""

from __future__ import annotations

from exporter.state.profiles import ColumnSpecs, NumericSpec, Profile
from exporter.stats import drift


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


def numeric_counts(profile: Profile, j: int, spec: NumericSpec) -> drift.NumericCounts:
    return drift.NumericCounts(profile.numeric[j, : spec.bins], profile.sums[j, : spec.bins])


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
