"""One ingestion step per source: read, parse (outside the lock), apply and checkpoint.

Apply and checkpoint happen under the state lock together, so a scrape never sees a line
the checkpoint does not cover: after a kill -9 at any point, a restart neither skips a
line nor counts one that an earlier process already exported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from exporter.config import ConfigError, Model, ServingLogFormat, ServingSource
from exporter.sources.datasets import (
    Cancelled,
    DatasetWatcher,
    FileFailed,
    partition_of,
    profile_file,
)
from exporter.sources.envelopes import envelope
from exporter.sources.host import HostSampler
from exporter.sources.labels import LabelParser
from exporter.sources.push import Queued
from exporter.sources.runs import RunLogParser
from exporter.sources.serving_log import ServingLogParser
from exporter.sources.tail import FileTailer
from exporter.state.checkpoint import CheckpointStore
from exporter.state.serving import slots_for
from exporter.state.store import State

log = logging.getLogger(__name__)


def checkpoint_store(state_dir: str | None, name: str) -> CheckpointStore:
    path = os.path.join(state_dir, "checkpoints", f"{name}.json") if state_dir else None
    return CheckpointStore(path)


def feature_union(state: State) -> tuple[list[str], list[str]]:
    """Every model's numeric and categorical features, as the parser's columns."""
    numeric: dict[str, str] = {}
    categorical: dict[str, str] = {}
    for name, ms in state.models.items():
        for f in ms.numeric:
            numeric.setdefault(f, name)
        for f in ms.categorical:
            categorical.setdefault(f, name)
    both = sorted(set(numeric) & set(categorical))
    if both:
        f = both[0]
        raise ConfigError(
            [
                f"{state.config.source}: models: feature {f!r} is numeric for model {numeric[f]} "
                f"but categorical for model {categorical[f]}; give it one kind in both"
            ]
        )
    return list(numeric), list(categorical)


def follow(
    source: str,
    patterns: list[str],
    checkpoints: CheckpointStore,
    previous: FileTailer | None = None,
    **options,
) -> FileTailer:
    """The tailer for ``source``: the running one when a reload left its inputs unchanged.

    Keeping it keeps what only it knows: rotated files still being drained, reads in flight
    and open descriptors. A new tailer would close those and lose the rotated files' rest.
    """
    if (
        previous is not None
        and previous.patterns == list(patterns)
        and all(getattr(previous, k) == v for k, v in options.items())
    ):
        return previous
    return FileTailer(source, patterns, checkpoints, **options)


# Invalid input is sampled into the log at most this often per source.
INVALID_LOG_SECONDS = 10.0


def count_batch(stats, batch) -> None:
    """A batch's lines into its source's self-metrics: parsed, invalid, ignored."""
    ignored = getattr(batch, "ignored", None) or {}
    n_invalid, n_ignored = sum(batch.invalid.values()), sum(ignored.values())
    stats.lines["parsed"] += batch.lines - n_invalid - n_ignored
    stats.lines["invalid"] += n_invalid
    stats.lines["ignored"] += n_ignored
    stats.invalid.update(batch.invalid)
    stats.ignored.update(ignored)
    stats.rejected.update(getattr(batch, "rejected", ()))


class TailIngest:
    """A followed set of files whose lines a parser turns into batches applied to state."""

    source: str  # the `source` label value

    def __init__(self, tailer: FileTailer, parse, budget: int):
        self.tailer = tailer
        self.parse = parse
        self.budget = budget
        self._logged_invalid = -INVALID_LOG_SECONDS

    def _log_invalid(self, chunks: list, batch) -> None:
        """One invalid line, where it is and why: a wrong format shows in the log at once."""
        sample = getattr(batch, "sample", None)
        if not batch.invalid or sample is None:
            return
        now = time.monotonic()
        if now - self._logged_invalid < INVALID_LOG_SECONDS:
            return
        self._logged_invalid = now
        line = sample.line
        chunk, pos = chunks[0], -1
        for c in chunks if line is not None else ():
            pos = c.data.find(line)
            if pos >= 0:
                chunk = c
                break
        offset = chunk.end_offset - len(chunk.data) + max(pos, 0)
        log.warning(
            "source=%s file=%s offset=%d reason=%s invalid=%d of %d lines read; line starts: %r",
            self.source,
            chunk.file.path,
            offset,
            sample.reason or next(iter(batch.invalid)),
            sum(batch.invalid.values()),
            batch.lines,
            (line or b"")[:200],
        )

    def apply(self, state: State, batch, now: float) -> None:
        raise NotImplementedError

    def parse_chunk(self, chunk):
        return self.parse(chunk.data, chunk.oversized_lines)

    def parse_chunks(self, chunks: list) -> tuple[list, int]:
        """The chunks' batches, one a chunk, and how many lines failed to parse (a bug: the
        chunk is logged and its lines counted as ``internal_error``)."""
        batches, failed = [], 0
        for c in chunks:
            try:
                batch = self.parse_chunk(c)
                batches.append(batch)
                self._log_invalid([c], batch)
            except Exception:
                log.exception("source %s: parsing %s failed", self.source, c.file.path)
                failed += c.data.count(b"\n") + c.oversized_lines
        return batches, failed

    def step(self, state: State) -> int:
        """Ingest up to one budget of bytes; returns bytes consumed (0: caught up).

        Skipped bytes (an over-long line) count as consumed: they are progress. A chunk the
        parser or the state fails on (a bug) is logged, counted as ``internal_error`` and
        committed, so it can neither stall the source nor be counted twice on a retry.
        """
        chunks = self.tailer.read(self.budget)
        batches, failed = self.parse_chunks([c for c in chunks if c.data or c.oversized_lines])
        now = time.time()
        stats = state.source(self.source)
        with state.lock:
            for batch in batches:
                try:
                    self.apply(state, batch, now)
                except Exception:
                    log.exception("source %s: applying a batch failed", self.source)
                    failed += batch.lines
                    continue
                count_batch(stats, batch)
            if failed:
                stats.lines["invalid"] += failed
                stats.invalid["internal_error"] += failed
            self.tailer.commit(chunks)
            stats.checkpoint_ok = self.tailer.checkpoints.save()
            stats.checkpoint_failures = self.tailer.checkpoints.write_failures
            stats.bytes_read = self.tailer.bytes_read
            stats.lag_bytes = self.tailer.lag_bytes
            stats.files = self.tailer.file_count
            stats.file_errors = self.tailer.file_errors
            stats.files_skipped = self.tailer.skipped_total
        return sum(len(c.data) + c.skipped for c in chunks)

    def close(self) -> None:
        self.tailer.close()


@dataclass(frozen=True)
class ServingSourceSpec:
    """One tailed set of serving logs: its globs, format, and the constants it implies."""

    source: str  # the `source` label value
    patterns: tuple[str, ...]
    fmt: ServingLogFormat
    model: str | None = None  # every record is this model's (a model's own source)
    version: str | None = None


def serving_sources(cfg) -> list[ServingSourceSpec]:
    """``serving``: every model's plain globs, read with ``serving_log`` (lines name their
    model); ``serving-<model>[-<n>]``: each source a model lists with its own settings."""
    specs = []
    shared = sorted({p for m in cfg.models for p in m.serving_logs if isinstance(p, str)})
    if shared:
        specs.append(ServingSourceSpec("serving", tuple(shared), cfg.serving_log))
    for m in cfg.models:
        own = [s for s in m.serving_logs if isinstance(s, ServingSource)]
        for n, src in enumerate(own):
            fmt = dataclasses.replace(
                cfg.serving_log,
                format=src.format or cfg.serving_log.format,
                streams=src.streams or cfg.serving_log.streams,
                fields=src.fields or cfg.serving_log.fields,
            )
            name = f"serving-{m.name}" + (f"-{n}" if n else "")
            specs.append(ServingSourceSpec(name, (src.path,), fmt, m.name, src.version))
    return specs


# A step's bytes. A step pays a fixed cost per model present in it (a few dozen numpy calls
# per window, the parser's per-model decode), so a log shared by many models gets a larger
# step: each model's share stays ~80 records or more. 8 MiB up to 25 models, 32 MiB from 100
# (100 x 50: 9.2-9.6 -> 7.9-8.1 µs a line; the step's decoded records are held at once,
# docs/scaling.md).
STEP_BYTES = 8 << 20
MAX_STEP_BYTES = 32 << 20


def step_bytes(models: int) -> int:
    """The step of a serving source read by ``models`` models."""
    return int(min(MAX_STEP_BYTES, STEP_BYTES * max(1.0, models / 25)))


class ServingIngest(TailIngest):
    """Serving logs: a model's own source, or the shared one dispatched by each line's model
    field."""

    def __init__(
        self,
        state: State,
        spec: ServingSourceSpec,
        checkpoints: CheckpointStore,
        budget: int | None = None,
        previous: FileTailer | None = None,
    ):
        """``budget``: a step's bytes (default ``step_bytes`` of the models it feeds)."""
        self.source = spec.source
        fmt = spec.fmt
        self.envelope = envelope(fmt.format, fmt.streams, fmt.max_line_bytes)
        tailer = follow(
            self.source,
            list(spec.patterns),
            checkpoints,
            previous,
            max_line_bytes=fmt.max_line_bytes,
            exclude=list(fmt.exclude),
            envelope=self.envelope,
        )
        if spec.model is None:
            numeric, categorical = feature_union(state)
        else:
            ms = state.models[spec.model]
            numeric, categorical = list(ms.numeric), list(ms.categorical)
        context = serving_context(state, numeric, categorical)
        parser = ServingLogParser(
            fmt,
            context[0],
            numeric,
            categorical,
            model=spec.model,
            version=spec.version,
            envelope=fmt.format != "json",
            feature_order=state.config.model(spec.model).feature_order if spec.model else (),
            model_columns=None if spec.model else model_columns(context),
            scores=reads_scores(state.config, spec.model),
            request_ids=reads_request_ids(state.config, spec.model),
        )
        if budget is None:
            budget = step_bytes(1 if spec.model else len(context[0]))
        super().__init__(tailer, parser.parse, budget)
        self.model_names, self.columns = context

    def parse_chunk(self, chunk):
        return self._parse_unwrapped([chunk])

    def parse_chunks(self, chunks: list) -> tuple[list, int]:
        """One batch for all the chunks of a step: a model's records of a step are applied
        at once, so what applying costs a model whatever its records (numpy calls per
        window) is paid once per step (8 MiB), not once per 1 MiB read (docs/scaling.md).
        If that parse fails (a bug), the chunks are parsed one by one, so that only the
        chunk at fault is lost."""
        if len(chunks) < 2:
            return super().parse_chunks(chunks)
        try:
            batch = self._parse_unwrapped(chunks)
        except Exception:
            return super().parse_chunks(chunks)
        self._log_invalid(chunks, batch)
        return [batch], 0

    def _parse_unwrapped(self, chunks: list):
        unwrapped = [self.envelope.unwrap(c.data, final=c.final) for c in chunks]
        data = unwrapped[0].data if len(chunks) == 1 else b"".join(u.data for u in unwrapped)
        batch = self.parse(data, sum(c.oversized_lines for c in chunks))
        for u in unwrapped:
            if u.dropped:
                batch.lines += u.dropped
                batch.invalid.update(u.invalid)
                batch.ignored.update(u.ignored)
        return batch

    def apply(self, state: State, batch, now: float) -> None:
        apply_serving(state, self.model_names, self.columns, batch, now)


def reads_request_ids(config, model: str | None = None) -> bool:
    """Whether a parser for ``model`` (None: every model) reads request ids: some model
    joins labels to them. Else a record's id is not decoded (a string a line for nothing)."""
    models = [config.model(model)] if model else config.models
    return any(m.labels for m in models)


def reads_scores(config, model: str | None = None) -> bool:
    """Whether a parser for ``model`` (None: every model) reads class probabilities: some
    multiclass model has classes, so its quality can be estimated from them."""
    models = [config.model(model)] if model else config.models
    return any(m.task == "multiclass" and m.classes for m in models)


def model_columns(context) -> list | None:
    """For a parser reading several models' records: each model's feature columns in the
    union (by the parser's model index, from ``serving_context``), so it builds each model's
    own features apart. None for one model (the union is its own)."""
    names, columns = context
    if len(names) < 2:
        return None
    return [
        columns[name] if name in columns and (columns[name][0] or columns[name][1]) else None
        for name in names
    ]


def serving_context(state: State, numeric: list[str], categorical: list[str]):
    """(model names by the parser's model index, per model where its features sit in the
    parser's columns): what applying a parsed batch needs."""
    columns = {
        name: (
            [numeric.index(f) for f in ms.numeric if f in numeric],
            [categorical.index(f) for f in ms.categorical if f in categorical],
        )
        for name, ms in state.models.items()
    }
    return [m.name for m in state.config.models], columns


def apply_serving(state: State, model_names, columns, batch, now: float) -> None:
    """A parsed batch into the models' state (files and pushed records alike)."""
    if not batch.records:
        return
    # Each model's rows, in the batch's order: one stable sort, not a scan per model.
    order = np.argsort(batch.model, kind="stable")
    indices, starts = np.unique(batch.model[order], return_index=True)
    ends = [*starts[1:].tolist(), len(order)]
    for index, start, end in zip(indices.tolist(), starts.tolist(), ends, strict=True):
        model_state = state.models.get(model_names[index])
        if model_state is None or model_state.model.name not in columns:
            continue  # a push parsed before a reload removed its model
        rows = order[start:end]
        versions = batch.pick(batch.version, rows)
        slots = slots_for(model_state.slots, versions, now)
        for freed in model_state.slots.evicted:
            model_state.reset_slot(freed)
        model_state.slots.evicted.clear()
        num_cols, cat_cols = columns[model_state.model.name]
        block = batch.blocks.get(int(index)) if batch.blocks else None
        model_state.apply(rows, slots, batch, num_cols, cat_cols, now, block=block)


class LabelIngest(TailIngest):
    """One model's ground-truth label files, joined to its predictions."""

    def __init__(
        self,
        model: Model,
        checkpoints: CheckpointStore,
        budget: int = 8 << 20,
        previous: FileTailer | None = None,
    ):
        # One source per model (`labels-<model>`): label tailers must not share self-metrics.
        self.source = f"labels-{model.name}"
        tailer = follow(self.source, list(model.labels), checkpoints, previous)
        super().__init__(tailer, LabelParser(model.label_join).parse, budget)
        self.model = model.name

    def apply(self, state: State, batch, now: float) -> None:
        model_state = state.models.get(self.model)
        if model_state is None or model_state.join is None:
            return
        matched = model_state.join.add_labels(batch.request_ids, batch.labels, now)
        model_state.add_matched(matched, now)


class RunLogIngest(TailIngest):
    """The pipelines' run logs (one source, dispatched by each line's pipeline field)."""

    source = "runs"

    def __init__(
        self,
        state: State,
        checkpoints: CheckpointStore,
        budget: int = 8 << 20,
        previous: FileTailer | None = None,
    ):
        pipelines = state.config.pipelines
        patterns = sorted({p.run_log for p in pipelines if p.run_log})
        tailer = follow(self.source, patterns, checkpoints, previous)
        super().__init__(tailer, RunLogParser([p.name for p in pipelines]).parse, budget)

    def apply(self, state: State, batch, now: float) -> None:
        for record, start, end in batch.records:
            finished = state.pipelines[record.pipeline].apply(record, start, end)
            if not finished or finished.get("time") is None:
                continue
            for ledger in state.quotas.values():
                amount = finished.get(ledger.quota.resource)
                if amount is not None:
                    ledger.add(finished["time"], record.pipeline, amount)


class DatasetProfiler:
    """Profiles Parquet files in a thread of its own, so that a huge file (150M rows in a
    6.5 MB file took 31 s) never holds up serving ingestion, statistics or the rendering;
    the ingest thread applies the finished profiles. Stops between two batches on close."""

    def __init__(self):
        self.jobs: queue.Queue = queue.Queue()
        self.done: queue.Queue = queue.Queue()
        self.queued: set[tuple[str, str]] = set()  # (dataset, path) queued or in progress
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="datasets", daemon=True)
        self.thread.start()

    def submit(self, name: str, ds, path: str, signature) -> None:
        if (name, path) in self.queued:
            return
        self.queued.add((name, path))
        self.jobs.put((name, ds, path, signature))

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                name, ds, path, signature = self.jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                result = profile_file(
                    path, ds.specs, ds.label_specs, ds.model.out_of_range_margin, self.stop.is_set
                )
            except Cancelled:
                return
            except FileFailed as exc:
                log.warning("dataset %s: %s unreadable (%s): %s", name, path, exc.reason, exc)
                result = exc
            except Exception as exc:
                # One file must never stop the profiler: count it, look again on change.
                log.exception("dataset %s: profiling %s failed", name, path)
                result = FileFailed("error", str(exc))
            self.done.put((name, ds, path, signature, result))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class DatasetIngest:
    """New or changed Parquet files of every dataset: listed here, profiled by a
    DatasetProfiler thread, applied here (the ingest thread is the one writer of state)."""

    source = "datasets"
    LIST_SECONDS = 1.0  # directories are listed at most this often

    def __init__(self, state: State, previous: DatasetIngest | None = None):
        # A dataset whose state survived a reload keeps its watcher: a new one would take
        # every file for new and profile (and count) it again.
        self.states = dict(state.datasets)
        self.watchers = {}
        for name, ds in state.datasets.items():
            if previous is not None and previous.states.get(name) is ds:
                self.watchers[name] = previous.watchers[name]
            else:
                self.watchers[name] = DatasetWatcher(ds.dataset.path)
        self.profiler = previous.profiler if previous is not None else DatasetProfiler()
        self.listed = 0.0

    def step(self, state: State) -> int:
        now = time.monotonic()
        if now - self.listed >= self.LIST_SECONDS:
            self.listed = now
            for name, watcher in self.watchers.items():
                ds = self.states[name]
                changed, gone = watcher.changes()
                if gone:
                    with state.lock:
                        for path in gone:
                            ds.remove(partition_of(watcher.root, path), path)
                            watcher.forget(path)
                for path, signature in changed:
                    self.profiler.submit(name, ds, path, signature)
        applied = 0
        touched = set()
        while True:
            try:
                name, ds, path, signature, result = self.profiler.done.get_nowait()
            except queue.Empty:
                break
            self.profiler.queued.discard((name, path))
            watcher = self.watchers.get(name)
            if watcher is None or self.states.get(name) is not ds:
                continue  # profiled for a dataset config that a reload replaced
            with state.lock:
                if isinstance(result, FileFailed):
                    ds.failed[result.reason] += 1
                else:
                    ds.apply(partition_of(watcher.root, path), path, result, signature[1] / 1e9)
                    touched.add(name)
            watcher.mark(path, signature)
            applied += 1
        for name in touched:
            with state.lock:
                self.states[name].compute()
        # Files applied count as work done: the pass goes on while profiles arrive.
        return applied

    @property
    def idle(self) -> bool:
        """Nothing queued, being profiled, or waiting to be applied."""
        return not self.profiler.queued

    def close(self) -> None:
        self.profiler.close()


class HostIngest:
    """Samples processes and GPUs once per pass (not per batch: sampling has a cost)."""

    source = "host"

    def __init__(
        self,
        state: State,
        gpu: bool = True,
        processes: bool = True,
        previous: HostIngest | None = None,
    ):
        pipelines = state.config.pipelines if processes else []
        self.key = (tuple(pipelines), gpu)
        if previous is not None and previous.key == self.key:
            # Same pipelines: keep the CPU baselines (no CPU counted twice) and NVML.
            self.sampler, self.last = previous.sampler, previous.last
        else:
            self.sampler = HostSampler(pipelines, gpu=gpu)
            self.last = 0.0

    def step(self, state: State) -> int:
        now = time.monotonic()
        if now - self.last < 1.0:
            return 0
        elapsed = now - self.last if self.last else 0.0
        self.last = now
        sample = self.sampler.sample()
        with state.lock:
            for name, delta in sample.cpu_seconds_delta.items():
                ps = state.pipelines[name]
                ps.cpu_seconds += delta
                ps.memory_bytes = sample.memory_bytes[name]
                ps.processes = sample.processes[name]
                if not sample.gpu_attribution:
                    ps.gpu_memory_bytes = ps.gpu_utilization = 0.0
                    continue
                pids = sample.pids[name]
                ps.gpu_memory_bytes = sum(
                    g.processes.get(pid, 0.0) for g in sample.gpus for pid in pids
                )
                ps.gpu_utilization = sum(
                    g.process_sm.get(pid, 0.0) for g in sample.gpus for pid in pids
                )
                # Integrated over the time since the last sample (at most a few seconds).
                ps.gpu_seconds += ps.gpu_utilization * min(elapsed, 10.0)
            state.host = sample
        return 0

    def close(self) -> None:
        pass


class PushIngest:
    """Records the push endpoints accepted, applied by the ingest thread (the only writer of
    state), and KServe events whose other half did not come in time."""

    source = "push"

    def __init__(self, queue, kserve=None):
        self.queue = queue
        self.kserve = kserve  # the KServeEndpoint, or None

    def step(self, state: State) -> int:
        items = self.queue.take()
        if self.kserve is not None:
            lines = self.kserve.expired(time.time())
            if lines:
                k = self.kserve
                items.append(Queued(k.source, k.parser.parse(lines), k.context, 0))
        if not items:
            return 0
        now = time.time()
        with state.lock:
            for item in items:
                stats = state.source(item.source)
                try:
                    apply_serving(state, *item.context, item.batch, now)
                except Exception:
                    log.exception("source %s: applying a batch failed", item.source)
                    stats.lines["invalid"] += item.batch.lines
                    stats.invalid["internal_error"] += item.batch.lines
                    continue
                count_batch(stats, item.batch)
                stats.bytes_read += item.body_bytes
        return sum(max(1, i.body_bytes) for i in items)

    def close(self) -> None:
        pass
