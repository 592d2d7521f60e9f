"""All exporter state, behind one lock: ingestion writes it, scrapes read it."""

from __future__ import annotations

import dataclasses
import logging
import threading

from exporter.config import Config, Model
from exporter.state.datasets import DatasetState
from exporter.state.host import HostSample
from exporter.state.model import ModelState
from exporter.state.pipelines import PipelineState
from exporter.state.quota import CUMULATIVE, QuotaLedger
from exporter.state.reference import ReferenceStatus, reference_key
from exporter.state.source_stats import SourceStats

log = logging.getLogger(__name__)


# Model settings read only when statistics are computed: changing them in a reload keeps the
# model's counters and windows (they do not change what was counted).
RECOUNT_FREE = (
    "thresholds",
    "drift",
    "distribution",
    "quality_thresholds",
    "canary",
    "min_samples",
    "capacity",
)


def counts_alike(old: Model, new: Model) -> bool:
    """Whether ``new`` counts exactly what ``old`` did (only RECOUNT_FREE settings differ)."""
    return dataclasses.replace(old, **{k: getattr(new, k) for k in RECOUNT_FREE}) == new


class State:
    def __init__(
        self,
        config: Config,
        previous: State | None = None,
        *,
        references,
    ):
        """``references`` answers ``get(model) -> (profile | None, status | None)`` at once
        (sources/reference_builds.py); state never reads the training data itself."""
        self.lock = threading.Lock()
        self.config = config
        self.models: dict[str, ModelState] = {}
        self.references: dict[str, ReferenceStatus] = {}
        # Kept model states and their new settings, applied by adopt() once a reload is sure.
        self._adopt: list[tuple[ModelState, Model]] = []
        buckets = config.serving_log.latency_buckets
        for model in config.models:
            old = previous.models.get(model.name) if previous else None
            ref, status = references.get(model)
            same_serving = old is not None and previous.config.serving_log == config.serving_log
            if same_serving and counts_alike(old.model, model) and old.reference is ref:
                # A model that counts the same keeps its counters and windows across a reload.
                self._adopt.append((old, model))
                self.models[model.name] = old
                if status is not None:
                    self.references[model.name] = status
                continue
            if status is not None:
                self.references[model.name] = status
            features = model.features
            self.models[model.name] = ModelState(
                model,
                buckets,
                ref,
                list(features.numeric) if features else None,
                list(features.categorical) if features else None,
            )
            if same_serving and old.reference is None and ref is not None:
                # The reference arrived (built in the background): the serving counters carry
                # over; the feature windows start now.
                self.models[model.name].carry_serving(old)
        references.forget({reference_key(m) for m in config.models if m.reference})
        self.pipelines: dict[str, PipelineState] = {}
        for p in config.pipelines:
            old = previous.pipelines.get(p.name) if previous else None
            self.pipelines[p.name] = (
                old if old is not None and old.pipeline == p else (PipelineState(p))
            )
        self.quotas: dict[str, QuotaLedger] = {}
        for q in config.quotas:
            old = previous.quotas.get(q.name) if previous else None
            if q.resource in CUMULATIVE:
                self.quotas[q.name] = old if old is not None and old.quota == q else QuotaLedger(q)
        self.datasets: dict[str, DatasetState] = {}
        for d in config.datasets:
            ref = self.models[d.reference].reference
            if ref is None:
                status = self.references.get(d.reference)
                if status is not None and status.building:
                    # Not a problem: the dataset is watched once the reference is built.
                    log.info("dataset %s: waiting for model %s's reference", d.name, d.reference)
                else:
                    log.error(
                        "dataset %s: model %s has no reference profile; not watched",
                        d.name,
                        d.reference,
                    )
                continue
            old = previous.datasets.get(d.name) if previous else None
            same = old is not None and old.dataset == d and old.reference is ref
            self.datasets[d.name] = old if same else DatasetState(d, config.model(d.reference), ref)
        self.host = previous.host if previous else HostSample()
        self.sources: dict[str, SourceStats] = previous.sources if previous else {}
        self.ingest_passes = previous.ingest_passes if previous else 0
        self.last_ingest_timestamp = previous.last_ingest_timestamp if previous else 0.0

    def adopt(self) -> None:
        """Give kept model states their new settings (thresholds, floors, canary...)."""
        for model_state, model in self._adopt:
            model_state.model = model
        for ds in self.datasets.values():
            ds.model = self.config.model(ds.dataset.reference)
        self._adopt = []

    def source(self, name: str) -> SourceStats:
        stats = self.sources.get(name)
        if stats is None:
            stats = self.sources[name] = SourceStats()
        return stats

    def compute(self, now: float | None = None) -> None:
        """Recompute every model's statistics (caller holds no lock; brief locks inside)."""
        for model_state in self.models.values():
            with self.lock:
                model_state.compute(now)
        for dataset_state in self.datasets.values():
            with self.lock:
                dataset_state.compute()
