"""The running exporter: state, ingestion loop, metrics registry, reload and shutdown."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from exporter import gcpolicy
from exporter.collectors.base import ScrapeCollector
from exporter.collectors.compute import ComputeCollector, GpuCollector
from exporter.collectors.data_quality import DataQualityCollector
from exporter.collectors.datasets import DatasetsCollector
from exporter.collectors.distributions import DistributionsCollector
from exporter.collectors.drift import DriftCollector
from exporter.collectors.exporter import ExporterCollector
from exporter.collectors.pipelines import PipelinesCollector
from exporter.collectors.quality import QualityCollector
from exporter.collectors.quota import QuotaCollector
from exporter.collectors.serving import ServingCollector
from exporter.compressor import Compressor
from exporter.config import Config, ConfigError, ServingLogFormat, load_config
from exporter.exposition import TextEncoder
from exporter.ingest import (
    DatasetIngest,
    HostIngest,
    LabelIngest,
    PushIngest,
    RunLogIngest,
    ServingIngest,
    TailIngest,
    checkpoint_store,
    feature_union,
    model_columns,
    reads_scores,
    serving_context,
    serving_sources,
)
from exporter.sharding import shard_config
from exporter.sources.push import (
    KServeEndpoint,
    KServeJoin,
    KServeModel,
    PushQueue,
    RecordsEndpoint,
    Reply,
)
from exporter.sources.reference_builds import ReferenceBuilds
from exporter.sources.serving_log import ServingLogParser
from exporter.state.checkpoint import CheckpointStore
from exporter.state.store import State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendering:
    """The exposition rendered after an ingest pass, its gzip form, and OpenMetrics once a
    client has asked for it (rendered here too: only the ingest thread runs collectors)."""

    text: bytes
    gzipped: bytes
    rendered_at: float
    openmetrics: bytes | None = None


# Collectors by name, each enabled by default; --no-collector.NAME turns one off.
COLLECTOR_NAMES = (
    "serving",
    "drift",
    "distributions",
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
        background_references: bool = False,
        shard: tuple[int, int] | None = None,
    ):
        self.config_path = config_path
        self.shard = shard
        config = shard_config(config, shard)
        self.state_dir = state_dir
        self.interval = interval
        self.stats_interval = stats_interval
        # A pass reads for at most this long before statistics and rendering get their turn.
        self.pass_seconds = max(1.0, min(interval, stats_interval))
        self.caught_up = False
        self._last_stats = 0.0
        # References build in the background in the running exporter (listen first, never
        # block health checks); inline where the caller wants them at once (tests, tools).
        self.references = ReferenceBuilds(state_dir, background=background_references)
        self.state = State(config, references=self.references)
        self._checkpoints: dict[str, CheckpointStore] = {}
        self.collectors = collectors
        # The push endpoints' queue and KServe join outlive reloads (what they hold was
        # accepted); the endpoints themselves are rebuilt with each config.
        push = config.push
        self.push_queue = PushQueue(push.max_queued_records)
        self.kserve_join = KServeJoin(push.kserve_response_timeout, push.kserve_max_pending)
        self.push_replies: Counter = Counter()  # (endpoint, code); HTTP threads count
        self._push_lock = threading.Lock()
        self.records_endpoint: RecordsEndpoint | None = None
        self.kserve_endpoint: KServeEndpoint | None = None
        self.ingests = self._build_ingests(self.state)
        # Set once an ingest pass is done and its rendering published: /metrics answers.
        self.ready = threading.Event()
        self._passed = False
        self.rendering: Rendering | None = None
        self.want_openmetrics = threading.Event()  # set by the first OpenMetrics-only scrape
        self.loop_errors: Counter = Counter()  # by stage: ingest, stats, render
        self.reload_ok = True
        self.reload_timestamp = time.time()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._thread: threading.Thread | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.encoder = TextEncoder()
        # gzip off the ingest thread once the loop runs (exporter/compressor.py).
        self.compressor = Compressor(self._publish)
        # Long-lived objects to freeze after the next rendering (exporter/gcpolicy.py).
        self._unsettled = True
        available = {
            "serving": ServingCollector(),
            "drift": DriftCollector(),
            "distributions": DistributionsCollector(),
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
        # The standard names every dashboard already queries (process_resident_memory_bytes).
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def _store(self, source: str) -> CheckpointStore:
        if source not in self._checkpoints:
            self._checkpoints[source] = checkpoint_store(self.state_dir, source)
        return self._checkpoints[source]

    def _build_ingests(self, state: State, previous: list | None = None) -> list:
        """The sources for ``state``; on a reload, ``previous`` lends what can be kept."""
        old = {i.source: i for i in previous or ()}

        def tailer(source: str):
            ingest = old.get(source)
            return ingest.tailer if isinstance(ingest, TailIngest) else None

        ingests = []
        for spec in serving_sources(state.config):
            # One checkpoint file for every serving source: offsets are kept by the file's
            # fingerprint, so renaming or reordering sources never reads a file twice.
            ingests.append(
                ServingIngest(state, spec, self._store("serving"), previous=tailer(spec.source))
            )
        for model in state.config.models:
            if model.labels:
                source = f"labels-{model.name}"
                ingests.append(LabelIngest(model, self._store(source), previous=tailer(source)))
        if any(p.run_log for p in state.config.pipelines):
            source = RunLogIngest.source
            ingests.append(RunLogIngest(state, self._store(source), previous=tailer(source)))
        ingests += self._push_ingests(state)
        old_datasets = old.get(DatasetIngest.source)
        if state.datasets:
            ingests.append(DatasetIngest(state, previous=old_datasets))
        gpu = "gpu" in self.collectors
        processes = "compute" in self.collectors and any(
            p.processes for p in state.config.pipelines
        )
        if gpu or processes:
            host = HostIngest(state, gpu=gpu, processes=processes, previous=old.get("host"))
            ingests.append(host)
        if old_datasets is not None and not any(
            isinstance(i, DatasetIngest) and i.profiler is old_datasets.profiler for i in ingests
        ):
            old_datasets.close()
        # Tailers of sources that no longer exist are closed; kept ones are in use again.
        kept = {id(i.tailer) for i in ingests if isinstance(i, TailIngest)}
        for ingest in old.values():
            if isinstance(ingest, TailIngest) and id(ingest.tailer) not in kept:
                ingest.tailer.close()
        return ingests

    def _push_ingests(self, state: State) -> list:
        """The push endpoints for ``state``'s config (none unless push.enabled)."""
        push = state.config.push
        if not push.enabled or not state.config.models:
            self.records_endpoint = self.kserve_endpoint = None
            return []
        self.push_queue.max_records = push.max_queued_records
        self.kserve_join.timeout = push.kserve_response_timeout
        self.kserve_join.max_pending = push.kserve_max_pending
        numeric, categorical = feature_union(state)
        context = serving_context(state, numeric, categorical)
        names, per_model = context[0], model_columns(context)
        records = ServingLogParser(
            state.config.serving_log,
            names,
            numeric,
            categorical,
            arrival_time=True,
            model_columns=per_model,
            scores=reads_scores(state.config),
        )
        # KServe events become records in the exporter's own default shape.
        canonical = ServingLogParser(
            ServingLogFormat(),
            names,
            numeric,
            categorical,
            model_columns=per_model,
            scores=reads_scores(state.config),
        )
        models = {
            m.name: KServeModel(
                m.feature_order,
                m.task == "binary_classification",
                m.classes if m.task == "multiclass" else (),
            )
            for m in state.config.models
        }
        self.records_endpoint = RecordsEndpoint(records, context, self.push_queue)
        self.kserve_endpoint = KServeEndpoint(
            canonical, context, self.push_queue, models, self.kserve_join
        )
        return [PushIngest(self.push_queue, self.kserve_endpoint)]

    def push(self, endpoint: str, body: bytes, headers: dict | None = None) -> Reply:
        """A push from the HTTP server (any thread): parsed here, applied by the ingest
        thread."""
        records, kserve = self.records_endpoint, self.kserve_endpoint
        if records is None or kserve is None:
            reply = Reply(404, "push endpoints are off (push.enabled: false)")
        elif endpoint == "records":
            reply = records.handle(body)
        else:
            reply = kserve.handle(headers or {}, body)
        self.count_push(endpoint, reply.code)
        return reply

    def count_push(self, endpoint: str, code: int) -> None:
        with self._push_lock:
            self.push_replies[(endpoint, code)] += 1

    def status(self) -> dict:
        with self._push_lock:
            replies = Counter(self.push_replies)
        return {
            "push_replies": replies,
            "push_queued": self.push_queue.records,
            "kserve_pending": self.kserve_join.pending,
            "kserve_unpaired": self.kserve_join.unpaired,
            "ready": 1.0 if self.ready.is_set() else 0.0,
            "reload_ok": self.reload_ok,
            "reload_timestamp": self.reload_timestamp,
            "loop_errors": {**self.loop_errors, "compress": self.compressor.errors},
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
                    # A step's objects (a record, a tuple per record) are freed by reference
                    # counting; the young-generation collections they set off walk them
                    # for nothing (gcpolicy.py; cycles are collected after the step).
                    with gcpolicy.paused():
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
            self._error("stats", "computing statistics (keeping the previous results)")

    def render(self) -> Rendering:
        """Encode /metrics now (in the ingest thread), so scrapes only send bytes.

        Encoding ~10k samples takes prometheus_client ~70 ms of one core; done per scrape it
        competes with ingestion for the GIL and makes scrapes slow (bench/soak.py). This is
        the only place collectors run (besides tests reading the registry directly), so the
        collectors and the scrape framework's own fields have one writer: this thread.
        """
        text, om = self.encode()
        self._publish(text, gzip.compress(text, compresslevel=1), time.time(), om)
        return self.rendering

    def encode(self) -> tuple[bytes, bytes | None]:
        """The text format and, once a client asked for it, OpenMetrics: the ingest
        thread's part of a rendering (gzip is the compressor's, once the loop runs)."""
        with gcpolicy.paused():
            text = self.encoder.encode(self.registry)
        om = openmetrics.generate_latest(self.registry) if self.want_openmetrics.is_set() else None
        return text, om

    def _publish(self, text: bytes, gzipped: bytes, rendered_at: float, om) -> None:
        self.rendering = Rendering(text, gzipped, rendered_at, om)
        if self._passed:
            self.ready.set()

    def healthy(self) -> bool:
        """False once the ingest or the gzip thread has died (they never should: /-/healthy
        says 503)."""
        if self._thread is None or self._stop.is_set():
            return True
        return self._thread.is_alive() and self.compressor.running

    def _error(self, stage: str, what: str) -> None:
        self.loop_errors[stage] += 1
        log.exception("%s failed; the ingest loop goes on", what)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if self.references.changed.is_set():
                    self.install_references()
                self.ingest_pass()
            except Exception:
                self._error("ingest", "an ingest pass")
                self.caught_up = True  # wait before the next try
            self._passed = True  # ready once this pass's rendering is published
            try:
                if self.compressor.running:
                    text, om = self.encode()
                    self.compressor.submit(text, time.time(), om)
                else:
                    self.render()
            except Exception:
                self._error("render", "rendering /metrics")
            if self._unsettled:
                # The config's objects (and the encoder's cache) now exist: freeze them.
                gcpolicy.settle()
                self._unsettled = False
            if self.caught_up:
                self._stop.wait(self.interval)

    def start(self) -> None:
        self.compressor.start()
        self._thread = threading.Thread(target=self._loop, name="ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, write checkpoints, stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.compressor.stop()
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
        """Load the config file again; on any failure keep the running config and say so
        (``mlpipe_config_last_reload_successful 0`` and one log line per problem)."""
        if not self.config_path:
            return False
        try:
            config = shard_config(load_config(self.config_path), self.shard)
            self._rebuild(config)
        except ConfigError as exc:
            self.reload_ok = False
            for line in exc.errors:
                log.error("config reload rejected, keeping the running config: %s", line)
            return False
        except Exception as exc:
            self.reload_ok = False
            log.exception("config reload failed, keeping the running config: %s", exc)
            return False
        self.reload_ok = True
        self.reload_timestamp = time.time()
        log.info("config reloaded from %s", self.config_path)
        return True

    def _rebuild(self, config: Config) -> None:
        """State and sources for ``config``, keeping what did not change; raises, changing
        nothing, if any part fails."""
        state = State(config, previous=self.state, references=self.references)
        ingests = self._build_ingests(state, previous=self.ingests)
        with self.state.lock:
            state.adopt()
            self.ingests = ingests
            self.state = state
        self._unsettled = True

    def install_references(self) -> None:
        """Reference profiles finished in the background: put them to use."""
        self.references.changed.clear()
        try:
            self._rebuild(self.state.config)
        except Exception:
            self._error("ingest", "installing new reference profiles")
