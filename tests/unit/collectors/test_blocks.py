"""Block families (collectors/blocks.py) render and obey the series budget exactly as the
same series as prometheus_client Samples do: the Sample path is the oracle."""

import copy

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import CollectorRegistry

from exporter.collectors.base import SeriesBudget
from exporter.collectors.blocks import BlockFamily, SeriesLayout
from exporter.exposition import TextEncoder

ODD = [0.0, 0.1, -2.5, 999999.0, 1e6, 1234567.0, 1e22, -5e7, np.inf, -np.inf, np.nan, 7.0]


def histogram_block(models: dict[str, int]) -> BlockFamily:
    """``models``: model -> histograms (features), 2 buckets each, values counting up."""
    family = BlockFamily("x_value", "A histogram.", "histogram")
    start = 0.0
    for model, features in models.items():
        keys, ends = [], []
        for f in range(features):
            labels = {"model": model, "feature": f"f{f}"}
            keys += [("x_value_bucket", {**labels, "le": le}) for le in ("1.0", "+Inf")]
            keys += [("x_value_count", labels), ("x_value_sum", labels)]
            ends.append(len(keys))
        values = np.arange(start, start + len(keys))
        start += len(keys)
        family.add_run(SeriesLayout(model, keys, ends), values)
    return family


def as_samples(family: Metric) -> Metric:
    plain = Metric(family.name, family.documentation, family.type)
    plain.samples = list(family.samples)
    return plain


class One:
    def __init__(self, *families):
        self.families = families

    def collect(self):
        return list(self.families)


def test_a_block_renders_what_generate_latest_writes_for_its_samples():
    gauge = BlockFamily("odd_values", "Values Go writes in its own way.", "gauge")
    keys = [("odd_values", {"model": "m", "i": str(i), "q": 'a"b\\c\nd'}) for i in range(12)]
    gauge.add_run(SeriesLayout("m", keys), np.array(ODD))
    counter = BlockFamily("hits", "A counter.", "counter")
    counter.add_run(
        SeriesLayout("m", [("hits_total", {"model": "m", "c": c}) for c in "ab"]),
        np.array([3.0, 4.0]),
    )
    # Whole counts as a histogram has them, large ones written as Go writes them.
    whole = [0.0, 3.0, 999999.0, 1e6, 1234567.0, 1e15, 1e16, 1e22, np.inf, 12.0, 0.5, -0.0]
    counts = BlockFamily("counts", "Whole counts.", "counter")
    counts.add_run(
        SeriesLayout("m", [("counts_total", {"i": str(i)}) for i in range(len(whole))]),
        np.array(whole),
    )
    registry = CollectorRegistry()
    registry.register(One(gauge, counter, counts, histogram_block({"a": 2, "b": 1})))
    encoder = TextEncoder()
    for _ in range(2):  # a second rendering reuses the prefixes
        assert encoder.encode(registry) == generate_latest(registry)


@pytest.mark.parametrize(
    ("per_metric", "per_model"), [(100, 100), (4, 100), (100, 2), (3, 2), (0, 5), (5, 0)]
)
def test_the_budget_cuts_a_block_where_it_cuts_the_same_samples(per_metric, per_model):
    models = {"a": 3, "b": 1, "c": 4}
    block = histogram_block(models)
    plain = as_samples(block)
    block_budget, plain_budget = SeriesBudget(), SeriesBudget()
    block_models, plain_models = {"c": 1}, {"c": 1}  # a family before this one counted
    block_budget.enforce([block], per_metric, per_model, block_models)
    plain_budget.enforce([plain], per_metric, per_model, plain_models)
    assert block.samples == plain.samples
    assert block_models == plain_models
    assert block_budget.dropped == plain_budget.dropped
    kept = {(s.labels["model"], s.labels["feature"]) for s in block.samples}
    for model, feature in kept:  # whole histograms
        assert sum(s.labels == {"model": model, "feature": feature} for s in block.samples) == 2


def test_a_cut_copy_leaves_the_kept_family_whole():
    block = histogram_block({"a": 3})
    shown = copy.copy(block)
    SeriesBudget().enforce([shown], 1, 100, {})
    assert len(shown.samples) == 4 and len(block.samples) == 12


def test_samples_cannot_be_replaced_behind_the_runs():
    with pytest.raises(TypeError):
        histogram_block({"a": 1}).samples = [None]
    with pytest.raises(ValueError):
        BlockFamily("y", "", "gauge").add_run(SeriesLayout("m", [("y", {})]), np.ones(2))
