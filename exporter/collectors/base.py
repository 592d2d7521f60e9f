"""The scrape framework: runs every enabled area collector, timing each and isolating
failures, as node_exporter does with ``node_scrape_collector_success``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.collectors.blocks import BlockFamily
from exporter.state.store import State

log = logging.getLogger(__name__)

# A family marked with this attribute (True) promises that, while its ``samples`` is the
# same list object, its text is the same: the encoder (exposition.py) keeps the text.
STATIC = "mlpipe_static_text"


class AreaCollector(Protocol):
    """Reads state and yields metric families; does no I/O."""

    name: str

    def collect(self, state: State) -> Iterable[Metric]: ...


class SeriesBudget:
    """Caps series per metric family and per model; counts and logs (once) what it drops.

    A series is a label set; a histogram's or summary's samples for one label set (its
    buckets, sum and count) are kept or dropped together, so no histogram is ever broken.
    """

    def __init__(self):
        self.dropped: dict[str, int] = {}
        self._warned: set[str] = set()

    def enforce(
        self, families: list[Metric], per_metric: int, per_model: int, models: dict[str, int]
    ) -> None:
        for family in families:
            if isinstance(family, BlockFamily):
                self._cut_runs(family, per_metric, per_model, models)
                continue
            if self._fits(family, per_metric, per_model, models):
                continue
            kept_keys: set = set()
            keep = []
            dropped_keys: set = set()
            for sample in family.samples:
                key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                if key in kept_keys:
                    keep.append(sample)
                    continue
                if key in dropped_keys:
                    continue
                model = sample.labels.get("model")
                over_model = model is not None and models.get(model, 0) >= per_model
                if len(kept_keys) >= per_metric or over_model:
                    dropped_keys.add(key)
                    continue
                kept_keys.add(key)
                if model is not None:
                    models[model] = models.get(model, 0) + 1
                keep.append(sample)
            if dropped_keys:
                family.samples = keep
                self._dropped(family, len(dropped_keys), per_metric, per_model)

    def _cut_runs(
        self, family: BlockFamily, per_metric: int, per_model: int, models: dict[str, int]
    ) -> None:
        """The budget over a block's runs: a model's series are in its run, so keeping its
        first series is cutting the run (no key per sample)."""
        kept, dropped, runs = 0, 0, []
        for layout, values in family.runs:
            model, n = layout.model, layout.series
            room = per_metric - kept
            if model is not None:
                room = min(room, per_model - models.get(model, 0))
            if room < n:
                dropped += n - max(room, 0)
                if room <= 0:
                    continue
                layout, n = layout.head(room), room
                values = values[: len(layout.keys)]
            kept += n
            if model is not None:
                models[model] = models.get(model, 0) + n
            runs.append((layout, values))
        if dropped:
            family.runs = runs
            self._dropped(family, dropped, per_metric, per_model)

    def _dropped(self, family: Metric, n: int, per_metric: int, per_model: int) -> None:
        self.dropped[family.name] = self.dropped.get(family.name, 0) + n
        if family.name not in self._warned:
            self._warned.add(family.name)
            log.warning(
                "series budget exceeded for %s: %d series dropped this scrape "
                "(limits.max_series_per_metric=%d, max_series_per_model=%d)",
                family.name,
                n,
                per_metric,
                per_model,
            )

    @staticmethod
    def _fits(family: Metric, per_metric: int, per_model: int, models: dict[str, int]) -> bool:
        """The common case, without building a key per sample: the family's series (one
        sample per series but for a histogram's or summary's buckets and sum) fit both
        budgets. Counts them into ``models`` if so; leaves ``models`` alone if not."""
        skip = ("_bucket", "_sum") if family.type in ("histogram", "summary") else ()
        per: dict[str, int] = {}
        series = 0
        for sample in family.samples:
            if skip and sample.name.endswith(skip):
                continue
            series += 1
            model = sample.labels.get("model")
            if model is not None:
                per[model] = per.get(model, 0) + 1
        if series > per_metric or any(models.get(m, 0) + n > per_model for m, n in per.items()):
            return False
        for m, n in per.items():
            models[m] = models.get(m, 0) + n
        return True

    def family(self) -> Metric:
        from prometheus_client.core import CounterMetricFamily

        out = CounterMetricFamily(
            "mlpipe_series_dropped",
            "Series left out of scrapes by the cardinality budget.",
            labels=["metric"],
        )
        for name, n in sorted(self.dropped.items()):
            out.add_metric([name], float(n))
        return out


class ScrapeCollector(Collector):
    def __init__(self, get_state: Callable[[], State], collectors: list[AreaCollector]):
        self.get_state = get_state
        self.collectors = collectors
        self._failing: set[str] = set()
        self.budget = SeriesBudget()

    def describe(self) -> Iterable[Metric]:
        # Nothing to describe up front: registering must not run a scrape.
        return []

    def collect(self) -> Iterable[Metric]:
        state = self.get_state()
        success = GaugeMetricFamily(
            "mlpipe_scrape_collector_success",
            "Whether a collector succeeded on this scrape (1) or failed (0).",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "mlpipe_scrape_collector_duration_seconds",
            "Time a collector took on this scrape.",
            labels=["collector"],
        )
        limits = state.config.limits
        per_model: dict[str, int] = {}
        for collector in self.collectors:
            start = time.perf_counter()
            try:
                with state.lock:
                    families = list(collector.collect(state))
                self.budget.enforce(
                    families, limits.max_series_per_metric, limits.max_series_per_model, per_model
                )
                ok = 1.0
                if collector.name in self._failing:
                    self._failing.discard(collector.name)
                    log.info("collector %s recovered", collector.name)
            except Exception:
                families, ok = [], 0.0
                if collector.name not in self._failing:
                    self._failing.add(collector.name)
                    log.exception("collector %s failed", collector.name)
            yield from families
            success.add_metric([collector.name], ok)
            duration.add_metric([collector.name], time.perf_counter() - start)
        yield success
        yield duration
        yield self.budget.family()
