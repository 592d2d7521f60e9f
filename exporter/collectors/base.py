"""The scrape framework: runs every enabled area collector, timing each and isolating
failures, as node_exporter does with ``node_scrape_collector_success``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.state.store import State

log = logging.getLogger(__name__)


class AreaCollector(Protocol):
    """Reads state and yields metric families; does no I/O."""

    name: str

    def collect(self, state: State) -> Iterable[Metric]: ...


class ScrapeCollector(Collector):
    def __init__(self, get_state: Callable[[], State], collectors: list[AreaCollector]):
        self.get_state = get_state
        self.collectors = collectors
        self._failing: set[str] = set()

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
        for collector in self.collectors:
            start = time.perf_counter()
            try:
                with state.lock:
                    families = list(collector.collect(state))
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
