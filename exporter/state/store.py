"""All exporter state, behind one lock: ingestion writes it, scrapes read it."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from exporter.config import Config, Model
from exporter.state.serving import ServingCounters
from exporter.state.versions import VersionSlots


@dataclass
class SourceStats:
    """Self-metrics of one input source."""

    lines: Counter = field(default_factory=Counter)  # parsed / invalid
    invalid: Counter = field(default_factory=Counter)  # by reason
    bytes_read: int = 0
    lag_bytes: int = 0
    files: int = 0
    checkpoint_failures: int = 0
    checkpoint_ok: bool = True


class ModelState:
    def __init__(self, model: Model, buckets: tuple[float, ...]):
        self.model = model
        self.slots = VersionSlots(model.max_versions, idle_seconds=model.windows.length)
        self.serving = ServingCounters(buckets, self.slots)


class State:
    def __init__(self, config: Config, previous: State | None = None):
        self.lock = threading.Lock()
        self.config = config
        self.models: dict[str, ModelState] = {}
        buckets = config.serving_log.latency_buckets
        for model in config.models:
            old = previous.models.get(model.name) if previous else None
            same = (
                old is not None
                and old.model == model
                and previous.config.serving_log == config.serving_log
            )
            # An unchanged model keeps its counters and windows across a reload.
            self.models[model.name] = old if same else ModelState(model, buckets)
        self.sources: dict[str, SourceStats] = previous.sources if previous else {}
        self.ingest_passes = previous.ingest_passes if previous else 0
        self.last_ingest_timestamp = previous.last_ingest_timestamp if previous else 0.0

    def source(self, name: str) -> SourceStats:
        stats = self.sources.get(name)
        if stats is None:
            stats = self.sources[name] = SourceStats()
        return stats
