"""The running exporter: state, ingestion loop, metrics registry, reload and shutdown."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from exporter.collectors.base import ScrapeCollector
from exporter.collectors.compute import ComputeCollector, GpuCollector
from exporter.collectors.data_quality import DataQualityCollector
from exporter.collectors.datasets import DatasetsCollector
from exporter.collectors.drift import DriftCollector
from exporter.collectors.exporter import ExporterCollector
from exporter.collectors.pipelines import PipelinesCollector
from exporter.collectors.quality import QualityCollector
from exporter.collectors.quota import QuotaCollector
from exporter.collectors.serving import ServingCollector
from exporter.config import Config, ConfigError, load_config
from exporter.ingest import (
    DatasetIngest,
    HostIngest,
    LabelIngest,
    RunLogIngest,
    ServingIngest,
    checkpoint_store,
)
from exporter.state.checkpoint import CheckpointStore
from exporter.state.store import State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendering:
    """The text exposition rendered after an ingest pass, and its gzip form."""

    text: bytes
    gzipped: bytes
    rendered_at: float


# Collectors by name, each enabled by default; --no-collector.NAME turns one off.
COLLECTOR_NAMES = (
    "serving",
    "drift",
    "data_quality",
    "quality",
    "datasets",
    "pipelines",
    "compute",
    "gpu",
    "quota",
    "exporter",
)


class Exporter:
    def __init__(
        self,
        config: Config,
        config_path: str | None = None,
        state_dir: str | None = None,
        interval: float = 5.0,
        collectors: tuple[str, ...] = COLLECTOR_NAMES,
        stats_interval: float = 15.0,
    ):
        self.config_path = config_path
        self.state_dir = state_dir
        self.interval = interval
        self.stats_interval = stats_interval
        # A pass reads for at most this long before statistics and rendering get their turn.
        self.pass_seconds = max(1.0, min(interval, stats_interval))
        self.caught_up = False
        self._last_stats = 0.0
        self.state = State(config, state_dir=state_dir)
        self._checkpoints: dict[str, CheckpointStore] = {}
        self.collectors = collectors
        self.ingests = self._build_ingests(self.state)
        self.ready = threading.Event()
        self.rendering: Rendering | None = None
        self.reload_ok = True
        self.reload_timestamp = time.time()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._thread: threading.Thread | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        available = {
            "serving": ServingCollector(),
            "drift": DriftCollector(),
            "data_quality": DataQualityCollector(),
            "quality": QualityCollector(),
            "datasets": DatasetsCollector(),
            "pipelines": PipelinesCollector(),
            "compute": ComputeCollector(),
            "gpu": GpuCollector(),
            "quota": QuotaCollector(),
            "exporter": ExporterCollector(self.status),
        }
        enabled = [available[name] for name in collectors if name in available]
        self.registry.register(ScrapeCollector(lambda: self.state, enabled))
        ProcessCollector(namespace="mlpipe", registry=self.registry)

    def _store(self, source: str) -> CheckpointStore:
        if source not in self._checkpoints:
            self._checkpoints[source] = checkpoint_store(self.state_dir, source)
        return self._checkpoints[source]

    def _build_ingests(self, state: State) -> list:
        ingests = []
        if state.config.models:
            ingests.append(ServingIngest(state, self._store(ServingIngest.source)))
        for model in state.config.models:
            if model.labels:
                ingests.append(LabelIngest(model, self._store(f"labels-{model.name}")))
        if any(p.run_log for p in state.config.pipelines):
            ingests.append(RunLogIngest(state, self._store(RunLogIngest.source)))
        if state.datasets:
            ingests.append(DatasetIngest(state))
        gpu = "gpu" in self.collectors
        processes = "compute" in self.collectors and any(
            p.processes for p in state.config.pipelines
        )
        if gpu or processes:
            ingests.append(HostIngest(state, gpu=gpu, processes=processes))
        return ingests

    def status(self) -> dict:
        return {
            "ready": 1.0 if self.ready.is_set() else 0.0,
            "reload_ok": self.reload_ok,
            "reload_timestamp": self.reload_timestamp,
        }

    # --- ingestion ---------------------------------------------------------------------

    def ingest_pass(self) -> int:
        """Run every source until all are caught up, stop is asked, or the pass's time budget
        (``pass_seconds``) is spent; bytes consumed. Bounding the pass keeps statistics and
        the rendering on schedule while a writer outruns ingestion."""
        total = 0
        deadline = time.monotonic() + self.pass_seconds
        self.caught_up = False
        while not self._stop.is_set():
            consumed = 0
            for ingest in self.ingests:
                try:
                    consumed += ingest.step(self.state)
                except Exception:
                    log.exception("ingest of %s failed; retrying next pass", ingest.source)
            total += consumed
            if consumed == 0:
                self.caught_up = True
                break
            if time.monotonic() >= deadline:
                break
        if time.monotonic() - self._last_stats >= self.stats_interval:
            self.compute_stats()
        with self.state.lock:
            self.state.ingest_passes += 1
            self.state.last_ingest_timestamp = time.time()
        return total

    def compute_stats(self) -> None:
        """Skew, drift and quality from the windows, cached for scrapes to read."""
        self._last_stats = time.monotonic()
        try:
            self.state.compute()
        except Exception:
            log.exception("computing statistics failed; keeping the previous results")

    def render(self) -> Rendering:
        """Encode /metrics now (in the ingest thread), so scrapes only send bytes.

        Encoding ~10k samples takes prometheus_client ~70 ms of one core; done per scrape it
        competes with ingestion for the GIL and makes scrapes slow (bench/soak.py).
        """
        text = generate_latest(self.registry)
        self.rendering = Rendering(text, gzip.compress(text, compresslevel=1), time.time())
        return self.rendering

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            self.ingest_pass()
            self.ready.set()
            try:
                self.render()
            except Exception:
                log.exception("rendering /metrics failed; scrapes render on demand")
                self.rendering = None
            if self.caught_up:
                self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, write checkpoints, stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.state.lock:
            for store in self._checkpoints.values():
                store.save()
        for ingest in self.ingests:
            ingest.close()

    # --- reload --------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask the ingest thread to reload the config between two batches (SIGHUP)."""
        self._reload.set()

    def reload(self) -> bool:
        if not self.config_path:
            return False
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self.reload_ok = False
            for line in exc.errors:
                log.error("config reload rejected, keeping the running config: %s", line)
            return False
        state = State(config, previous=self.state, state_dir=self.state_dir)
        ingests = self._build_ingests(state)
        for ingest in self.ingests:
            ingest.close()
        with self.state.lock:
            self.ingests = ingests
            self.state = state
        self.reload_ok = True
        self.reload_timestamp = time.time()
        log.info("config reloaded from %s", self.config_path)
        return True
